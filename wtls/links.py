"""The links between worktrees and their repository, read from the disk.

All worktrees of a repository share the main worktree's ``.git`` folder (the *common* git dir).
Each linked worktree has a ``.git`` *file* (``gitdir: <common>/worktrees/<id>``) and each
``worktrees/<id>`` admin dir has a ``gitdir`` file pointing back at that ``.git`` file (and a
``commondir`` file pointing at the common dir). This module reads those files, finds where a
moved worktree or repository went, and explains a ``.git`` file whose git dir is missing.

It sits below :mod:`wtls.worktrees` (which explains a broken link when discovery fails) and
:mod:`wtls.repair` (which diagnoses and repairs links): it imports only :mod:`wtls.git`. The
folders involved may be gone, so nothing here raises on a missing or unreadable file.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from wtls.git import GitError, run_git, split_z

#: How many entries of one folder the relocation search looks at (keeps it cheap on big homes).
_MAX_SCAN = 500


def folder_prefix(folder: Path | str) -> str:
    """``folder`` as a text prefix of the paths inside it (``/a/b`` → ``/a/b/``, ``/`` → ``/``).

    Paths compared as text cost well under a microsecond; ``Path.parents`` builds and compares
    a Path per level, which showed in checks run per file event, or per session and refresh.
    """
    return os.path.join(folder, "")


def paths_inside(root: Path, files: Iterable[Path]) -> Iterator[str]:
    """The ``files`` inside ``root`` as paths relative to it (those outside are left out)."""
    prefix = folder_prefix(root)
    for file in files:
        text = str(file)
        if text.startswith(prefix):
            yield text[len(prefix) :]


def absolute(path: Path) -> Path:
    """Absolute, symlinks resolved where they exist, without failing on missing folders."""
    try:
        return path.resolve()
    except OSError:
        return Path(os.path.abspath(path))


def quote(path: Path | str) -> str:
    """Shell-quote a path for a command shown to the user."""
    return shlex.quote(str(path))


def read_text(file: Path) -> str | None:
    """A small file's text, or None when it cannot be read."""
    try:
        return file.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return None


def read_gitfile(worktree: Path) -> Path | None:
    """The git dir a linked worktree's ``.git`` file points at, or None if it is no such file."""
    dotgit = worktree / ".git"
    try:
        if not dotgit.is_file():
            return None
        text = dotgit.read_text(encoding="utf-8", errors="surrogateescape").strip()
    except OSError:
        return None
    if not text.startswith("gitdir:"):
        return None
    target = Path(text.removeprefix("gitdir:").strip())
    if not target.is_absolute():
        target = worktree / target
    return Path(os.path.normpath(target))


def worktree_root(path: Path) -> Path | None:
    """The nearest folder at or above ``path`` that has a ``.git`` (file or folder): the root of
    the worktree ``path`` is in, as the disk says (git's listing may disagree when broken)."""
    start = path if path.is_dir() else path.parent
    for folder in (start, *start.parents):
        if (folder / ".git").exists() or (folder / ".git").is_symlink():
            return folder
    return None


def admin_backlink(admin: Path) -> Path | None:
    """The ``.git`` file an admin dir's ``gitdir`` file points at (absolute), if readable."""
    text = read_text(admin / "gitdir")
    if text is None or not text.strip():
        return None
    target = Path(text.strip())
    if not target.is_absolute():
        # git >= 2.48 can write relative links (worktree.useRelativePaths).
        target = admin / target
    return absolute(target)


def common_of_admin(admin: Path) -> Path:
    """The common git dir an admin dir belongs to (its ``commondir`` file, else ``../..``)."""
    text = read_text(admin / "commondir")
    if text and text.strip():
        target = Path(text.strip())
        return absolute(target if target.is_absolute() else admin / target)
    return absolute(admin.parent.parent)


def is_git_dir(path: Path) -> bool:
    """Whether ``path`` looks like a git dir (``HEAD`` plus ``objects``)."""
    return (path / "HEAD").is_file() and (path / "objects").is_dir()


def main_folder(common: Path) -> Path:
    """Where to run repository-wide git commands: the main worktree, or the bare git dir."""
    if common.name == ".git" and common.parent.is_dir():
        return common.parent
    return common


