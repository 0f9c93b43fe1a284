"""Conflict-marker diagnostics for every file of this session's worktrees, open or not.

What is scanned: when a session opens, every changed, untracked or unmerged file (from ``git
status``) and every tracked file ``git grep`` finds markers in (one grep per HEAD commit and
repository: a worktree joining at a HEAD already grepped scans what was found there);
afterwards, the files a refresh reports and every open buffer on each edit. A file whose markers
are gone is cleared at once. Finding and reading the files is the core's
(:mod:`wtls.marker_files`); this module decides when, and publishes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from wtls.engine import Refreshed
from wtls.links import paths_inside
from wtls.marker_files import (
    MAX_BLOCKS_PER_FILE,
    grep_markers,
    marker_problems,
    scan_files,
    status_candidates,
)
from wtls.server.base import RepoSession, Server
from wtls.server.diagnostics import uri_of
from wtls.server.rpc import uri_to_path
from wtls.server.shared import SharedRepository
from wtls.watch import ChangeSet
from wtls.worktrees import WorktreeState

__all__ = ["CATEGORY", "MAX_BLOCKS_PER_FILE", "MarkerTracker", "marker_problems", "register"]

CATEGORY = "markers"
#: HEAD commits whose committed-marker candidates are remembered per repository, at most.
_HEADS_KEPT = 64
#: Candidates of one HEAD at most (beyond, a joining worktree greps instead of reading them).
_KNOWN_LIMIT = 5000


@dataclass(eq=False)
class _CommittedMarkers:
    """A repository's files that may hold conflict markers as committed, per HEAD commit: what
    ``git grep`` found in a worktree at that HEAD, plus every file that worktree had changed
    then or has changed since (its copy may differ from the commit's). A worktree joining at a
    HEAD already grepped (an agent's worktree just branched from main) scans those files
    instead of grepping all of its own again: an unchanged file's content is the commit's."""

    shared: SharedRepository
    by_head: dict[str, set[str]] = field(default_factory=dict)

    def files_written(self, change: ChangeSet) -> None:
        """Watcher events (a change listener): what a worktree changes joins its HEAD's list."""
        state = self.shared.engine.state
        if state is None:
            return
        for root, files in change.files.items():
            wt = state.find(root)
            head = wt.head if wt is not None else None
            known = self.by_head.get(head) if head else None
            if head and known is not None:
                known.update(paths_inside(root, files))
                if len(known) > _KNOWN_LIMIT:  # a flood of writes: grep that HEAD again
                    del self.by_head[head]

    async def candidates(self, wt: WorktreeState) -> set[Path]:
        """The files of ``wt`` that may hold committed markers (one ``git grep`` per HEAD)."""
        known = self.by_head.get(wt.head) if wt.head else None
        if known is None:
            found = await asyncio.to_thread(grep_markers, wt.path)
            known = {p.relative_to(wt.path).as_posix() for p in found}
            known.update(wt.status.changed_paths, wt.status.conflicted_paths)
            if wt.head:
                if len(self.by_head) >= _HEADS_KEPT:
                    self.by_head.clear()
                self.by_head[wt.head] = known
        return {wt.path / rel for rel in known}


def _committed_markers(shared: SharedRepository) -> _CommittedMarkers:
    def make() -> _CommittedMarkers:
        found = _CommittedMarkers(shared)
        shared.change_listeners.append(found.files_written)
        return found

    return shared.feature_state(_CommittedMarkers, make)


class MarkerTracker:
    """Keeps the ``markers`` diagnostics category current for every session."""

    def __init__(self, server: Server) -> None:
        self._server = server
        #: Files currently flagged, per session key: rescanned on every refresh so fixes clear.
        self._flagged: dict[str, set[Path]] = {}
        #: One scan at a time per session, in arrival order: an older scan must never publish
        #: after a newer one (a just-fixed file would show its markers again).
        self._locks: dict[str, asyncio.Lock] = {}
        #: The session each repository had at its last scan: a new one is scanned in full.
        self._seen: dict[str, RepoSession] = {}

    def _open_text(self, path: Path) -> str | None:
        doc = self._server.workspace.text_documents.get(uri_of(path))
        return doc.source if doc is not None else None

    async def on_refresh(self, ls: Server, session: RepoSession, refreshed: Refreshed) -> None:
        """Refresh hook: a session's first refresh scans it in full, later ones what changed."""
        if self._seen.get(session.key) is not session:
            self._seen[session.key] = session
            await self.scan_session(session, full=True)
        elif refreshed.files or refreshed.touched or self._flagged.get(session.key):
            # Flagged files are rescanned on every refresh: a git command that rewrites a
            # file (rebase --abort) may land between the watcher's reports, and a fix must
            # clear its markers even when no event names the file again.
            await self.on_refreshed(session, refreshed)

    async def on_document_hook(self, ls: Server, uri: str) -> None:
        """Document hook: rescan the buffer."""
        self.on_document(uri)

    async def scan_session(self, session: RepoSession, *, full: bool) -> None:
        """Scan every candidate file of the session's own worktrees."""
        worktrees = session.own_worktrees()
        candidates: set[Path] = set()
        committed = _committed_markers(session.shared)
        for wt in worktrees:
            candidates |= status_candidates(wt)
            if full:
                candidates |= await committed.candidates(wt)
        if full:
            # Buffers opened before this repository's session existed were not scanned yet.
            candidates |= self._open_paths()
        await self._scan(session, candidates, worktrees)

    def _open_paths(self) -> set[Path]:
        paths = (uri_to_path(uri) for uri in list(self._server.workspace.text_documents))
        return {p.resolve() for p in paths if p is not None}

    async def on_refreshed(self, session: RepoSession, refreshed: Refreshed) -> None:
        """Rescan what a refresh says changed in the session's own worktrees."""
        worktrees = session.own_worktrees()
        own = {w.path for w in worktrees}
        candidates: set[Path] = set()
        for root, files in refreshed.files.items():
            if root in own:
                candidates |= set(files)
        for wt in worktrees:
            if wt.path in refreshed.touched:
                candidates |= status_candidates(wt)
        await self._scan(session, candidates, worktrees)

    def on_document(self, uri: str) -> None:
        """Rescan an open (or just closed) buffer."""
        path = uri_to_path(uri)
        if path is None:
            return
        path = path.resolve()
        session = self._server.session_for(path)
        if session is None:
            return
        worktrees = session.own_worktrees()
        self._server.spawn_task(self._scan(session, {path}, worktrees), "marker scan")

    async def _scan(
        self, session: RepoSession, candidates: set[Path], worktrees: list[WorktreeState]
    ) -> None:
        async with self._locks.setdefault(session.key, asyncio.Lock()):
            await self._scan_locked(session, candidates, worktrees)

    async def _scan_locked(
        self, session: RepoSession, candidates: set[Path], worktrees: list[WorktreeState]
    ) -> None:
        own = [w for w in worktrees if not w.bare]
        flagged = self._flagged.setdefault(session.key, set())
        paths = {
            p for p in candidates | flagged if any(p == w.path or w.path in p.parents for w in own)
        }
        if not paths:
            return  # nothing of this session's changed (the usual case for other windows)
        unmerged = {w.path / rel for w in own for rel in w.status.conflicted_paths}
        texts = {p: self._open_text(p) for p in paths}
        units = self._server.workspace.position_codec.client_num_units
        results = await asyncio.to_thread(scan_files, texts, unmerged, units)
        if not self._server.is_open(session):
            return  # closed while scanning

        for path, problems in results.items():
            if problems:
                flagged.add(path)
            else:
                flagged.discard(path)
            self._server.diagnostics.replace_uri(CATEGORY, session.key, uri_of(path), problems)


def register(server: Server) -> None:
    """Scan for conflict markers after every refresh and on every buffer edit."""
    tracker = MarkerTracker(server)
    server.refresh_hooks.append(tracker.on_refresh)
    server.document_hooks.append(tracker.on_document_hook)
