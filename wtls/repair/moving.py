"""Moving a linked worktree the way git supports (``git worktree move``), or refusing to.

Refusals change nothing and say why: the main worktree, a locked one, broken links,
checked-out submodules, uncommitted changes (unless forced), and destinations inside a
worktree or a git folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wtls.backup import find_nested
from wtls.errors import Fix, Refused
from wtls.git import GitError, run_git
from wtls.links import absolute, main_folder, quote, read_gitfile
from wtls.repair.diagnosis import check_link
from wtls.unsaved import UnsavedFinder, refuse_unsaved
from wtls.wire import wire
from wtls.worktrees import Repository, WorktreeEntry, discover, list_worktrees, read_status


@dataclass(frozen=True, kw_only=True)
class MoveResult:
    """A worktree moved by :func:`move`."""

    source: Path = field(metadata=wire(key="from"))
    destination: Path = field(metadata=wire(key="to"))
    branch: str | None


#: Moving a worktree that has uncommitted changes.
MOVE_ANYWAY = Fix(action="move", option="force", label="Move anyway")


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
    common = absolute(repo.common_dir)
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


def move(
    start: Path,
    worktree: str | Path,
    new_path: Path,
    *,
    force: bool = False,
    unsaved: UnsavedFinder | None = None,
) -> MoveResult:
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
    as_path = absolute(Path(text)) if Path(text).is_absolute() else absolute(Path(start) / text)
    entry = next((e for e in entries if e.path == as_path), None)
    if entry is None:
        short = text.removeprefix("refs/heads/")
        entry = next((e for e in entries if e.branch == short), None)
    if entry is None:
        raise Refused(f"{text!r} is neither the path nor the branch of a worktree of {repo.key}")
    src = entry.path
    dest = (
        absolute(Path(new_path))
        if Path(new_path).is_absolute()
        else absolute(Path(start) / new_path)
    )
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
            f"first (`wtls unlock {quote(src)}`) if the move is really wanted."
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
    inside = [n for n in find_nested(src) if n.kind == "worktree"]
    if inside:
        names = ", ".join(str(src / n.path) for n in inside)
        raise Refused(
            f"another worktree lies inside {src}: {names}. Moving the outer one would leave git's "
            "record of the inner one pointing at the old place; move or remove the inner one "
            "first"
        )
    if not force:
        status = read_status(src)
        changed = status.staged + status.unstaged + status.untracked + status.conflicted
        if changed:
            raise Refused(
                f"{src} has uncommitted changes ({changed} paths): an agent, dev server or "
                "editor may still be working there and would keep writing into a folder that "
                f"moved away. Commit or stash them first, or {MOVE_ANYWAY.slot} to move it "
                "anyway (the changes move with the folder).",
                fixes=(MOVE_ANYWAY,),
            )
    if dest.exists() or dest.is_symlink():
        raise Refused(f"{dest} already exists: choose a new path")
    if not dest.parent.is_dir():
        raise Refused(f"the folder {dest.parent} does not exist: create it first")
    _refuse_destination(repo, entries, src, dest)
    if not force:
        refuse_unsaved(
            unsaved,
            [src],
            what=f"moving {src} would take away from their path",
            fix=MOVE_ANYWAY,
        )
    try:
        run_git(["worktree", "move", "--", str(src), str(dest)], main_folder(repo.common_dir))
    except GitError as exc:
        raise Refused(f"git could not move {src}: {exc.stderr or exc}") from exc
    problem = check_link(dest)
    if problem is not None:
        raise GitError(["worktree", "move"], 1, f"moved, but the link is broken: {problem}", dest)
    return MoveResult(source=src, destination=dest, branch=entry.branch)