def admin_dirs(common: Path) -> list[Path]:
    """The ``worktrees/<id>`` admin dirs of a repository."""
    try:
        return sorted(p for p in (common / "worktrees").iterdir() if p.is_dir())
    except OSError:
        return []


def points_at(gitfile_target: Path | None, admin: Path) -> bool:
    """Whether a ``.git`` file's target is ``admin``, or names it by id at a vanished place.

    The second case is a worktree whose repository moved too: its ``.git`` file still points at
    ``<old common>/worktrees/<id>``; git's own repair matches it the same way, by the id.
    """
    if gitfile_target is None:
        return False
    target = absolute(gitfile_target)
    if target == absolute(admin):
        return True
    return not target.exists() and target.name == admin.name and target.parent.name == "worktrees"


def _children(folder: Path) -> Iterator[Path]:
    """Sub-folders of ``folder`` (bounded), nothing if it cannot be listed."""
    try:
        with os.scandir(folder) as entries:
            for count, entry in enumerate(entries):
                if count >= _MAX_SCAN:
                    return
                try:
                    if entry.is_dir(follow_symlinks=False):
                        yield Path(entry.path)
                except OSError:
                    continue
    except OSError:
        return


def _search_dirs(anchors: Iterable[Path], cands: Sequence[Path]) -> Iterator[Path]:
    """Candidate folders, then the children of each anchor folder (deduplicated)."""
    seen: set[Path] = set()
    for folder in cands:
        if folder not in seen:
            seen.add(folder)
            yield folder
    for anchor in anchors:
        if not anchor.is_dir():
            continue
        for child in _children(anchor):
            if child not in seen:
                seen.add(child)
                yield child


def find_moved_folder(admin: Path, registered: Path, cands: Sequence[Path]) -> Path | None:
    """A folder whose ``.git`` file points at ``admin``: where a hand-moved worktree went."""
    common = common_of_admin(admin)
    anchors = [registered.parent, main_folder(common).parent]
    for folder in _search_dirs(anchors, cands):
        if (folder / ".git").is_file() and points_at(read_gitfile(folder), admin):
            return folder
    return None


def find_relocated(root: Path, target: Path, cands: Sequence[Path]) -> Path | None:
    """The moved repository whose ``worktrees/<id>/gitdir`` points back at ``root/.git``."""
    here = absolute(root / ".git")
    old_common = target.parent.parent
    anchors = [old_common.parent.parent, old_common.parent, root.parent]
    for folder in _search_dirs(anchors, cands):
        for common in _commons_at(folder):
            preferred = common / "worktrees" / target.name
            admins = [preferred, *(a for a in admin_dirs(common) if a != preferred)]
            for admin in admins:
                if admin.is_dir() and admin_backlink(admin) == here:
                    return absolute(common)
    return None


def _commons_at(folder: Path) -> list[Path]:
    """Common git dirs a folder may stand for: its ``.git`` folder, itself (bare), or the
    repository its (working) ``.git`` file belongs to."""
    out: list[Path] = []
    dotgit = folder / ".git"
    if dotgit.is_dir():
        out.append(dotgit)
    elif dotgit.is_file():
        target = read_gitfile(folder)
        if target is not None and target.is_dir():
            out.append(common_of_admin(target))
    elif (folder / "worktrees").is_dir() and is_git_dir(folder):
        out.append(folder)
    return out


# --------------------------------------------------------------------------------------------
# a .git file whose git dir is missing


@dataclass(frozen=True, kw_only=True)
class MissingGitdir:
    """What a linked worktree's ``.git`` file pointing at a missing git dir means."""

    kind: Literal["gitdir-missing", "main-deleted"]
    #: The repository (common git dir) that still works, where it is now.
    repository: Path | None
    #: What happened and what is still recoverable, in plain words.
    message: str
    #: The exact command that fixes it (or the safest next step when git cannot).
    fix: str
    #: Whether ``wtls repair --apply`` can fix it with no further input.
    repairable: bool


