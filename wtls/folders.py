"""Opening a workspace folder as a worktree: what its link files look like, and why not.

A folder the server cannot open (no repository, a broken ``.git`` link, a worktree git does not
list) is polled until its link files change (:func:`link_signature`); :func:`discover_listed`
says which case it is, and :func:`unlisted_report` / :func:`broken_link_problem` turn that into
the message and the problems to show. No LSP here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wtls.problems import Problem
from wtls.repair import Breakage, unlisted
from wtls.worktrees import BrokenWorktreeLink, Repository, discover, read_gitfile, worktree_root


def link_signature(folder: Path) -> tuple[Any, ...]:
    """What changes when a folder is repaired, moved back or made a repository, or when the
    git data its worktree's ``.git`` file points at is deleted or restored. Only link files:
    ordinary git work in the worktree (an index write, a commit) does not change it."""
    root = worktree_root(folder) or folder
    gitdir = read_gitfile(root)
    out: list[Any] = []
    for path, contents in (
        (folder, False),
        (root / ".git", True),
        *(((gitdir / "gitdir", True), (gitdir / "commondir", False)) if gitdir else ()),
    ):
        try:
            st = path.stat()
        except OSError:
            out.append(None)
            continue
        out.append((st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size) if contents else st.st_ino)
    return tuple(out)


def discover_listed(folder: Path) -> tuple[Repository, list[Breakage] | None]:
    """The repository of ``folder`` and, when git does not list its worktree, why (see
    :func:`wtls.repair.unlisted`). Raises :class:`BrokenWorktreeLink` when the worktree's git
    data is gone, also when it went while this looked. Blocking."""
    repo = discover(folder)
    missing = unlisted(repo, folder)
    if missing and any(b.kind in ("gitdir-missing", "main-deleted") for b in missing):
        repo = discover(folder)  # deleted meanwhile: say it the way a broken link is said
        missing = unlisted(repo, folder)
    return repo, missing


def unlisted_report(folder: Path, breakages: list[Breakage]) -> tuple[str, list[Problem]]:
    """The message and problems for a folder whose worktree git does not list."""
    if breakages:
        problems = [b.to_problem() for b in breakages]
        return " ".join(p.message for p in problems), problems
    # Mostly a moment in the middle of a change (git data being removed or written); the
    # retry poll opens the folder again when it settles.
    where = worktree_root(folder) or folder
    message = (
        f"{where} is not one of the worktrees `git worktree list` shows (its git data may be "
        "changing right now; if this stays, `wtls repair` says what is wrong)"
    )
    problem = Problem(path=where / ".git", severity="warning", code="unlisted", message=message)
    return message, [problem]


def broken_link_problem(broken: BrokenWorktreeLink) -> Problem:
    """The ``broken-link`` problem on the ``.git`` file of a worktree whose git data is gone."""
    return Problem(
        path=broken.worktree / ".git",
        severity="error",
        code="broken-link",
        message=str(broken),
        data={"worktree": str(broken.worktree), "gitdir": str(broken.gitdir)},
    )
