"""Keeps one repository's state current from change sets; thread-safe; no LSP.

The server and the CLI share it: ``Engine.refresh()`` re-reads only what a
:class:`~wtls.watch.ChangeSet` says may have changed and reports whether anything a client
would see is different.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from wtls.git import GitError, run_git
from wtls.lifecycle import disk_usage, read_ports, read_spawn_record, reclaimable_bytes
from wtls.processes import scan as scan_processes
from wtls.watch import ChangeSet, WatchTargets
from wtls.worktrees import (
    MergeStep,
    Repository,
    RepositoryState,
    WorktreeConflict,
    WorktreeState,
    repository_payload,
    repository_state,
    with_agents,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RefreshResult:
    """``wtls.refresh``: the repositories read again (their keys, the common git dirs)."""

    repositories: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class EngineSettings:
    """What the engine needs from the user's settings."""

    base_branch: str | None = None
    ignore: tuple[str, ...] = ()
    far_behind: int = 50


@dataclass(frozen=True, kw_only=True)
class Refreshed:
    """The outcome of one refresh."""

    state: RepositoryState
    #: Whether the protocol payload differs from the previous one.
    changed: bool
    #: Whether the set of worktree folders changed (the watcher must be retargeted first).
    listing_changed: bool
    #: Worktrees that were re-read.
    touched: frozenset[Path]
    #: Files known to have changed, per worktree (for conflict-marker rescans).
    files: Mapping[Path, frozenset[Path]] = field(default_factory=dict)
    #: Only agent states were re-read (no file, ref or listing changed: nothing to predict).
    agents_only: bool = False
    #: Nothing was re-read: the current state shown to a session that joins (work that follows
    #: changes, a full prediction, a process scan, a test run, need not run again).
    replayed: bool = False


def ignored_dirs(worktree: Path) -> frozenset[Path]:
    """Folders git ignores in ``worktree`` (not recursed into), for cheap event filtering.

    An ignored symbolic link to a folder counts too (git lists it as a file): the OS watcher
    follows it, so a ``share`` link (``.wtls.toml``) would otherwise bring every write in the
    source worktree's shared folder to this worktree's refresh as well.
    """
    try:
        data = run_git(
            ["ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory"],
            worktree,
        ).stdout
    except GitError:
        return frozenset()
    out = set()
    for rel in data.split(b"\0"):
        if not rel:
            continue
        path = worktree / rel.decode("utf-8", "surrogateescape").rstrip("/")
        if rel.endswith(b"/") or (path.is_symlink() and path.is_dir()):
            out.add(path)
    return frozenset(out)


#: How long a refresh waits for a git command that is writing a worktree's index (seconds).
GIT_WRITE_GRACE = 5.0


def git_writing_until(lock_files: Iterable[Path], now: float) -> float | None:
    """When the git command holding one of ``lock_files`` should be done, at the latest: the
    youngest lock's mtime plus :data:`GIT_WRITE_GRACE`. None when no young lock exists (a
    lock older than that is a long operation or a stale lock of a crashed git: not waited for).
    """
    until: float | None = None
    for lock in lock_files:
        try:
            mtime = lock.stat().st_mtime
        except OSError:
            continue
        # A clock step backwards must not make a wait longer than the grace.
        end = min(mtime, now) + GIT_WRITE_GRACE
        if end > now and (until is None or end > until):
            until = end
    return until


