"""Broken worktree links: find them, explain them in plain words, repair them; move worktrees.

All worktrees of a repository share the main worktree's ``.git`` folder. Each linked worktree
has a ``.git`` *file* (``gitdir: <common>/worktrees/<id>``) and each ``worktrees/<id>`` admin
dir has a ``gitdir`` file pointing back at that ``.git`` file. Moving a folder by hand breaks
one of the two directions; :func:`diagnose` names which one, :func:`repair` runs
``git worktree repair`` from whichever side still works and checks both directions afterwards,
and :func:`move` moves a linked worktree the way git supports.

Pure core: no LSP; every git call goes through :func:`wtls.git.run_git`. Nothing here deletes a
user's file: repairs only rewrite the two link files (reported before → after).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from wtls.errors import Refused
from wtls.git import GitError, run_git
from wtls.problems import Problem
from wtls.worktrees import (
    NotARepository,
    Repository,
    RepositoryError,
    WorktreeEntry,
    discover,
    list_worktrees,
    read_gitfile,
    read_status,
    worktree_root,
)

BreakageKind = Literal[
    "gitdir-missing",
    "folder-moved",
    "folder-missing",
    "main-deleted",
    "folder-copied",
    "dotgit-missing",
    "backlink-missing",
]

#: How many entries of one folder the relocation search looks at (keeps it cheap on big homes).
_MAX_SCAN = 500


@dataclass(frozen=True, kw_only=True)
class Breakage:
    """One broken link between a worktree and its repository, with the exact fix."""

    kind: BreakageKind
    #: The worktree folder concerned (for ``folder-missing``: where git believes it is).
    worktree: Path
    #: The admin dir (``<common>/worktrees/<id>``) the link is about, when known.
    gitdir: Path | None
    #: What happened and what is still recoverable, in plain words.
    message: str
    #: The exact command that fixes it (or the safest next step when git cannot).
    fix: str
    #: Whether ``wtls repair --apply`` can fix it with no further input.
    repairable: bool
    #: The repository (common git dir) that still works, where it is now.
    repository: Path | None = None
    #: Where git's records say the worktree is (differs from ``worktree`` when it moved).
    registered: Path | None = None

    @property
    def dotgit(self) -> Path:
        """The worktree's ``.git`` file: where an editor shows this breakage."""
        return self.worktree / ".git"

    def to_problem(self) -> Problem:
        """This breakage as an Error on the worktree's ``.git`` file, with the fix in it."""
        return Problem(
            path=self.dotgit,
            severity="error",
            code=self.kind,
            message=f"{self.message} Fix: {self.fix}",
            data={
                "worktree": str(self.worktree),
                "kind": self.kind,
                "fix": self.fix,
                "repairable": self.repairable,
                "repository": str(self.repository) if self.repository else None,
            },
        )

    def to_json(self) -> dict[str, Any]:
        """JSON form (``wtls repair --json``, server results)."""
        return {
            "kind": self.kind,
            "worktree": str(self.worktree),
            "gitdir": str(self.gitdir) if self.gitdir else None,
            "message": self.message,
            "fix": self.fix,
            "repairable": self.repairable,
            "repository": str(self.repository) if self.repository else None,
            "registered": str(self.registered) if self.registered else None,
        }


@dataclass(frozen=True, kw_only=True)
class LinkChange:
    """One link file that a repair rewrote (``None`` = the file did not exist)."""

    file: Path
    before: str | None
    after: str | None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"file": str(self.file), "before": self.before, "after": self.after}