def diagnose_missing_gitdir(root: Path, target: Path, cands: Sequence[Path]) -> MissingGitdir:
    """A linked worktree whose ``.git`` file points at a missing admin dir: which case?"""
    is_admin_path = target.parent.name == "worktrees"
    old_common = target.parent.parent if is_admin_path else target
    if is_admin_path and is_git_dir(old_common):
        return _admin_deleted(root, target, old_common)
    relocated = find_relocated(root, target, cands)
    if relocated is not None:
        main = main_folder(relocated)
        return MissingGitdir(
            kind="gitdir-missing",
            repository=relocated,
            message=(
                f"{root} is a linked worktree whose repository moved: its .git file still "
                f"points at {target}, but the repository is now at {relocated}. Nothing is "
                "lost; git just cannot find it until the link is rewritten."
            ),
            fix=f"wtls repair --apply -- {quote(main)} {quote(root)}",
            repairable=True,
        )
    where = f"{old_common.parent}/.git" if old_common.name == ".git" else str(old_common)
    return MissingGitdir(
        kind="main-deleted",
        repository=None,
        message=(
            f"{root} is a linked worktree of the repository in {where}, which no longer "
            "exists. That folder held the whole history (commits, branches, stashes) of every "
            "worktree. If you moved it, run the repair from its new place: "
            f"`wtls repair --apply -- NEW_PLACE {quote(root)}`. If it was deleted, the history "
            f"is gone unless a clone or remote has it, but the files in {root} are intact: "
            "no repository tracks them now. Keep them by starting a new history there (the "
            "fix below keeps the stale .git file as .git.broken), or clone the project again "
            "and copy these files over."
        ),
        fix=(
            f"mv {quote(root / '.git')} {quote(root / '.git.broken')} && git -C {quote(root)} "
            f"init && git -C {quote(root)} add -A"
        ),
        repairable=False,
    )


def _admin_deleted(root: Path, target: Path, common: Path) -> MissingGitdir:
    """The repository is there but this worktree's ``worktrees/<id>`` admin dir was removed."""
    branches = _free_branches(common)
    listed = ", ".join(branches[:10]) + (", ..." if len(branches) > 10 else "")
    choices = f" Branches not checked out anywhere: {listed}." if branches else ""
    return MissingGitdir(
        kind="gitdir-missing",
        repository=common,
        message=(
            f"{root} is a linked worktree whose git data ({target}) was removed, probably by "
            "`git worktree prune` or by deleting it by hand; the repository itself is fine. "
            "git cannot repair this: it no longer knows which branch the folder had checked "
            "out. Your files in the folder are intact. Re-attach it to its branch: wtls "
            "re-registers the folder and rebuilds its index without touching any file (the "
            "changes you had show up as modifications against the branch)." + choices
        ),
        fix=f"wtls repair --apply --branch BRANCH -- {quote(root)}",
        repairable=False,
    )


def _free_branches(common: Path) -> list[str]:
    """Local branches not checked out in any registered worktree."""
    try:
        out = run_git(
            ["for-each-ref", "--format=%(refname:short)", "refs/heads/"], common
        ).text.splitlines()
        listing = run_git(["worktree", "list", "--porcelain", "-z"], common).stdout
    except GitError:
        return []
    # The `branch refs/heads/<name>` fields of the listing (wtls.worktrees.list_worktrees
    # reads the same listing in full; this module sits below it).
    used = {
        item.removeprefix("branch ").removeprefix("refs/heads/")
        for item in split_z(listing)
        if item.startswith("branch ")
    }
    return [b for b in out if b and b not in used]


def explain_broken_link(worktree: Path, gitdir: Path, candidates: Sequence[Path] = ()) -> str:
    """One paragraph for a linked worktree whose ``.git`` file points at a missing ``gitdir``:
    what happened (main moved, main deleted, admin dir removed), what is still recoverable, and
    the exact fix. Used for :class:`wtls.worktrees.BrokenWorktreeLink` messages."""
    root = absolute(Path(worktree))
    cands = [absolute(Path(c)) for c in candidates]
    found = diagnose_missing_gitdir(root, absolute(Path(gitdir)), cands)
    return f"{found.message} Fix: {found.fix}"