class Engine:
    """The live state of one repository."""

    def __init__(self, repository: Repository, settings: EngineSettings | None = None) -> None:
        self.repository = repository
        self.settings = settings or EngineSettings()
        self.state: RepositoryState | None = None
        self._lock = threading.RLock()
        self._ignored: dict[Path, frozenset[Path]] = {}
        #: Extra per-worktree fields (disk size, ports, spawn record) kept across refreshes.
        self._extras: dict[Path, dict[str, Any]] = {}
        self._merge_order: tuple[MergeStep, ...] | None = None
        #: Set by :meth:`configure`: the next refresh reads everything with the new settings.
        self._reread_all = False

    def configure(self, settings: EngineSettings) -> None:
        """Use new settings; the next refresh re-reads everything. The current state stays
        readable until then (a client asking meanwhile gets it, not an empty answer)."""
        with self._lock:
            self.settings = settings
            self._reread_all = True

    def refresh(self, change: ChangeSet | None = None) -> Refreshed:
        """Re-read what ``change`` may have changed (everything when None). Blocking: run it
        off the event loop."""
        with self._lock:
            previous = self.state
            full = change is None or change.everything or previous is None or self._reread_all
            agents_only = change is not None and not (
                change.worktrees or change.refs or change.listing
            )
            if not full and agents_only and change is not None and previous is not None:
                return self._agents_only(previous, change.agents)
            only: Iterable[Path] | None = None
            if not full and change is not None:
                only = set(change.worktrees)
                if change.refs and previous is not None:
                    # A moved remote-tracking ref (fetch, push) changes ahead/behind upstream.
                    only |= {w.path for w in previous.worktrees if w.status.upstream}
            state = repository_state(
                self.repository,
                self.settings.base_branch,
                previous=None if full else previous,
                only=only,
            )
            touched = frozenset(
                w.path
                for w in state.worktrees
                if full or change is None or w.path in change.worktrees
            )
            for wt in state.worktrees:
                if wt.path in touched and not wt.bare:
                    extras = self._extras.setdefault(wt.path, {})
                    extras["ports"] = tuple(read_ports(wt.path).items())
                    extras["spawn"] = read_spawn_record(wt.path)
            state = self._with_extras(state)
            listing_changed = previous is None or _paths(previous) != _paths(state)
            if listing_changed or (change is not None and change.everything):
                self._ignored = {
                    wt.path: self._ignored.get(wt.path) or ignored_dirs(wt.path)
                    for wt in state.worktrees
                    if not wt.bare and wt.path.is_dir()
                }
            if change is not None and change.everything:
                self._ignored = {p: ignored_dirs(p) for p in self._ignored}
            self.state = state
            self._reread_all = False
            files = {k: frozenset(v) for k, v in change.files.items()} if change is not None else {}
            return Refreshed(
                state=state,
                changed=previous is None
                or repository_payload(previous) != repository_payload(state),
                listing_changed=listing_changed,
                touched=touched,
                files=files,
            )

    def _agents_only(self, previous: RepositoryState, agents: Iterable[Path]) -> Refreshed:
        """A refresh for agent state files alone: read those files, run no git."""
        state = replace(previous, worktrees=with_agents(previous.worktrees, agents))
        self.state = state
        return Refreshed(
            state=state,
            changed=repository_payload(previous) != repository_payload(state),
            listing_changed=False,
            touched=frozenset(),
            agents_only=True,
        )

    def set_extra(self, worktree: Path, key: str, value: Any) -> bool:
        """Attach a slow-to-compute field (``disk_bytes``, ``ports``); True if it changed."""
        with self._lock:
            extras = self._extras.setdefault(worktree, {})
            if extras.get(key) == value:
                return False
            extras[key] = value
            if self.state is not None:
                self.state = self._with_extras(self.state)
            return True

    def measure_disk(self, max_age: float = 60.0) -> bool:
        """Measure every worktree's size on disk (cached ``max_age`` seconds: a minute, 0 for a
        fresh walk); True if any changed.

        Walks the folders: blocking and proportional to their file counts, so run it off the
        event loop and not on every keystroke.
        """
        state = self.state
        if state is None:
            return False
        roots = [w.path for w in state.worktrees if not w.bare and w.path.is_dir()]
        changed = False
        for root in roots:
            nested = [r for r in roots if root in r.parents]
            try:
                size = disk_usage(root, max_age=max_age, exclude=nested)
            except OSError:
                continue
            changed |= self.set_extra(root, "disk_bytes", size)
        return changed

    def measure_processes(self) -> bool:
        """Find the processes using each worktree folder (:func:`wtls.processes.scan`); True
        if any count or process changed.

        Reads every process of the system once: blocking, so run it off the event loop, and
        not on every keystroke (the server does it after refreshes, rate-limited).
        """
        state = self.state
        if state is None:
            return False
        roots = [w.path for w in state.worktrees if not w.bare and w.path.is_dir()]
        found = scan_processes(roots)
        changed = False
        for root in roots:
            value = found.of(root) if found.supported else None
            changed |= self.set_extra(root, "processes", value)
        return changed

    def set_conflicts(
        self,
        conflicts: Mapping[Path, tuple[WorktreeConflict, ...]],
        merge_order: tuple[MergeStep, ...] | None,
    ) -> bool:
        """Store predicted conflicts per worktree; True if the payload changed."""
        with self._lock:
            changed = False
            for path, value in conflicts.items():
                changed |= self.set_extra(path, "conflicts", tuple(value))
            for path in list(self._extras):
                if path not in conflicts and self._extras[path].get("conflicts"):
                    changed |= self.set_extra(path, "conflicts", ())
            if self._merge_order != merge_order:
                self._merge_order = merge_order
                changed = True
                if self.state is not None:
                    self.state = replace(self.state, merge_order=merge_order)
            return changed

    def index_locks(self, change: ChangeSet) -> list[Path]:
        """The ``index.lock`` files a git command would hold while it rewrites a worktree that
        ``change`` concerns (a checkout, a merge, a reset, a commit; a ``worktree add``).

        Reading such a worktree before git is done shows a half-written state and costs a
        ``git status`` and a conflict prediction that the next event repeats.
        """
        state = self.state
        if state is None:
            return []
        every = change.everything or change.listing
        gitdirs = {
            w.gitdir
            for w in state.worktrees
            if w.gitdir is not None and (every or w.path in change.worktrees)
        }
        locks = [g / "index.lock" for g in gitdirs]
        if every:
            # A worktree being added is in no listing yet: its admin dir already has the lock.
            admin = self.repository.common_dir / "worktrees"
            with contextlib.suppress(OSError):
                locks += [a / "index.lock" for a in admin.iterdir()]
        return locks

    def watch_targets(self) -> WatchTargets:
        """What the watcher should watch for the current state."""
        with self._lock:
            state = self.state
            worktrees: dict[Path, Path | None] = {}
            if state is not None:
                worktrees = {w.path: w.gitdir for w in state.worktrees if not w.bare}
            return WatchTargets(
                common_dir=self.repository.common_dir,
                worktrees=worktrees,
                ignored_dirs=dict(self._ignored),
                ignore_globs=self.settings.ignore,
            )

    def _with_extras(self, state: RepositoryState) -> RepositoryState:
        worktrees: list[WorktreeState] = []
        for wt in state.worktrees:
            extras = self._extras.get(wt.path, {})
            worktrees.append(
                replace(
                    wt,
                    disk_bytes=extras.get("disk_bytes", wt.disk_bytes),
                    ports=extras.get("ports", wt.ports),
                    spawn=extras.get("spawn", wt.spawn),
                    conflicts=extras.get("conflicts", wt.conflicts),
                    processes=extras.get("processes", wt.processes),
                )
            )
        state = replace(state, worktrees=tuple(worktrees), merge_order=self._merge_order)
        return replace(state, reclaimable_bytes=reclaimable_bytes(state))


def _paths(state: RepositoryState) -> list[tuple[Path, bool]]:
    return [(w.path, w.prunable) for w in state.worktrees]
