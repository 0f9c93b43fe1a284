"""Conflict-marker diagnostics for every file of this session's worktrees, open or not.

What is scanned: on start, every changed, untracked or unmerged file (from ``git status``) and
every tracked file ``git grep`` finds markers in; afterwards, the files the watcher reports and
every open buffer on each edit. A file whose markers are gone is cleared at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from wtls.engine import Refreshed
from wtls.git import GitError, run_git
from wtls.markers import (
    EMPTY_SCAN,
    MAX_SCAN_BYTES,
    MarkerScan,
    block_span,
    has_markers_quick,
    is_binary,
    read_for_scan,
    scan_text,
    split_lines,
    utf16_length,
)
from wtls.problems import Problem
from wtls.worktrees import WorktreeState

if TYPE_CHECKING:
    from wtls.server.server import RepoSession, WtlsServer

CATEGORY = "markers"
#: Conflict blocks reported per file; one Information diagnostic counts the rest. A generated
#: file with 300,000 blocks would otherwise make a 100 MB message the editor chokes on.
MAX_BLOCKS_PER_FILE = 1000


def marker_problems(
    path: Path,
    text: str | None,
    scan: MarkerScan,
    unmerged: bool,
    units: Callable[[str], int] = utf16_length,
) -> list[Problem]:
    """Problems for one file's conflict blocks (``text`` gives exact columns when known, counted
    by ``units`` in the editor's position encoding)."""
    lines = split_lines(text) if text is not None and scan.blocks else None
    found: list[Problem] = []
    for block in scan.blocks:
        ours = block.ours_label or "current"
        theirs = block.theirs_label or "incoming"
        nested = " (nested)" if block.depth else ""
        if lines is not None:
            span = block_span(lines, block, units)
            end_line, end_char = span.end_line, span.end_character
        else:
            end_line, end_char = block.end_line, None
        found.append(
            Problem(
                path=path,
                severity="error",
                code="conflict-marker",
                message=f"Merge conflict{nested}: {ours} vs {theirs}, lines "
                f"{block.start_line + 1}–{block.end_line + 1}. Choose a side (code action) and "
                "remove the markers.",
                line=block.start_line,
                end_line=end_line,
                end_character=end_char,
                data={
                    "startLine": block.start_line,
                    "endLine": block.end_line,
                    "markerSize": block.marker_size,
                },
            )
        )
    for item in scan.unterminated:
        found.append(
            Problem(
                path=path,
                severity="error",
                code="conflict-marker-unterminated",
                message=item.message,
                line=item.line,
            )
        )
    if scan.more:
        found.append(
            Problem(
                path=path,
                severity="information",
                code="conflict-marker-limit",
                message=f"{scan.more} more conflict blocks not shown (wtls reports the first "
                f"{MAX_BLOCKS_PER_FILE} of a file)",
                line=scan.more_line or 0,
            )
        )
    if unmerged and not scan.blocks:
        found.append(
            Problem(
                path=path,
                severity="error",
                code="unmerged",
                message="git records an unresolved conflict on this file (e.g. modified on "
                "one side, deleted on the other, or binary): resolve it, then `git add` or "
                "`git rm` it.",
            )
        )
    return found


class MarkerTracker:
    """Keeps the ``markers`` diagnostics category current for every session."""

    def __init__(self, server: WtlsServer) -> None:
        self._server = server
        #: Files currently flagged, per session key: rescanned on every refresh so fixes clear.
        self._flagged: dict[str, set[Path]] = {}
        #: One scan at a time per session, in arrival order: an older scan must never publish
        #: after a newer one (a just-fixed file would show its markers again).
        self._locks: dict[str, asyncio.Lock] = {}

    def _open_text(self, path: Path) -> str | None:
        from wtls.server.diagnostics import uri_of

        doc = self._server.workspace.text_documents.get(uri_of(path))
        return doc.source if doc is not None else None

    async def scan_session(self, session: RepoSession, *, full: bool) -> None:
        """Scan every candidate file of the session's own worktrees."""
        worktrees = session.own_worktrees()
        candidates: set[Path] = set()
        for wt in worktrees:
            candidates |= _status_candidates(wt)
            if full:
                candidates |= await asyncio.to_thread(_grep_markers, wt.path)
        if full:
            # Buffers opened before this repository's session existed were not scanned yet.
            candidates |= self._open_paths()
        await self._scan(session, candidates, worktrees)

    def _open_paths(self) -> set[Path]:
        from wtls.server.server import uri_to_path

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
                candidates |= _status_candidates(wt)
        await self._scan(session, candidates, worktrees)

    def on_document(self, uri: str) -> None:
        """Rescan an open (or just closed) buffer."""
        from wtls.server.server import uri_to_path

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
        unmerged = {w.path / rel for w in own for rel in w.status.conflicted_paths}
        texts = {p: self._open_text(p) for p in paths}
        units = self._server.workspace.position_codec.client_num_units
        results = await asyncio.to_thread(_scan_all, texts, unmerged, units)
        from wtls.server.diagnostics import uri_of

        if not self._server.is_open(session):
            return  # closed while scanning

        for path, problems in results.items():
            if problems:
                flagged.add(path)
            else:
                flagged.discard(path)
            self._server.diagnostics.replace_uri(CATEGORY, session.key, uri_of(path), problems)


def _scan_all(
    texts: dict[Path, str | None], unmerged: set[Path], units: Callable[[str], int]
) -> dict[Path, list[Problem]]:
    out: dict[Path, list[Problem]] = {}
    for path, text in texts.items():
        if text is None:
            text = _disk_text(path)
        if text is None or len(text) > MAX_SCAN_BYTES:
            scan = EMPTY_SCAN
        else:
            scan = scan_text(text, max_blocks=MAX_BLOCKS_PER_FILE)
        out[path] = marker_problems(path, text, scan, path in unmerged, units)
    return out


def _disk_text(path: Path) -> str | None:
    """A file's text for a scan: None when missing, too large, binary or without markers."""
    data = read_for_scan(path)
    if data is None or not has_markers_quick(data) or is_binary(data):
        return None
    return data.decode("utf-8", "surrogateescape")


def _status_candidates(wt: WorktreeState) -> set[Path]:
    return {wt.path / rel for rel in (*wt.status.changed_paths, *wt.status.conflicted_paths)}


def _grep_markers(worktree: Path) -> set[Path]:
    """Tracked files whose working copy has a line that opens a conflict block."""
    try:
        result = run_git(
            ["grep", "-l", "-z", "-I", "-E", "-e", "^<{7,}( |$)", "--", "."],
            worktree,
            ok_codes=(0, 1),
        )
    except GitError:
        return set()
    return {
        worktree / rel.decode("utf-8", "surrogateescape")
        for rel in result.stdout.split(b"\0")
        if rel
    }
