"""What every lifecycle operation shares: the repository lock, naming a worktree, small helpers."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol, TypeVar

from wtls.backup.gitdata import checkout_ids, disk_entry, object_format
from wtls.errors import Refused
from wtls.git import GitBusy, run_git, split_z
from wtls.lifecycle.results import (
    _LOCK_NAME,
    _LOCK_TIMEOUT,
    Callback,
)
from wtls.links import absolute
from wtls.locations import to_path
from wtls.worktrees import (
    Repository,
    RepositoryState,
    WorktreeEntry,
    WorktreeState,
    discover,
    list_worktrees,
)


def _start_dir(start: Path | str) -> Path:
    p = absolute(Path(start))
    return p if p.is_dir() or not p.exists() else p.parent


def _say(callback: Callback, text: str) -> None:
    if callback is not None:
        callback(text)


def _files_text(files: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(files[:limit])
    return shown + (f" and {len(files) - limit} more" if len(files) > limit else "")


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


@dataclass(frozen=True)
class _Repo:
    repository: Repository
    entries: tuple[WorktreeEntry, ...]

    @property
    def main(self) -> WorktreeEntry | None:
        return next((e for e in self.entries if e.is_main and not e.bare), None)

    @property
    def run_dir(self) -> Path:
        """Where repository-wide git commands run: the main worktree, else the common dir."""
        main = self.main
        if main is not None and main.path.is_dir():
            return main.path
        return self.repository.common_dir


def _open_repo(start: Path | str) -> _Repo:
    repository = discover(start)
    return _Repo(repository, tuple(list_worktrees(repository)))


@contextlib.contextmanager
def _repo_lock(common_dir: Path, timeout: float = _LOCK_TIMEOUT) -> Iterator[None]:
    """Serialise wtls lifecycle operations of one repository (across processes and threads)."""
    try:
        import fcntl

        from wtls.filelock import flock_within
    except ImportError:  # pragma: no cover - Windows: git's own locks are the only guard
        yield
        return
    lock_path = common_dir / _LOCK_NAME
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not flock_within(fd, timeout, poll=0.05):
            raise GitBusy(
                ["worktree"],
                -1,
                f"Unable to create '{lock_path}': another wtls command is still running",
                common_dir,
            )
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class _WorktreeLike(Protocol):
    @property
    def path(self) -> Path: ...
    @property
    def branch(self) -> str | None: ...
    @property
    def is_main(self) -> bool: ...
    @property
    def bare(self) -> bool: ...


_W = TypeVar("_W", bound=_WorktreeLike)


def _describe(items: Sequence[_WorktreeLike]) -> str:
    parts = []
    for w in items:
        if w.bare:
            continue
        label = w.branch or "detached"
        parts.append(f"{w.path} ({label}{', main' if w.is_main else ''})")
    return "; ".join(parts) or "none"


def _match_worktree(items: Sequence[_W], spec: str, cwd: Path | None) -> _W:
    if not spec or _has_control(spec):
        raise Refused(f"{spec!r} is not a worktree path or branch name")
    candidates = [w for w in items if not w.bare]
    as_path = absolute(to_path(spec, name="worktree", base=cwd or Path.cwd()))
    for w in candidates:
        if w.path == as_path:
            return w
    short = spec.removeprefix("refs/heads/")
    for w in candidates:
        if w.branch is not None and w.branch == short:
            return w
    if as_path.exists():
        inside = [w for w in candidates if w.path in as_path.parents]
        if inside:
            return max(inside, key=lambda w: len(w.path.parts))
    by_name = [w for w in candidates if w.path.name == spec]
    if len(by_name) == 1:
        return by_name[0]
    raise Refused(
        f"no worktree matches {spec!r}: give a worktree's path or its branch name. "
        f"Worktrees: {_describe(items)}"
    )


def resolve_worktree(
    state: RepositoryState, spec: str, *, cwd: Path | None = None
) -> WorktreeState:
    """The worktree ``spec`` names: its path (or a path inside it), its branch, or its folder name.

    Raises :class:`Refused` listing the worktrees when nothing matches.
    """
    return _match_worktree(state.worktrees, spec, cwd)


def rewritten_paths(worktree: Path, old: str, new: str) -> list[str]:
    """The paths that going from commit ``old`` to ``new`` adds, changes or deletes (a merge
    from its merge base to the branch, a fast-forward of the base branch)."""
    return split_z(
        run_git(["diff-tree", "-r", "-z", "--name-only", "--no-renames", old, new], worktree).stdout
    )


def in_the_way(worktree: Path, old: str, new: str, *, head: str | None = None) -> list[str]:
    """Untracked or ignored files of ``worktree`` that ``read-tree -u -m OLD NEW`` would replace.

    ``git read-tree`` overwrites ignored files (it has no way to keep them), and a file or link
    standing where a new folder goes would be replaced too. wtls never loses them: the paths
    are named and nothing moves. ``git merge`` does the same with what the merged side
    changed: give it ``old`` = the merge base, ``new`` = the branch and ``head`` = the
    worktree's HEAD (whose folders are not in the way; default ``old``).
    """
    changed = rewritten_paths(worktree, old, new)
    if not changed:
        return []
    old_dirs = set(
        split_z(run_git(["ls-tree", "-r", "-d", "-z", "--name-only", head or old], worktree).stdout)
    )
    found: set[str] = set()
    for path in changed:
        parts = PurePosixPath(path).parts
        for n in range(1, len(parts)):
            prefix = "/".join(parts[:n])
            if prefix in old_dirs:
                continue
            at = worktree / prefix
            if at.is_symlink() or (os.path.lexists(at) and not at.is_dir()):
                found.add(prefix)
    listing: list[str] = []
    for at_once in range(0, len(changed), 500):  # a huge landing stays under ARG_MAX
        listing += split_z(
            run_git(
                [
                    "status",
                    "--porcelain=v1",
                    "-z",
                    "--untracked-files=all",
                    "--ignored=matching",
                    "--",
                    *changed[at_once : at_once + 500],
                ],
                worktree,
                env={"GIT_LITERAL_PATHSPECS": "1"},
            ).stdout
        )
    for item in listing:
        if item[:2] not in ("??", "!!"):
            continue
        path = item[3:]
        if path.endswith("/"):
            # A whole ignored folder: only what stands where the new tip writes is in the
            # way (an empty or unrelated ignored folder is not), or a file put in its place.
            found.update(
                c
                for c in changed
                if c == path[:-1] or (c.startswith(path) and os.path.lexists(worktree / c))
            )
        else:
            found.add(path)
    return sorted(found)


#: Index modes of files ``hash-object`` can compare (a symlink or submodule it cannot).
_FILE_MODES = ("100644", "100755")


def unseen_text(worktree: Path, files: Sequence[str]) -> str:
    """How a refusal names :func:`unseen_edits`' files and says how to make git see them."""
    return (
        f"the base worktree {worktree} has uncommitted changes that git's status does not "
        f"show: {_files_text(files)} (edited in the same second git last looked at them with "
        "the same size, or marked assume-unchanged or skip-worktree); moving it would "
        "overwrite them. `touch` them (and `git update-index --no-assume-unchanged "
        "--no-skip-worktree -- FILE`) so git sees them, then commit or stash them"
    )


