"""Diagnosis of broken worktree links: what is broken, in plain words, with the exact fix.

:func:`diagnose` looks at a worktree's own link (its ``.git`` file and the admin dir's
``gitdir`` file pointing back) and at every admin dir of its repository; each
:class:`Breakage` names the case (moved, copied, deleted...) and the command that fixes it.
:func:`check_link` verifies both directions of one link. Reading the link files themselves is
:mod:`wtls.links`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from wtls.errors import Fix
from wtls.git import GitError
from wtls.links import (
    absolute,
    admin_backlink,
    admin_dirs,
    common_of_admin,
    diagnose_missing_gitdir,
    find_moved_folder,
    main_folder,
    points_at,
    quote,
    read_gitfile,
    worktree_root,
)
from wtls.problems import Problem
from wtls.wire import to_wire
from wtls.worktrees import (
    NotARepository,
    Repository,
    RepositoryError,
    discover,
    list_worktrees,
    read_status,
)

#: Repairing broken links (``wtls.repair`` with ``apply``), the editor's quick fix.
REPAIR = Fix(action="repair", option="apply", label="Repair worktree links")

BreakageKind = Literal[
    "gitdir-missing",
    "folder-moved",
    "folder-missing",
    "main-deleted",
    "folder-copied",
    "dotgit-missing",
    "backlink-missing",
]


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
    #: The exact command that fixes it in a terminal (or the safest next step when git cannot).
    fix: str
    #: Whether ``wtls repair --apply`` can fix it with no further input.
    repairable: bool
    #: The repository (common git dir) that still works, where it is now.
    repository: Path | None = None
    #: Where git's records say the worktree is (differs from ``worktree`` when it moved).
    registered: Path | None = None
    #: The fix as an action for an editor's button (``wtls.repair`` with ``apply``), when a
    #: repair needs no further input; None otherwise (``fix`` says what to do).
    action: Fix | None = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", REPAIR if self.repairable else None)

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
                "action": to_wire(self.action),
            },
        )


def diagnose(path: Path, candidates: Sequence[Path] = ()) -> list[Breakage]:
    """What is broken around ``path`` (any folder of a worktree, main or linked).

    ``candidates`` are folders where a moved worktree or main worktree may now be (the open
    workspace folders, the paths a user named); the siblings of the old locations are searched
    too. The breakages of ``path``'s own worktree come first, then those of the other worktrees
    of its repository. Raises :class:`wtls.worktrees.NotARepository` when ``path`` is in no
    repository at all.
    """
    p = absolute(Path(path))
    cands = [absolute(Path(c)) for c in candidates]
    root = worktree_root(p)
    found: list[Breakage] = []
    common: Path | None = None
    if root is not None and (root / ".git").is_file():
        target = read_gitfile(root)
        if target is None:
            raise NotARepository(f"{root}/.git is not a valid .git file (no `gitdir:` line)")
        target = absolute(target)
        if not target.is_dir():
            breakage = _diagnose_missing_gitdir(root, target, cands)
            found.append(breakage)
            common = breakage.repository
        else:
            own = _diagnose_backlink(root, target)
            if own is not None:
                found.append(own)
            common = common_of_admin(target)
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
    folder = absolute(folder)
    common = repo.common_dir
    if folder == common or common in folder.parents:
        return True  # the git dir itself (a bare repository)
    root = worktree_root(folder)
    gitfile = read_gitfile(root) if root is not None else None
    if gitfile is not None and absolute(gitfile) == common:
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
    where = worktree_root(absolute(folder)) or absolute(folder)
    try:
        return [b for b in diagnose(where) if b.worktree == where]
    except (RepositoryError, GitError, OSError):
        return []


def _diagnose_missing_gitdir(root: Path, target: Path, cands: Sequence[Path]) -> Breakage:
    """A linked worktree whose ``.git`` file points at a missing admin dir: which case?"""
    found = diagnose_missing_gitdir(root, target, cands)
    return Breakage(
        kind=found.kind,
        worktree=root,
        gitdir=target,
        repository=found.repository,
        message=found.message,
        fix=found.fix,
        repairable=found.repairable,
    )


def _diagnose_backlink(root: Path, admin: Path) -> Breakage | None:
    """A linked worktree whose admin dir exists: does the admin dir point back at it?"""
    recorded = admin_backlink(admin)
    here = absolute(root / ".git")
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
            repository=common_of_admin(admin),
            message=(
                f"The worktree {root} is missing from `git worktree list`: its record "
                f"{admin}/gitdir is missing or unreadable, so git no longer knows where it is "
                "(and `git worktree prune` would forget it). Its files and git data are intact."
            ),
            fix=f"wtls repair --apply -- {quote(root)}",
            repairable=True,
        )
    registered = recorded.parent
    main = main_folder(common_of_admin(admin))
    if recorded.exists() and points_at(read_gitfile(registered), admin):
        return Breakage(
            kind="folder-copied",
            worktree=root,
            gitdir=admin,
            registered=registered,
            repository=common_of_admin(admin),
            message=(
                f"{root} looks like a copy of the worktree {registered}: both .git files use "
                f"the same git data ({admin}), so they share one index and one HEAD and each "
                "one's commits and checkouts corrupt the other's view. git only knows "
                f"{registered}. Make this folder a worktree of its own instead (the fix keeps "
                "the copied .git file as .git.copied; then add a worktree elsewhere with "
                "`wtls spawn` and copy your files over)."
            ),
            fix=f"mv {quote(root / '.git')} {quote(root / '.git.copied')}",
            repairable=False,
        )
    return Breakage(
        kind="folder-moved",
        worktree=root,
        gitdir=admin,
        registered=registered,
        repository=common_of_admin(admin),
        message=(
            f"The worktree {root} was moved by hand: git still records it at {registered}, "
            "so `git worktree list` calls it prunable and `git worktree prune` would forget "
            "it. Nothing is lost; the repository's record just needs the new path."
        ),
        fix=f"wtls repair --apply -- {quote(main)} {quote(root)}",
        repairable=True,
    )


def _scan_repository(common: Path, cands: Sequence[Path]) -> list[Breakage]:
    """Check every admin dir of a working repository against its worktree folder."""
    main = main_folder(common)
    found: list[Breakage] = []
    for admin in admin_dirs(common):
        recorded = admin_backlink(admin)
        if recorded is None:
            continue
        folder = recorded.parent
        if recorded.is_file():
            target = read_gitfile(folder)
            if target is not None and absolute(target) != absolute(admin) and not target.exists():
                found.append(
                    Breakage(
                        kind="gitdir-missing",
                        worktree=folder,
                        gitdir=absolute(target),
                        repository=common,
                        message=(
                            f"{folder} is a linked worktree whose repository moved to "
                            f"{main}: its .git file still points at {target}, which no "
                            "longer exists. Nothing is lost; the link needs rewriting."
                        ),
                        fix=f"wtls repair --apply -- {quote(main)}",
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
                    fix=f"wtls repair --apply -- {quote(main)}",
                    repairable=True,
                )
            )
            continue
        moved_to = find_moved_folder(admin, folder, cands)
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
                    fix=f"wtls repair --apply -- {quote(main)} {quote(moved_to)}",
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
                    fix=f"wtls repair --apply -- {quote(main)} NEW_PATH   (or: wtls prune)",
                    repairable=False,
                )
            )
    return found


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


def check_link(worktree: Path) -> str | None:
    """Check both directions of a linked worktree's link and that git can use it.

    None when the ``.git`` file points at an existing admin dir whose ``gitdir`` file points
    back at that ``.git`` file and ``git status`` succeeds there; else what is wrong.
    """
    folder = absolute(Path(worktree))
    target = read_gitfile(folder)
    if target is None:
        return f"{folder}/.git is not a linked worktree's .git file"
    if not target.is_dir():
        return f"{folder}/.git points at {target}, which does not exist"
    back = admin_backlink(target)
    if back != absolute(folder / ".git"):
        return f"{target}/gitdir points at {back}, not at {folder}/.git"
    try:
        read_status(folder)
    except GitError as exc:
        return f"git status fails in {folder}: {exc}"
    return None
