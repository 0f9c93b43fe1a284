"""One file watcher per repository: every worktree folder plus the common git dir.

watchfiles' Rust watcher reports raw file events; this module turns them into a
:class:`ChangeSet` ("these worktrees changed, refs moved, the worktree list changed") and drops
what cannot matter (object files, reflogs, lock files, ignored folders such as node_modules)
before anything runs git. No LSP here.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

# watchfiles' private Rust watcher, on purpose: its public ``watch()`` generator creates the OS
# watch lazily, inside the first ``next()``, which blocks until a change arrives, so the caller
# cannot tell when the watch is established; wtls must (watch first, then read: a change made
# while reading is never missed, see :meth:`RepoWatcher.start`). ``watch()`` also filters out
# ``.git`` by default and turns a non-UTF-8 path into a lost batch we must notice. What is used
# here: ``RustNotify(paths, debug, force_polling, poll_delay_ms, recursive,
# ignore_permission_denied)``, ``.watch(debounce_ms, step_ms, timeout_ms, stop_event)`` returning
# a set of ``(change, path)`` or "stop"/"signal"/"timeout", ``.close()``, and
# ``WatchfilesRustInternalError``; tests/core/test_watch.py pins exactly that.
from watchfiles._rust_notify import RustNotify, WatchfilesRustInternalError

from wtls.agents import AGENT_FILE
from wtls.links import folder_prefix

log = logging.getLogger(__name__)

#: Folder names never worth a refresh. git status ignores them anyway when they are ignored,
#: but a flood of events from an `npm install` should not even reach git.
DEFAULT_IGNORED_NAMES = frozenset(
    {
        "node_modules",
        "__pycache__",
        ".venv",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".cache",
        ".gradle",
        ".next",
        "target",
    }
)

#: Files in a git dir whose change means "this worktree's HEAD, index or operation changed".
_WORKTREE_GIT_FILES = frozenset(
    {
        "HEAD",
        "index",
        "MERGE_HEAD",
        "CHERRY_PICK_HEAD",
        "REVERT_HEAD",
        "BISECT_LOG",
        "rebase-merge",
        "rebase-apply",
        "sequencer",
        "AUTO_MERGE",
    }
)
#: watchfiles' change kind for "modified" (1 added, 2 modified, 3 deleted).
_MODIFIED = 2
#: inotify watches each folder separately (and cannot watch an unreadable one).
_INOTIFY = sys.platform.startswith("linux")
#: Where sync cookies are written, relative to the common git dir (``wtls/sync/<name>``).
SYNC_DIR = ("wtls", "sync")
#: Files in a linked worktree's admin dir that change how `git worktree list` describes it.
_LISTING_FILES = frozenset({"locked", "gitdir"})


@dataclass
class ChangeSet:
    """What a batch of file events means for a repository."""

    #: Worktree roots whose files, index, HEAD or operation changed.
    worktrees: set[Path] = field(default_factory=set)
    #: Changed files (absolute) per worktree root, for conflict-marker rescans.
    files: dict[Path, set[Path]] = field(default_factory=dict)
    #: Worktree roots whose git data (index, HEAD, an operation's files) changed: their
    #: branch, HEAD or staging may differ from the last state read.
    git_data: set[Path] = field(default_factory=set)
    #: Branch or tag refs moved (a commit, a branch created, deleted or force-moved).
    refs: bool = False
    #: Worktrees were added, removed, locked, moved, or a worktree folder vanished.
    listing: bool = False
    #: Ignore rules or config changed: everything may differ.
    everything: bool = False
    #: Worktree roots whose agent state file changed (re-read without git).
    agents: set[Path] = field(default_factory=set)
    #: Sync cookies seen (names of files in ``<common dir>/wtls/sync``): every event that
    #: happened before a cookie was written has been reported by the time it is.
    cookies: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(
            self.worktrees
            or self.refs
            or self.listing
            or self.everything
            or self.agents
            or self.cookies
        )

    def merge(self, other: ChangeSet) -> None:
        """Fold ``other`` into this change set (coalescing bursts)."""
        self.worktrees |= other.worktrees
        for root, paths in other.files.items():
            self.files.setdefault(root, set()).update(paths)
        self.git_data |= other.git_data
        self.refs |= other.refs
        self.listing |= other.listing
        self.everything |= other.everything
        self.agents |= other.agents
        self.cookies |= other.cookies


@dataclass(frozen=True, kw_only=True)
class WatchTargets:
    """What to watch for one repository and how to read events."""

    common_dir: Path
    #: worktree root → its per-worktree git dir (None when unknown).
    worktrees: Mapping[Path, Path | None]
    #: worktree root → folders git ignores there (absolute), dropped without a refresh.
    ignored_dirs: Mapping[Path, frozenset[Path]] = field(default_factory=dict)
    ignore_globs: tuple[str, ...] = ()

    def paths(self) -> list[Path]:
        """The folders to hand to the OS watcher: existing worktree roots and the common dir."""
        roots = [p for p in self.worktrees if p.is_dir()]
        out = sorted(set(roots))
        if self.common_dir.is_dir() and not any(
            r == self.common_dir or r in self.common_dir.parents for r in out
        ):
            out.append(self.common_dir)
        # Where the main worktree is gone, its parent still tells us if it comes back or moves.
        return out


def classify(events: Iterable[Path], targets: WatchTargets) -> ChangeSet:
    """Turn raw changed paths into a :class:`ChangeSet` for ``targets``."""
    change = ChangeSet()
    common = targets.common_dir
    admin_to_root = {
        gitdir: root for root, gitdir in targets.worktrees.items() if gitdir is not None
    }
    # String prefixes, not ``Path.parents``: an `npm install` delivers ~100,000 events and
    # walking each one's parents (a Path object per level, per root) cost ~90 µs per event,
    # seconds of CPU holding the GIL; a prefix test costs well under a microsecond.
    common_str = str(common)
    common_prefix = folder_prefix(common)
    roots_by_depth = [
        (root, folder_prefix(root))
        for root in sorted(targets.worktrees, key=lambda p: len(p.parts), reverse=True)
    ]
    ignored_strs = {root: {str(d) for d in dirs} for root, dirs in targets.ignored_dirs.items()}
    root_strs = {str(root) for root in targets.worktrees}
    for path in events:
        text = str(path)
        if text == common_str or text.startswith(common_prefix):
            parts = tuple(text[len(common_prefix) :].split("/")) if text != common_str else ()
            _classify_git_path(parts, common, admin_to_root, change)
            continue
        if text in root_strs:
            # A worktree root itself was created or deleted.
            change.listing = True
            change.worktrees.add(path)
            continue
        found = next(((r, p) for r, p in roots_by_depth if text.startswith(p)), None)
        if found is None:
            continue
        root, prefix = found
        rel_parts = tuple(text[len(prefix) :].split("/"))
        if rel_parts[0] == ".git":
            # A linked worktree's .git file: its link to the repository changed.
            change.listing = True
            change.worktrees.add(root)
            continue
        if _ignored(path, rel_parts, prefix, ignored_strs.get(root), targets):
            continue
        change.worktrees.add(root)
        change.files.setdefault(root, set()).add(path)
        if rel_parts[-1] == ".gitignore":
            change.everything = True
    return change


def _classify_git_path(
    parts: tuple[str, ...], common: Path, admin_to_root: Mapping[Path, Path], change: ChangeSet
) -> None:
    if not parts:
        change.listing = True
        change.everything = True
        return
    head = parts[0]
    if head in ("objects", "logs", "hooks", "lfs") or parts[-1].endswith(".lock"):
        return
    if head == SYNC_DIR[0] and parts[1:2] == SYNC_DIR[1:] and len(parts) == 3:
        change.cookies.add(parts[2])
        return
    if parts[-1] == AGENT_FILE and len(parts) in (1, 3):
        # An agent's state (wtls.agents): only that file is read again, no git runs.
        admin = common if len(parts) == 1 else common / "worktrees" / parts[1]
        root = admin_to_root.get(admin) if len(parts) == 1 or head == "worktrees" else None
        if root is not None:
            change.agents.add(root)
        return
    if parts[-1].startswith(AGENT_FILE):
        return  # its temporary file
    if head in ("refs", "packed-refs"):
        change.refs = True
    elif head == "worktrees":
        if (
            len(parts) > 2
            and parts[1].startswith("scratch-")
            and parts[2] not in _LISTING_FILES
            and admin_to_root.get(common / "worktrees" / parts[1]) is None
        ):
            return  # a test run in one of wtls's own scratch worktrees (wtls/scratch.py)
        if len(parts) <= 2 or parts[2] in _LISTING_FILES:
            change.listing = True
        if len(parts) >= 2:
            root = admin_to_root.get(common / "worktrees" / parts[1])
            if root is not None and (len(parts) == 2 or parts[2] in _WORKTREE_GIT_FILES):
                change.worktrees.add(root)
                change.git_data.add(root)
            elif root is None:
                change.listing = True
    elif head in _WORKTREE_GIT_FILES:
        root = admin_to_root.get(common)
        if root is not None:
            change.worktrees.add(root)
            change.git_data.add(root)
    elif head in ("config", "info"):
        change.everything = True


def _ignored(
    path: Path,
    rel_parts: tuple[str, ...],
    prefix: str,
    ignored: set[str] | None,
    targets: WatchTargets,
) -> bool:
    if any(part in DEFAULT_IGNORED_NAMES for part in rel_parts[:-1]):
        return True
    if ignored:
        # Is a folder above the file (inside the worktree) one that git ignores?
        for depth in range(1, len(rel_parts)):
            if prefix + "/".join(rel_parts[:depth]) in ignored:
                return True
    if targets.ignore_globs:
        rel = "/".join(rel_parts)
        return any(
            fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(path.name, g) for g in targets.ignore_globs
        )
    return False


class RepoWatcher:
    """A background thread running one OS watcher over a repository's folders.

    ``on_changes`` is called from the watcher thread with each non-empty :class:`ChangeSet`.
    :meth:`retarget` swaps the watched folders and returns only once the new watch is active,
    so a caller can announce a new worktree knowing that its next change will be seen.

    ``step_ms``: the quiet time that ends a batch of events. A save is a few events within a
    millisecond, so 10 ms adds little to every change's latency; bursts are coalesced again by
    the refresh loop (:class:`wtls.server.shared.SharedRepository`). ``debounce_ms``: the longest
    a batch is held during a flood.
    """

    def __init__(
        self,
        targets: WatchTargets,
        on_changes: Callable[[ChangeSet], None],
        *,
        step_ms: int = 10,
        debounce_ms: int = 400,
    ) -> None:
        self._targets = targets
        self._on_changes = on_changes
        self._step_ms = step_ms
        self._debounce_ms = debounce_ms
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._restart = threading.Event()
        self._active = threading.Event()
        self._watched: list[Path] = []
        #: Worktrees to re-read once the watch is re-established.
        self._reread: set[Path] = set()
        self._thread = threading.Thread(target=self._run, name="wtls-watch", daemon=True)

    @property
    def watched(self) -> list[Path]:
        """The folders currently watched."""
        return list(self._watched)

    def start(self, timeout: float = 10.0) -> None:
        """Start watching; returns once the OS watch is established."""
        self._thread.start()
        self._active.wait(timeout)

    def retarget(self, targets: WatchTargets, timeout: float = 10.0) -> None:
        """Watch ``targets`` instead; blocks until the new watch is established."""
        with self._lock:
            if targets.paths() == self._watched:
                self._targets = targets  # same folders: only the reading of events changes
                return
            self._targets = targets
            self._active.clear()
            self._restart.set()
        self._active.wait(timeout)

    def stop(self) -> None:
        """Stop watching and end the thread."""
        self._stop.set()
        self._restart.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _should_return(self) -> _Flag:
        return _Flag(self._restart)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                targets = self._targets
                self._restart.clear()
            paths = [p for p in targets.paths() if p.exists()]
            if not paths:
                # Nothing left to watch (every folder gone): wait to be retargeted or stopped.
                self._watched = []
                self._active.set()
                self._restart.wait()
                continue
            try:
                notify = RustNotify([str(p) for p in paths], False, False, 300, True, True)
            except (FileNotFoundError, OSError) as exc:
                log.warning("could not watch %s: %s", paths, exc)
                self._watched = []
                self._active.set()
                self._restart.wait(1.0)
                continue
            self._watched = paths
            self._active.set()
            if self._reread:
                reread, self._reread = self._reread, set()
                try:
                    self._on_changes(ChangeSet(worktrees=reread))
                except Exception:  # a consumer bug must not kill the watcher
                    log.exception("change handler failed")
            try:
                self._loop(notify)
            finally:
                notify.close()

    def _loop(self, notify: RustNotify) -> None:
        stop_flag = self._should_return()
        while True:
            try:
                result = notify.watch(self._debounce_ms, self._step_ms, 0, stop_flag)
            except WatchfilesRustInternalError as exc:
                # watchfiles cannot hand over a path that is not UTF-8 and drops the whole
                # batch: re-read everything rather than miss it, and watch afresh.
                log.warning("file events lost (%s): re-reading everything", exc)
                try:
                    self._on_changes(ChangeSet(everything=True))
                except Exception:  # a consumer bug must not kill the watcher
                    log.exception("change handler failed")
                return
            if isinstance(result, str):
                if result in ("stop", "signal"):
                    return
                continue
            with self._lock:
                targets = self._targets
            events = [Path(os.path.normpath(path)) for _, path in result]
            change = classify(events, targets)
            if change:
                try:
                    self._on_changes(change)
                except Exception:  # a consumer bug must not kill the watcher
                    log.exception("change handler failed")
            if _INOTIFY and any(kind == _MODIFIED and os.path.isdir(p) for kind, p in result):
                # A folder's permissions or owner changed (inotify reports no other
                # modification of a folder): one that was unreadable when the watch started
                # was never watched, so watch everything again and it is from now on (and
                # re-read those worktrees then: a write in between is not missed).
                self._reread |= change.worktrees
                return


@dataclass(frozen=True)
class _Flag:
    event: threading.Event

    def is_set(self) -> bool:
        return self.event.is_set()