def unseen_edits(worktree: Path, old: str, new: str, *, head: str) -> list[str]:
    """Tracked files that going from ``old`` to ``new`` rewrites, edited unseen by git.

    git trusts a file's size and timestamps: an edit of the same size made in the same second
    git last looked at the file (or by a tool that keeps the timestamp) does not show in
    ``git status``, and a merge or checkout then replaces it without a word. So the files the
    move rewrites are compared by content, both ways git does: hashed as ``git add`` would
    (``hash-object``, with the paths' filters) against the index, and, for those that differ,
    their raw bytes against what a checkout of ``head`` writes (a file committed with CRLF
    under ``text=auto`` hashes differently, yet is what a checkout gives). A few files, not the
    whole worktree. ``head``: the worktree's HEAD, whose index has no staged change.
    """
    changed = rewritten_paths(worktree, old, new)
    staged: dict[str, str] = {}
    for at_once in range(0, len(changed), 500):
        out = run_git(
            ["ls-files", "-s", "-z", "--", *changed[at_once : at_once + 500]],
            worktree,
            env={"GIT_LITERAL_PATHSPECS": "1"},
        ).stdout
        for item in split_z(out):
            meta, _, path = item.partition("\t")
            mode, oid, stage = [*meta.split(" "), "", "", ""][:3]
            if stage == "0" and mode in _FILE_MODES:
                staged[path] = oid
    # hash-object reads one path a line: a name holding a newline is left to git's own check.
    candidates = [p for p in staged if "\n" not in p and stat.S_ISREG(_lstat_mode(worktree / p))]
    if not candidates:
        return []
    hashed = run_git(
        ["hash-object", "--stdin-paths"],
        worktree,
        input=b"".join(os.fsencode(p) + b"\n" for p in candidates),
        timeout=None,
    ).text.splitlines()
    differ = [p for p, oid in zip(candidates, hashed, strict=True) if oid != staged[p]]
    if not differ:
        return []
    fmt = object_format(worktree)
    checkout = checkout_ids(worktree, head, differ, fmt)
    return sorted(
        p for p in differ if (disk_entry(worktree, p, fmt) or ("", ""))[1] != checkout.get(p)
    )


def _lstat_mode(path: Path) -> int:
    try:
        return path.lstat().st_mode
    except OSError:
        return 0