@dataclass(frozen=True, kw_only=True)
class RepairResult:
    """What :func:`repair` found, did (or would do) and verified."""

    applied: bool
    #: What was broken before.
    breakages: tuple[Breakage, ...]
    #: The git commands run (applied) or that would run (dry run), shell-quoted for display.
    commands: tuple[str, ...]
    changed: tuple[LinkChange, ...]
    #: Both directions of every involved link check out and ``git status`` works in each.
    verified: bool
    messages: tuple[str, ...]
    #: What is still broken (after the repair, or now for a dry run).
    remaining: tuple[Breakage, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``wtls.repair`` result and ``wtls repair --json`` output."""
        return {
            "applied": self.applied,
            "broken": [b.to_json() for b in self.breakages],
            "commands": list(self.commands),
            "changed": [c.to_json() for c in self.changed],
            "verified": self.verified,
            "messages": list(self.messages),
            "remaining": [b.to_json() for b in self.remaining],
        }


@dataclass(frozen=True, kw_only=True)
class MoveResult:
    """A worktree moved by :func:`move`."""

    source: Path
    destination: Path
    branch: str | None

    def to_json(self) -> dict[str, Any]:
        """The ``wtls.move`` result: ``{from, to, branch}``."""
        return {"from": str(self.source), "to": str(self.destination), "branch": self.branch}


# --------------------------------------------------------------------------------------------
# small path helpers (the folders involved may be gone, so nothing here may raise on that)


def _abs(path: Path) -> Path:
    """Absolute, symlinks resolved where they exist, without failing on missing folders."""
    try:
        return path.resolve()
    except OSError:
        return Path(os.path.abspath(path))


def _q(path: Path | str) -> str:
    """Shell-quote a path for a command shown to the user."""
    return shlex.quote(str(path))


def _read_text(file: Path) -> str | None:
    """A small file's text, or None when it cannot be read."""
    try:
        return file.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return None


def _admin_backlink(admin: Path) -> Path | None:
    """The ``.git`` file an admin dir's ``gitdir`` file points at (absolute), if readable."""
    text = _read_text(admin / "gitdir")
    if text is None or not text.strip():
        return None
    target = Path(text.strip())
    if not target.is_absolute():
        # git >= 2.48 can write relative links (worktree.useRelativePaths).
        target = admin / target
    return _abs(target)


def _common_of_admin(admin: Path) -> Path:
    """The common git dir an admin dir belongs to (its ``commondir`` file, else ``../..``)."""
    text = _read_text(admin / "commondir")
    if text and text.strip():
        target = Path(text.strip())
        return _abs(target if target.is_absolute() else admin / target)
    return _abs(admin.parent.parent)


def _is_git_dir(path: Path) -> bool:
    """Whether ``path`` looks like a git dir (``HEAD`` plus ``objects``)."""
    return (path / "HEAD").is_file() and (path / "objects").is_dir()


def _main_folder(common: Path) -> Path:
    """Where to run repository-wide git commands: the main worktree, or the bare git dir."""
    if common.name == ".git" and common.parent.is_dir():
        return common.parent
    return common


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


def _admin_dirs(common: Path) -> list[Path]:
    """The ``worktrees/<id>`` admin dirs of a repository."""
    try:
        return sorted(p for p in (common / "worktrees").iterdir() if p.is_dir())
    except OSError:
        return []


def _points_at(gitfile_target: Path | None, admin: Path) -> bool:
    """Whether a ``.git`` file's target is ``admin``, or names it by id at a vanished place.

    The second case is a worktree whose repository moved too: its ``.git`` file still points at
    ``<old common>/worktrees/<id>``; git's own repair matches it the same way, by the id.
    """
    if gitfile_target is None:
        return False
    target = _abs(gitfile_target)
    if target == _abs(admin):
        return True
    return not target.exists() and target.name == admin.name and target.parent.name == "worktrees"


# --------------------------------------------------------------------------------------------
# diagnosis


def diagnose(path: Path, candidates: Sequence[Path] = ()) -> list[Breakage]:
    """What is broken around ``path`` (any folder of a worktree, main or linked).

    ``candidates`` are folders where a moved worktree or main worktree may now be (the open
    workspace folders, the paths a user named); the siblings of the old locations are searched
    too. The breakages of ``path``'s own worktree come first, then those of the other worktrees
    of its repository. Raises :class:`wtls.worktrees.NotARepository` when ``path`` is in no
    repository at all.
    """
    p = _abs(Path(path))
    cands = [_abs(Path(c)) for c in candidates]
    root = worktree_root(p)
    found: list[Breakage] = []
    common: Path | None = None
    if root is not None and (root / ".git").is_file():
        target = read_gitfile(root)
        if target is None:
            raise NotARepository(f"{root}/.git is not a valid .git file (no `gitdir:` line)")
        target = _abs(target)
        if not target.is_dir():
            breakage = _diagnose_missing_gitdir(root, target, cands)
            found.append(breakage)
            common = breakage.repository
        else:
            own = _diagnose_backlink(root, target)
            if own is not None:
                found.append(own)
            common = _common_of_admin(target)
    else:
        common = discover(p).common_dir
    if common is not None:
        for breakage in _scan_repository(common, cands):
            if all(b.worktree != breakage.worktree for b in found):
                found.append(breakage)
    return found


def is_listed(repo: Repository, folder: Path, listed: Iterable[Path] | None = None) -> bool:
    """Whether git lists the worktree that ``folder`` is in. ``listed`` are the worktree paths
    of a listing just read; without it ``git worktree list`` runs. Blocking."""
    folder = _abs(folder)
    common = repo.common_dir
    if folder == common or common in folder.parents:
        return True  # the git dir itself (a bare repository)
    root = worktree_root(folder)
    gitfile = read_gitfile(root) if root is not None else None
    if gitfile is not None and _abs(gitfile) == common:
        # A main worktree whose .git is a file: a submodule, `--separate-git-dir`, a `.bare`
        # layout. git may list it under its git dir's path; it is no linked one.
        return True
    paths = listed if listed is not None else (e.path for e in list_worktrees(repo))
    return (root or folder) in set(paths)


def unlisted(repo: Repository, folder: Path) -> list[Breakage] | None:
    """None when ``git worktree list`` (read now) lists the worktree that ``folder`` is in;
    else what is broken about that worktree (an empty list: nothing wtls can name, mostly a
    change still being made, such as its git data half deleted). Blocking: runs git."""
    if is_listed(repo, folder):
        return None
    where = worktree_root(_abs(folder)) or _abs(folder)
    try:
        return [b for b in diagnose(where) if b.worktree == where]
    except (RepositoryError, GitError, OSError):
        return []


def _diagnose_missing_gitdir(root: Path, target: Path, cands: Sequence[Path]) -> Breakage:
    """A linked worktree whose ``.git`` file points at a missing admin dir: which case?"""
    is_admin_path = target.parent.name == "worktrees"
    old_common = target.parent.parent if is_admin_path else target
    if is_admin_path and _is_git_dir(old_common):
        return _admin_deleted(root, target, old_common)
    relocated = _find_relocated(root, target, cands)
    if relocated is not None:
        main = _main_folder(relocated)
        return Breakage(
            kind="gitdir-missing",
            worktree=root,
            gitdir=target,
            repository=relocated,
            message=(
                f"{root} is a linked worktree whose repository moved: its .git file still "
                f"points at {target}, but the repository is now at {relocated}. Nothing is "
                "lost; git just cannot find it until the link is rewritten."
            ),
            fix=f"wtls repair --apply -- {_q(main)} {_q(root)}",
            repairable=True,
        )
    where = f"{old_common.parent}/.git" if old_common.name == ".git" else str(old_common)
    return Breakage(
        kind="main-deleted",
        worktree=root,
        gitdir=target,
        message=(
            f"{root} is a linked worktree of the repository in {where}, which no longer "
            "exists. That folder held the whole history (commits, branches, stashes) of every "
            "worktree. If you moved it, run the repair from its new place: "
            f"`wtls repair --apply -- NEW_PLACE {_q(root)}`. If it was deleted, the history "
            f"is gone unless a clone or remote has it, but the files in {root} are intact: "
            "no repository tracks them now. Keep them by starting a new history there (the "
            "fix below keeps the stale .git file as .git.broken), or clone the project again "
            "and copy these files over."
        ),
        fix=(
            f"mv {_q(root / '.git')} {_q(root / '.git.broken')} && git -C {_q(root)} init "
            f"&& git -C {_q(root)} add -A"
        ),
        repairable=False,
    )


def _admin_deleted(root: Path, target: Path, common: Path) -> Breakage:
    """The repository is there but this worktree's ``worktrees/<id>`` admin dir was removed."""
    branches = _free_branches(common)
    listed = ", ".join(branches[:10]) + (", ..." if len(branches) > 10 else "")
    choices = f" Branches not checked out anywhere: {listed}." if branches else ""
    return Breakage(
        kind="gitdir-missing",
        worktree=root,
        gitdir=target,
        repository=common,
        message=(
            f"{root} is a linked worktree whose git data ({target}) was removed, probably by "
            "`git worktree prune` or by deleting it by hand; the repository itself is fine. "
            "git cannot repair this: it no longer knows which branch the folder had checked "
            "out. Your files in the folder are intact. Re-attach it to its branch: wtls "
            "re-registers the folder and rebuilds its index without touching any file (the "
            "changes you had show up as modifications against the branch)." + choices
        ),
        fix=f"wtls repair --apply --branch BRANCH -- {_q(root)}",
        repairable=False,
    )


def _free_branches(common: Path) -> list[str]:
    """Local branches not checked out in any registered worktree."""
    try:
        out = run_git(
            ["for-each-ref", "--format=%(refname:short)", "refs/heads/"], common
        ).text.splitlines()
        used = {
            e.branch
            for e in list_worktrees(Repository(common_dir=common, bare=common.name != ".git"))
            if e.branch is not None
        }
    except (GitError, RepositoryError):
        return []
    return [b for b in out if b and b not in used]


def _diagnose_backlink(root: Path, admin: Path) -> Breakage | None:
    """A linked worktree whose admin dir exists: does the admin dir point back at it?"""
    recorded = _admin_backlink(admin)
    here = _abs(root / ".git")
    if recorded == here:
        return None
    linked = admin.parent.name == "worktrees" and (admin / "commondir").is_file()
    if recorded is None and not linked:
        return None  # a main worktree's git dir (a submodule's, a separate one): no back-link
    if recorded is None:
        # Without its `gitdir` file git cannot tell where the worktree is: `git worktree list`
        # leaves it out and `git worktree prune` would delete the admin dir.
        return Breakage(
            kind="backlink-missing",
            worktree=root,
            gitdir=admin,
            repository=_common_of_admin(admin),
            message=(
                f"The worktree {root} is missing from `git worktree list`: its record "
                f"{admin}/gitdir is missing or unreadable, so git no longer knows where it is "
                "(and `git worktree prune` would forget it). Its files and git data are intact."
            ),
            fix=f"wtls repair --apply -- {_q(root)}",
            repairable=True,
        )
    registered = recorded.parent
    main = _main_folder(_common_of_admin(admin))
    if recorded.exists() and _points_at(read_gitfile(registered), admin):
        return Breakage(
            kind="folder-copied",
            worktree=root,
            gitdir=admin,
            registered=registered,
            repository=_common_of_admin(admin),
            message=(
                f"{root} looks like a copy of the worktree {registered}: both .git files use "
                f"the same git data ({admin}), so they share one index and one HEAD and each "
                "one's commits and checkouts corrupt the other's view. git only knows "
                f"{registered}. Make this folder a worktree of its own instead (the fix keeps "
                "the copied .git file as .git.copied; then add a worktree elsewhere with "
                "`wtls spawn` and copy your files over)."
            ),
            fix=f"mv {_q(root / '.git')} {_q(root / '.git.copied')}",
            repairable=False,
        )
    return Breakage(
        kind="folder-moved",
        worktree=root,
        gitdir=admin,
        registered=registered,
        repository=_common_of_admin(admin),
        message=(
            f"The worktree {root} was moved by hand: git still records it at {registered}, "
            "so `git worktree list` calls it prunable and `git worktree prune` would forget "
            "it. Nothing is lost; the repository's record just needs the new path."
        ),
        fix=f"wtls repair --apply -- {_q(main)} {_q(root)}",
        repairable=True,
    )


def _scan_repository(common: Path, cands: Sequence[Path]) -> list[Breakage]:
    """Check every admin dir of a working repository against its worktree folder."""
    main = _main_folder(common)
    found: list[Breakage] = []
    for admin in _admin_dirs(common):
        recorded = _admin_backlink(admin)
        if recorded is None:
            continue
        folder = recorded.parent
        if recorded.is_file():
            target = read_gitfile(folder)
            if target is not None and _abs(target) != _abs(admin) and not target.exists():
                found.append(
                    Breakage(
                        kind="gitdir-missing",
                        worktree=folder,
                        gitdir=_abs(target),
                        repository=common,
                        message=(
                            f"{folder} is a linked worktree whose repository moved to "
                            f"{main}: its .git file still points at {target}, which no "
                            "longer exists. Nothing is lost; the link needs rewriting."
                        ),
                        fix=f"wtls repair --apply -- {_q(main)}",
                        repairable=True,
                    )
                )
            continue
        if folder.is_dir() and not (folder / ".git").exists():
            found.append(
                Breakage(
                    kind="dotgit-missing",
                    worktree=folder,
                    gitdir=admin,
                    repository=common,
                    message=(
                        f"The .git file of the worktree {folder} was deleted, so git no longer "
                        "sees the folder as a worktree (commands there fall through to any "
                        "enclosing repository, or fail). Its files and its git data are intact; "
                        "the .git file only needs to be written again."
                    ),
                    fix=f"wtls repair --apply -- {_q(main)}",
                    repairable=True,
                )
            )
            continue
        moved_to = _find_moved_folder(admin, folder, cands)
        locked = (admin / "locked").exists()
        if moved_to is not None:
            found.append(
                Breakage(
                    kind="folder-moved",
                    worktree=moved_to,
                    gitdir=admin,
                    registered=folder,
                    repository=common,
                    message=(
                        f"The worktree {folder} was moved by hand to {moved_to}: git still "
                        "records the old path, so `git worktree prune` would forget it. "
                        "Nothing is lost; the repository's record needs the new path."
                    ),
                    fix=f"wtls repair --apply -- {_q(main)} {_q(moved_to)}",
                    repairable=True,
                )
            )
        else:
            keep = " It is locked, so git keeps its record until it is unlocked." if locked else ""
            found.append(
                Breakage(
                    kind="folder-missing",
                    worktree=folder,
                    gitdir=admin,
                    registered=folder,
                    repository=common,
                    message=(
                        f"The worktree folder {folder} is gone (moved or deleted). If you moved "
                        "it, tell wtls where it is now: `wtls repair --apply -- NEW_PATH`. If "
                        "you deleted it, its uncommitted changes are lost but its commits are "
                        "safe on its branch; `wtls prune` forgets the stale record." + keep
                    ),
                    fix=f"wtls repair --apply -- {_q(main)} NEW_PATH   (or: wtls prune)",
                    repairable=False,
                )
            )
    return found


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


def _find_moved_folder(admin: Path, registered: Path, cands: Sequence[Path]) -> Path | None:
    """A folder whose ``.git`` file points at ``admin``: where a hand-moved worktree went."""
    common = _common_of_admin(admin)
    anchors = [registered.parent, _main_folder(common).parent]
    for folder in _search_dirs(anchors, cands):
        if (folder / ".git").is_file() and _points_at(read_gitfile(folder), admin):
            return folder
    return None


def _find_relocated(root: Path, target: Path, cands: Sequence[Path]) -> Path | None:
    """The moved repository whose ``worktrees/<id>/gitdir`` points back at ``root/.git``."""
    here = _abs(root / ".git")
    old_common = target.parent.parent
    anchors = [old_common.parent.parent, old_common.parent, root.parent]
    for folder in _search_dirs(anchors, cands):
        for common in _commons_at(folder):
            preferred = common / "worktrees" / target.name
            admins = [preferred, *(a for a in _admin_dirs(common) if a != preferred)]
            for admin in admins:
                if admin.is_dir() and _admin_backlink(admin) == here:
                    return _abs(common)
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
            out.append(_common_of_admin(target))
    elif (folder / "worktrees").is_dir() and _is_git_dir(folder):
        out.append(folder)
    return out


def explain_broken_link(worktree: Path, gitdir: Path, candidates: Sequence[Path] = ()) -> str:
    """One paragraph for a linked worktree whose ``.git`` file points at a missing ``gitdir``:
    what happened (main moved, main deleted, admin dir removed), what is still recoverable, and
    the exact fix. Used for :class:`wtls.worktrees.BrokenWorktreeLink` messages."""
    root = _abs(Path(worktree))
    cands = [_abs(Path(c)) for c in candidates]
    b = _diagnose_missing_gitdir(root, _abs(Path(gitdir)), cands)
    return f"{b.message} Fix: {b.fix}"


def describe(breakages: Sequence[Breakage]) -> str:
    """Plain-text report of breakages (``wtls status`` / ``wtls repair`` output)."""
    if not breakages:
        return "All worktree links are intact."
    lines: list[str] = []
    for b in breakages:
        lines.append(f"broken ({b.kind}): {b.worktree}")
        lines.append(f"  {b.message}")
        lines.append(f"  fix: {b.fix}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# verification


def check_link(worktree: Path) -> str | None:
    """Check both directions of a linked worktree's link and that git can use it.

    None when the ``.git`` file points at an existing admin dir whose ``gitdir`` file points
    back at that ``.git`` file and ``git status`` succeeds there; else what is wrong.
    """
    folder = _abs(Path(worktree))
    target = read_gitfile(folder)
    if target is None:
        return f"{folder}/.git is not a linked worktree's .git file"
    if not target.is_dir():
        return f"{folder}/.git points at {target}, which does not exist"
    back = _admin_backlink(target)
    if back != _abs(folder / ".git"):
        return f"{target}/gitdir points at {back}, not at {folder}/.git"
    try:
        read_status(folder)
    except GitError as exc:
        return f"git status fails in {folder}: {exc}"
    return None


# --------------------------------------------------------------------------------------------
# repair


def _link_files(commons: Iterable[Path], folders: Iterable[Path]) -> dict[Path, str | None]:
    """Current text of every link file involved: each admin dir's ``gitdir`` and the
    worktrees' ``.git`` files."""
    files: dict[Path, str | None] = {}
    folder_set = {_abs(f) for f in folders}
    for common in commons:
        for admin in _admin_dirs(common):
            files[admin / "gitdir"] = _read_text(admin / "gitdir")
            recorded = _admin_backlink(admin)
            if recorded is not None:
                folder_set.add(recorded.parent)
    for folder in folder_set:
        dotgit = folder / ".git"
        if dotgit.is_file() or not dotgit.exists():
            files[dotgit] = _read_text(dotgit) if dotgit.is_file() else None
    return files


def _changes(before: dict[Path, str | None], after: dict[Path, str | None]) -> list[LinkChange]:
    """Link files whose text differs between two snapshots."""
    out: list[LinkChange] = []
    for file in sorted(set(before) | set(after)):
        old, new = before.get(file), after.get(file)
        if old != new:
            out.append(
                LinkChange(
                    file=file,
                    before=old.strip() if old is not None else None,
                    after=new.strip() if new is not None else None,
                )
            )
    return out


def _repair_args(folders: Sequence[Path]) -> list[str]:
    """``git worktree repair [-- folders...]``."""
    return ["worktree", "repair", *(["--", *map(str, folders)] if folders else [])]


def _cmd(cwd: Path, args: Sequence[str]) -> str:
    """A git command as a user would type it."""
    return " ".join(["git", "-C", _q(cwd), *(_q(a) for a in args)])


def _collect(targets: Sequence[Path], cands: Sequence[Path]) -> tuple[list[Breakage], list[str]]:
    """Diagnose every target; targets outside any repository give a message, not an error."""
    found: list[Breakage] = []
    messages: list[str] = []
    any_repo = False
    for target in targets:
        try:
            for b in diagnose(target, cands):
                if all(x.worktree != b.worktree for x in found):
                    found.append(b)
            any_repo = True
        except RepositoryError as exc:
            messages.append(str(exc))
    if not any_repo:
        raise Refused(
            "none of these folders belongs to a git repository: "
            + "; ".join(messages or [str(t) for t in targets])
        )
    return found, messages


def repair(
    start: Path,
    paths: Sequence[Path] = (),
    *,
    apply: bool,
    branch: str | None = None,
    candidates: Sequence[Path] = (),
) -> RepairResult:
    """Find broken links around ``start`` and ``paths`` and (with ``apply``) repair them.

    ``paths`` are worktree folders at their new places (a moved main worktree, moved linked
    ones). The repair runs ``git worktree repair -- <linked paths>`` from the repository that
    still works, which rewrites the stale direction of each link; then both directions are
    verified. ``branch`` re-attaches a worktree whose admin dir was deleted (only one such
    worktree at a time). Without ``apply`` nothing changes and the result is the plan.
    """
    targets = [_abs(Path(start)), *(_abs(Path(p)) for p in paths)]
    for t in targets:
        if not t.exists():
            raise Refused(f"{t} does not exist: name the folders where the worktrees are now")
    cands = [*targets, *(_abs(Path(c)) for c in candidates)]
    breakages, messages = _collect(targets, cands)

    # Group the repairable links by the repository that can rewrite them.
    per_repo: dict[Path, list[Path]] = {}
    for b in breakages:
        if b.repairable and b.repository is not None:
            folders = per_repo.setdefault(_abs(b.repository), [])
            # Without arguments git repairs every link it can find from the repository's own
            # records (a moved main worktree, a deleted .git file); a folder git does not know
            # about yet (moved by hand) must be named.
            if b.kind != "dotgit-missing":
                folders.append(b.worktree)
    readd = [
        b
        for b in breakages
        if b.kind == "gitdir-missing" and b.repository is not None and not b.repairable
    ]
    if branch is not None and len(readd) != 1:
        raise Refused(
            "--branch re-attaches exactly one worktree whose git data was deleted; "
            f"found {len(readd)} such worktrees here: name only that worktree's folder"
        )

    commands: list[str] = []
    for common, folders in per_repo.items():
        commands.append(_cmd(_main_folder(common), _repair_args(folders)))
    if branch is not None:
        b = readd[0]
        assert b.repository is not None
        commands.append(
            f"(re-attach {b.worktree} to {branch}: `git worktree add --no-checkout` into a "
            "temporary folder, point the .git file at the new git data, "
            f"{_cmd(_main_folder(b.repository), ['worktree', 'repair', '--', str(b.worktree)])}"
            f", {_cmd(b.worktree, ['reset', '-q'])})"
        )

    if not apply:
        plan = [describe(breakages)] if breakages else []
        if commands:
            plan.append("Run with --apply to do:\n  " + "\n  ".join(commands))
        return RepairResult(
            applied=False,
            breakages=tuple(breakages),
            commands=tuple(commands),
            changed=(),
            verified=not breakages,
            messages=tuple([*messages, *plan]),
            remaining=tuple(breakages),
        )

    commons = {*per_repo, *(_abs(b.repository) for b in breakages if b.repository)}
    involved = {b.worktree for b in breakages} | set(targets)
    before = _link_files(commons, involved)
    for common, wt_folders in per_repo.items():
        result = run_git(
            _repair_args(wt_folders),
            _main_folder(common),
            ok_codes=(0, 1),
        )
        # git prints one "repair: ..." line per fix and "error: ..." for what it could not do.
        messages.extend(f"git: {line}" for line in result.stderr.splitlines() if line.strip())
    if branch is not None:
        messages.extend(_reattach(readd[0], branch))

    after = _link_files(commons, involved)
    changed = _changes(before, after)
    repaired_folders = {b.worktree for b in breakages}
    remaining, more = _collect([t for t in [*targets, *repaired_folders] if t.exists()], cands)
    messages.extend(m for m in more if m not in messages)
    problems: list[str] = []
    for common in commons:
        for admin in _admin_dirs(common):
            recorded = _admin_backlink(admin)
            if recorded is not None and recorded.parent.is_dir():
                problem = check_link(recorded.parent)
                if problem is not None:
                    problems.append(problem)
    for b in breakages:
        if b.worktree.is_dir() and all(r.worktree != b.worktree for r in remaining):
            messages.append(f"repaired: {b.worktree} ({b.kind})")
    messages.extend(problems)
    for r in remaining:
        messages.append(f"still broken: {r.worktree}: {r.message} Fix: {r.fix}")
    return RepairResult(
        applied=True,
        breakages=tuple(breakages),
        commands=tuple(commands),
        changed=tuple(changed),
        verified=not remaining and not problems,
        messages=tuple(messages),
        remaining=tuple(remaining),
    )


def _reattach(b: Breakage, ref: str) -> list[str]:
    """Give a worktree whose admin dir was deleted a new one on ``ref``, keeping every file.

    ``git worktree add --no-checkout`` into a fresh empty temporary folder creates the admin dir
    (HEAD on ``ref``, no index) without writing any file of the project; the worktree's ``.git``
    file (which pointed nowhere) is pointed at it; ``git worktree repair`` records the real
    folder; ``git reset -q`` builds the index from HEAD, touching only the index. The temporary
    folder held nothing but the ``.git`` file that git wrote there, and only that is removed.
    """
    assert b.repository is not None
    main = _main_folder(b.repository)
    is_branch = True
    try:
        run_git(["rev-parse", "--verify", "--quiet", f"refs/heads/{ref}"], main)
    except GitError:
        is_branch = False
        try:
            run_git(
                ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], main
            )
        except GitError as exc:
            raise Refused(f"{ref!r} is neither a branch nor a commit of {main}") from exc
    old_id = b.gitdir.name if b.gitdir is not None else b.worktree.name
    holder = Path(tempfile.mkdtemp(prefix="wtls-reattach-"))
    temp_wt = holder / old_id
    args = ["worktree", "add", "--no-checkout"]
    args += ["--", str(temp_wt), ref] if is_branch else ["--detach", "--", str(temp_wt), ref]
    try:
        try:
            run_git(args, main)
        except GitError as exc:
            raise Refused(
                f"git would not create a worktree for {ref!r}: {exc.stderr or exc}; nothing "
                "was changed"
            ) from exc
        new_admin = read_gitfile(temp_wt)
        if new_admin is None or not new_admin.is_dir():
            raise Refused(f"git did not create the worktree data for {ref!r}; nothing changed")
        (b.worktree / ".git").write_text(f"gitdir: {new_admin}\n", encoding="utf-8")
        run_git(["worktree", "repair", "--", str(b.worktree)], main, ok_codes=(0, 1))
        run_git(["reset", "-q"], b.worktree)
    finally:
        # Only what git wrote into our own empty temporary folder.
        for leftover in (temp_wt / ".git",):
            if leftover.is_file():
                leftover.unlink()
        for folder in (temp_wt, holder):
            with contextlib.suppress(OSError):
                folder.rmdir()
    what = f"branch {ref}" if is_branch else f"commit {ref} (detached)"
    return [
        f"re-attached {b.worktree} to {what} with new git data {new_admin}; its files were "
        "not touched (differences from the branch now show as changes)"
    ]


# --------------------------------------------------------------------------------------------
# move


def _has_populated_submodules(worktree: Path, gitdir: Path | None) -> bool:
    """git's own rule (``validate_no_submodules``): a ``modules`` dir in the worktree's git
    dir, or a gitlink in its index whose submodule is checked out."""
    if gitdir is not None and (gitdir / "modules").is_dir():
        return True
    try:
        data = run_git(["ls-files", "-s", "-z"], worktree).stdout
    except GitError:
        return False
    for record in data.split(b"\0"):
        if not record.startswith(b"160000 "):
            continue
        rel = record.split(b"\t", 1)[1].decode("utf-8", "surrogateescape")
        if (worktree / rel / ".git").exists():
            return True
    return False


def _refuse_destination(
    repo: Repository, entries: Sequence[WorktreeEntry], src: Path, dest: Path
) -> None:
    """Refuse a move destination inside a worktree or a git dir (``dest`` is resolved)."""
    if dest == src or src in dest.parents:
        raise Refused(f"{dest} is inside the worktree {src} itself")
    common = _abs(repo.common_dir)
    if dest == common or common in dest.parents:
        raise Refused(
            f"{dest} is inside the git folder {common} of this repository: that is git's own "
            "data, and a worktree there would corrupt it. Choose a folder outside it."
        )
    for entry in entries:
        if not entry.bare and entry.path in dest.parents:
            raise Refused(
                f"{dest} is inside the worktree {entry.path}: that worktree would see the moved "
                "one as untracked files (and could commit or delete them). Choose a folder "
                "outside every worktree."
            )
    if ".git" in dest.parts:
        raise Refused(
            f"{dest} is inside a .git folder: that is a repository's own data, not a place for a "
            "worktree"
        )


def move(start: Path, worktree: str | Path, new_path: Path, *, force: bool = False) -> MoveResult:
    """Move a linked worktree with ``git worktree move``; refuse what git or safety forbids.

    Refused (nothing changed): the main worktree, a bare entry, a locked worktree, one whose
    folder is missing or whose links are broken, one with checked-out submodules (git cannot
    move those), one with uncommitted changes unless ``force`` (programs still working in it
    would write into a folder that moved away), and a destination that exists or whose parent
    folder does not, and a destination inside any worktree of the repository (itself included),
    inside its git folder or inside any ``.git`` folder. ``worktree`` is a path or a branch name.
    """
    repo = discover(start)
    entries = list_worktrees(repo)
    text = str(worktree)
    entry = None
    as_path = _abs(Path(text)) if Path(text).is_absolute() else _abs(Path(start) / text)
    entry = next((e for e in entries if e.path == as_path), None)
    if entry is None:
        short = text.removeprefix("refs/heads/")
        entry = next((e for e in entries if e.branch == short), None)
    if entry is None:
        raise Refused(f"{text!r} is neither the path nor the branch of a worktree of {repo.key}")
    src = entry.path
    dest = _abs(Path(new_path)) if Path(new_path).is_absolute() else _abs(Path(start) / new_path)
    if entry.is_main:
        raise Refused(
            f"{src} is the main worktree: git cannot move it with `git worktree move`, because "
            "every linked worktree keeps its history in its .git folder. Move it with `mv`, "
            "then run `wtls repair --apply` in its new place to reconnect the linked worktrees."
        )
    if entry.bare:
        raise Refused(f"{src} is the bare repository itself, not a worktree")
    if entry.locked:
        reason = f" ({entry.lock_reason})" if entry.lock_reason else ""
        raise Refused(
            f"{src} is locked{reason}: someone asked git to keep it where it is. Unlock it "
            f"first (`wtls unlock {_q(src)}`) if the move is really wanted."
        )
    if entry.prunable or not src.is_dir():
        raise Refused(
            f"the folder {src} is missing; if it was moved by hand, run `wtls repair --apply -- "
            "NEW_PATH` instead"
        )
    problem = check_link(src)
    if problem is not None:
        raise Refused(f"{src} has a broken link ({problem}); run `wtls repair` first")
    gitdir = read_gitfile(src)
    if _has_populated_submodules(src, gitdir):
        raise Refused(
            f"{src} contains checked-out submodules, and git cannot move such a worktree (it "
            "would have to move each submodule's own git data too; git says: \"working trees "
            'containing submodules cannot be moved or removed"). Create a new worktree where '
            "you want it with `wtls spawn` instead."
        )
    if not force:
        status = read_status(src)
        changed = status.staged + status.unstaged + status.untracked + status.conflicted
        if changed:
            raise Refused(
                f"{src} has uncommitted changes ({changed} paths): an agent, dev server or "
                "editor may still be working there and would keep writing into a folder that "
                "moved away. Commit or stash them first, or pass --force to move it anyway "
                "(the changes move with the folder)."
            )
    if dest.exists() or dest.is_symlink():
        raise Refused(f"{dest} already exists: choose a new path")
    if not dest.parent.is_dir():
        raise Refused(f"the folder {dest.parent} does not exist: create it first")
    _refuse_destination(repo, entries, src, dest)
    try:
        run_git(["worktree", "move", "--", str(src), str(dest)], _main_folder(repo.common_dir))
    except GitError as exc:
        raise Refused(f"git could not move {src}: {exc.stderr or exc}") from exc
    problem = check_link(dest)
    if problem is not None:
        raise GitError(["worktree", "move"], 1, f"moved, but the link is broken: {problem}", dest)
    return MoveResult(source=src, destination=dest, branch=entry.branch)
