"""Acting on one file of a review: take its change into the base worktree, or discard it.

A review (:func:`wtls.review.worktree_diff`) compares a worktree's working state with its merge
base with the base branch. Two actions act on one file of it, and never on any other file:

* :func:`take_into_base` applies that file's change (added, modified, deleted, renamed) to the
  worktree where the base branch is checked out, as an **uncommitted, unstaged** change (``git
  apply`` without ``--index``: an added file is untracked there, a deleted one an unstaged
  deletion). It is refused, with nothing changed, when the base worktree has any change to that
  path or the rename's target (staged, unstaged, untracked, or an ignored file in the way), and
  when the base branch changed the file since the merge base: that is not a clean take, and
  wtls does not write conflict markers into the base worktree (merge the worktree instead).
* :func:`discard_in_worktree` puts that file back to its merge-base version in its worktree
  (removes it when the merge base has no such file; for a rename, the new path goes and the old
  one comes back). The worktree is saved first under one verified backup ref, exactly as
  ``wtls remove --force`` saves it (:func:`wtls.backup.inspect_worktree`,
  :func:`wtls.backup.save_backup`), and the answer names the ref and how to get the file back.
  The path's index entry is set to the merge-base version too (``git checkout MERGE_BASE --
  PATH``), so a staged change of it is dropped from the index; the backup's index commit holds it.

Paths are relative to the worktree (or absolute inside it); a path outside it, inside ``.git``,
or below a symbolic link is refused. Submodules are refused. No LSP.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from wtls.backup import inspect_worktree, save_backup
from wtls.backup.gitdata import EXECUTABLE, SYMLINK, disk_entry, object_format, tree_entries
from wtls.errors import Refused
from wtls.git import GitError, run_git, split_z
from wtls.lifecycle.common import _repo_lock, resolve_worktree
from wtls.lifecycle.removal import run_dir_of
from wtls.predict.commits import Commit
from wtls.review import (
    BINARY_PROBE,
    GITLINK,
    LITERAL,
    MAX_MERGED_FILE,
    STATUS,
    base_tip,
    merge_base_of,
    name_status,
    repository_state_at,
    side_label,
    tree_entry,
    working_state,
)
from wtls.unsaved import UnsavedFinder, refuse_unsaved
from wtls.worktrees import RepositoryState, WorktreeState

_OID_RE = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


@dataclass(frozen=True, kw_only=True)
class FileAction:
    """What :func:`take_into_base` or :func:`discard_in_worktree` did to one file."""

    #: ``take`` or ``discard``.
    action: str
    #: The reviewed worktree.
    worktree: Path
    #: The worktree that was changed (the base worktree for ``take``).
    changed: Path
    #: The file's path in the reviewed worktree (relative, ``/``-separated).
    path: str
    #: Its path in the merge base when it was renamed.
    old_path: str | None
    #: ``added``, ``modified``, ``deleted``, ``renamed`` or ``type-changed``.
    status: str
    #: One sentence for a person: what was done, and for a discard where the work was saved.
    message: str
    #: The backup ref that holds the discarded work (``discard`` only).
    backup_ref: str | None = None
    #: The command that puts the discarded file back (``discard`` only).
    restore_command: str | None = None


@dataclass(frozen=True, kw_only=True)
class FileAt:
    """One file as a commit holds it: the left side of a review's diff (``wtls/fileAt``)."""

    #: The file's text ("" when absent or binary).
    content: str
    #: Whether the commit has the file.
    exists: bool
    #: Whether it is binary (a NUL in its first 8,000 bytes).
    binary: bool = False


@dataclass(frozen=True)
class _Change:
    path: str
    old_path: str | None
    status: str
    merge_base: str
    work: str


def _relative(root: Path, path: str) -> str:
    """``path`` (relative to ``root`` or absolute inside it) as a clean relative path."""
    if not path or "\0" in path or any(ord(c) < 32 for c in path):
        raise Refused(f"{path!r} is not a file path")
    given = Path(path)
    if given.is_absolute():
        resolved_root = root.resolve()
        parent = Path(os.path.normpath(given.parent))
        try:
            parent_real = parent.resolve()
        except OSError as exc:
            raise Refused(f"{path} cannot be read: {exc}") from exc
        for top in (root, resolved_root):
            for candidate in (parent, parent_real):
                if candidate == top or top in candidate.parents:
                    rel_parent = candidate.relative_to(top).as_posix()
                    rel = given.name if rel_parent == "." else f"{rel_parent}/{given.name}"
                    return _relative(root, rel)
        raise Refused(f"{path} is outside worktree {root}")
    clean = os.path.normpath(path).replace(os.sep, "/")
    parts = PurePosixPath(clean).parts
    if clean in (".", "") or parts[0] == ".." or ".git" in parts:
        raise Refused(f"{path!r} is not a file of worktree {root} (outside it, or in .git)")
    # A link among the folders would lead the write outside the worktree (git refuses to go
    # "beyond a symbolic link" too): refused. The file itself may be a link git tracks.
    folder = root
    for part in parts[:-1]:
        folder = folder / part
        if folder.is_symlink():
            raise Refused(f"{path!r} is below a symbolic link ({folder}) in worktree {root}")
    return clean


def _check_nothing_in_the_way(root: Path, rel: str) -> None:
    """Refuse when writing ``rel`` back would replace another file or a folder.

    ``git checkout TREE -- PATH`` deletes a folder that stands where the file goes (and a file
    that stands where one of its folders goes), with everything in it: other files of the
    review, untracked ones. Discarding one file must never do that.
    """
    target = root / rel
    if target.is_dir() and not target.is_symlink():
        raise Refused(
            f"{rel} is a folder in {root} now: discarding the file would delete what is in it; "
            "discard the files inside first"
        )
    folder = root
    for part in PurePosixPath(rel).parts[:-1]:
        folder = folder / part
        if folder.is_symlink():
            raise Refused(
                f"{folder.relative_to(root).as_posix()} is a symbolic link in {root} now: "
                f"putting {rel} back would write where it points, outside the worktree"
            )
        if os.path.lexists(folder) and not folder.is_dir():
            raise Refused(
                f"{folder.relative_to(root).as_posix()} is a file in {root} now: putting {rel} "
                "back would delete it; discard that file first"
            )


def _base_worktree(state: RepositoryState) -> WorktreeState:
    base, _tip = base_tip(state)
    found = next(
        (w for w in state.worktrees if w.branch == base and not w.bare and not w.prunable), None
    )
    if found is None or not found.path.is_dir():
        raise Refused(
            f"the base branch {base} is not checked out in any worktree: "
            "check it out to take files into it"
        )
    return found


def _change_of(wt: WorktreeState, rel: str, tip: Commit) -> _Change:
    """The reviewed change of ``rel`` (its new path, or the old path of a rename)."""
    work = working_state(wt, {})
    merge_base = merge_base_of(wt, work, tip, "the base branch")
    for code, old, new in name_status(
        wt.path, ["diff", "--name-status", "-z", "-M", merge_base, work.oid, "--"]
    ):
        if rel in (new, old):
            if code == "C":
                return _Change(new, None, "added", merge_base, work.oid)
            return _Change(
                new,
                old if code == "R" else None,
                STATUS.get(code, "modified"),
                merge_base,
                work.oid,
            )
    raise Refused(f"{rel} has no change in {side_label(wt)} against its merge base: nothing to do")


def _hold_name(target: Path, what: str) -> Path:
    return target.with_name(f".{target.name}.wtls-{what}-{os.getpid()}")


def _hold_as_saved(
    root: Path, rels: list[str], saved: dict[str, tuple[str, str]], fmt: str, ref: str
) -> dict[str, Path]:
    """Move each file aside to a holding name, and keep it only if it is what ``ref`` holds.

    After the rename a writer can no longer change the held file by its path: what it writes
    makes a new file, which :func:`_write_new` never replaces. A held file that differs from
    the backup (rewritten just before the rename) is put back, and nothing is discarded.
    """
    held: dict[str, Path] = {}
    for rel in rels:
        target = root / rel
        if not (target.is_symlink() or target.is_file()):
            continue  # absent, or a folder (never moved: its files are not this change)
        hold = _hold_name(target, "discarding")
        os.rename(target, hold)
        held[rel] = hold
        if disk_entry(root, hold.relative_to(root).as_posix(), fmt) != saved.get(rel):
            kept = _put_back(root, held)
            raise Refused(
                f"{rel} changed after it was saved in {ref}: nothing was discarded" + kept
            )
    return held


def _put_back(root: Path, held: dict[str, Path]) -> str:
    """Rename held files back (never over a file written meanwhile); words for what stays."""
    left: list[str] = []
    for rel, hold in held.items():
        try:
            os.link(hold, root / rel, follow_symlinks=False)  # fails when the path is taken
            hold.unlink()
        except FileExistsError:
            left.append(f"{rel} as {hold.name}")
    return f" (kept beside the new file: {', '.join(left)})" if left else ""


def _write_new(
    root: Path, rel: str, commit: str, mode: str, held: dict[str, Path], ref: str
) -> None:
    """Create ``rel`` as ``commit`` holds it (smudge filters applied), only if nothing is there.

    The file is made under a temporary name and linked into place (``link`` fails when a
    writer created the path meanwhile: that file is kept, not replaced).
    """
    target = root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    content = run_git(["cat-file", "--filters", f"{commit}:{rel}"], root, timeout=None).stdout
    temp = _hold_name(target, "new")
    try:
        if mode == SYMLINK:
            os.symlink(os.fsdecode(content), temp)
        else:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
            with os.fdopen(fd, "wb") as out:
                out.write(content)
            if mode == EXECUTABLE:
                temp.chmod(temp.stat().st_mode | ((temp.stat().st_mode & 0o444) >> 2))
        try:
            os.link(temp, target, follow_symlinks=False)
        except FileExistsError:
            kept = _put_back(root, held)
            raise Refused(
                f"{rel} was written again while wtls discarded it; that file is kept, and the "
                f"discarded one is in {ref}" + kept
            ) from None
    finally:
        temp.unlink(missing_ok=True)


def _paths(change: _Change) -> list[str]:
    return [p for p in (change.old_path, change.path) if p is not None]


def _check_plain(cwd: Path, change: _Change) -> None:
    for tree in (change.merge_base, change.work):
        for p in _paths(change):
            found = tree_entry(cwd, tree, p)
            if found is None:
                continue
            if found[0] == GITLINK:
                raise Refused(f"{p} is a submodule: wtls does not take or discard submodules")
            if found[2] > MAX_MERGED_FILE:
                raise Refused(
                    f"{p} is {found[2]:,} bytes: too large to take or discard here "
                    f"(the limit is {MAX_MERGED_FILE:,})"
                )


def file_at(start: Path, rev: str, path: str) -> FileAt:
    """``path`` as commit ``rev`` (a full object name, e.g. a review's ``mergeBase``) holds it.

    Only object names are accepted (no revision expressions); files above
    :data:`~wtls.review.MAX_MERGED_FILE` are refused, not cut.
    """
    if not _OID_RE.fullmatch(rev):
        raise Refused(f"{rev!r} is not a full commit name (40 or 64 hex digits)")
    clean = os.path.normpath(path).replace(os.sep, "/") if path else ""
    if not clean or clean.startswith(("/", "../")) or clean in (".", ".."):
        raise Refused(f"{path!r} is not a path inside the repository")
    state = repository_state_at(start, None)
    cwd = state.repository.common_dir
    try:
        found = tree_entry(cwd, rev, clean)
    except GitError as exc:
        raise Refused(f"no commit {rev} in {state.repository.key}") from exc
    if found is None:
        return FileAt(content="", exists=False)
    mode, oid, size = found
    if mode == GITLINK:
        return FileAt(content=f"Subproject commit {oid}\n", exists=True)
    if size > MAX_MERGED_FILE:
        raise Refused(
            f"{clean} is {size:,} bytes at {rev[:12]}: too large to show "
            f"(the limit is {MAX_MERGED_FILE:,})"
        )
    data = run_git(["cat-file", "blob", oid], cwd).stdout
    if b"\0" in data[:BINARY_PROBE]:
        return FileAt(content="", exists=True, binary=True)
    return FileAt(content=data.decode("utf-8", "replace"), exists=True)


def take_into_base(
    spec: str,
    path: str,
    *,
    cwd: Path,
    base_branch: str | None = None,
    unsaved: UnsavedFinder | None = None,
) -> FileAction:
    """Apply worktree ``spec``'s change of ``path`` to the base worktree, uncommitted.

    Refused, with nothing changed, when the base worktree has changes in the file (or in a
    rename's other path), when the base branch changed it since the merge base, or when the
    reviewed worktree is the base worktree itself, or when an editor holds an unsaved buffer of
    the file in the base worktree (``unsaved``: :mod:`wtls.unsaved`).
    """
    state = repository_state_at(cwd, base_branch)
    wt = resolve_worktree(state, spec, cwd=cwd)
    base_wt = _base_worktree(state)
    if base_wt.path == wt.path:
        raise Refused(f"{wt.path} is the base worktree itself: review another worktree")
    base_name, tip = base_tip(state)
    rel = _relative(wt.path, path)
    with _repo_lock(state.repository.common_dir):
        change = _change_of(wt, rel, tip)
        _check_plain(wt.path, change)
        if base_wt.operation:
            raise Refused(
                f"the base worktree {base_wt.path} is in the middle of a {base_wt.operation}: "
                "finish it first"
            )
        for p in _paths(change):
            _relative(base_wt.path, p)
        head = run_git(["rev-parse", "--verify", "HEAD"], base_wt.path).text
        moved = [
            p
            for p in _paths(change)
            if tree_entry(base_wt.path, head, p) != tree_entry(base_wt.path, change.merge_base, p)
        ]
        if moved:
            raise Refused(
                f"{base_name} changed {', '.join(moved)} since {side_label(wt)} branched off: "
                f"not a clean take; merge {side_label(wt)} instead (wtls merge), or copy it by hand"
            )
        busy = split_z(
            run_git(
                [
                    "status",
                    "--porcelain=v1",
                    "-z",
                    "--untracked-files=all",
                    "--ignored=matching",
                    "--",
                    *_paths(change),
                ],
                base_wt.path,
                env=LITERAL,
            ).stdout
        )
        if busy:
            raise Refused(
                f"the base worktree {base_wt.path} has changes in "
                f"{', '.join(sorted({b[3:] for b in busy if len(b) > 3}))}: commit, stash or "
                "discard them there first; nothing was changed"
            )
        refuse_unsaved(
            unsaved,
            [base_wt.path / p for p in _paths(change)],
            what=f"taking {change.path} into the base worktree {base_wt.path} would rewrite",
        )
        patch = run_git(
            [
                "diff",
                "-M",
                "--binary",
                "--full-index",
                change.merge_base,
                change.work,
                "--",
                *_paths(change),
            ],
            wt.path,
            env=LITERAL,
        ).stdout
        if patch:
            # Without --index: the base worktree gets the change as an unstaged one. git apply
            # checks the preimage again, so a file rewritten meanwhile is refused, not clobbered.
            try:
                run_git(["apply", "--whitespace=nowarn", "-"], base_wt.path, input=patch)
            except GitError as exc:
                raise Refused(
                    f"git could not apply {change.path} to {base_wt.path}: {exc}; nothing was "
                    "changed"
                ) from exc
    what = f"{change.old_path} → {change.path}" if change.old_path else change.path
    return FileAction(
        action="take",
        worktree=wt.path,
        changed=base_wt.path,
        path=change.path,
        old_path=change.old_path,
        status=change.status,
        message=(
            f"Took {what} ({change.status}) from {side_label(wt)} into {base_name} at "
            f"{base_wt.path} as an uncommitted change."
        ),
    )


def discard_in_worktree(
    spec: str,
    path: str,
    *,
    cwd: Path,
    base_branch: str | None = None,
    unsaved: UnsavedFinder | None = None,
) -> FileAction:
    """Put ``path`` of worktree ``spec`` back to its merge-base version, after a verified backup.

    The whole worktree is saved first (``refs/wtls/backup/BRANCH-discard-STAMP``, proved
    against the disk); the file is written only when it is still what the backup holds.
    Refused while an editor holds an unsaved buffer of the file (``unsaved``: the backup could
    not hold that text).
    """
    state = repository_state_at(cwd, base_branch)
    wt = resolve_worktree(state, spec, cwd=cwd)
    _base_name, tip = base_tip(state)
    rel = _relative(wt.path, path)
    run_dir = run_dir_of(state.repository)
    with _repo_lock(state.repository.common_dir):
        change = _change_of(wt, rel, tip)
        _check_plain(wt.path, change)
        if wt.operation:
            raise Refused(f"{wt.path} is in the middle of a {wt.operation}: finish it first")
        for p in _paths(change):
            _relative(wt.path, p)
        refuse_unsaved(
            unsaved,
            [wt.path / p for p in _paths(change)],
            what=f"discarding {change.path} in {wt.path} would rewrite",
        )
        inspection = inspect_worktree(wt.path)
        label = f"{wt.branch or 'detached-' + wt.path.name}-discard"
        backup = save_backup(inspection, run_dir, label, wt.branch, why="discarding a file")
        # The backup was proved against the disk; write only if the files are still as saved.
        fmt = object_format(wt.path)
        saved = tree_entries(wt.path, inspection.tree)
        for p in _paths(change):
            if disk_entry(wt.path, p, fmt) != saved.get(p):
                raise Refused(
                    f"{p} changed after it was saved in {backup.ref}: nothing was discarded"
                )
        wanted = {p: tree_entry(wt.path, change.merge_base, p) for p in _paths(change)}
        restored = [p for p, entry in wanted.items() if entry]
        for p in restored:
            _check_nothing_in_the_way(wt.path, p)
        held = _hold_as_saved(wt.path, _paths(change), saved, fmt, backup.ref)
        for p in restored:
            entry = wanted[p]
            assert entry is not None
            _write_new(wt.path, p, change.merge_base, entry[0], held, backup.ref)
        gone = [p for p in _paths(change) if p not in restored]
        if gone:
            run_git(["rm", "-q", "--cached", "--ignore-unmatch", "--", *gone], wt.path, env=LITERAL)
        if restored:
            run_git(["reset", "-q", change.merge_base, "--", *restored], wt.path, env=LITERAL)
        for hold in held.values():
            hold.unlink()
    q = shlex.quote
    restore = (
        f"git -C {q(str(wt.path))} restore --source={q(backup.ref)} -- {q(change.path)}"
        if change.status != "deleted"
        else f"git -C {q(str(wt.path))} rm -q -- {q(change.path)}"
    )
    return FileAction(
        action="discard",
        worktree=wt.path,
        changed=wt.path,
        path=change.path,
        old_path=change.old_path,
        status=change.status,
        message=(
            f"Discarded {side_label(wt)}'s change of {change.path} ({change.status}); the worktree "
            f"was saved first in {backup.ref}. Get the file back with: {restore}"
        ),
        backup_ref=backup.ref,
        restore_command=restore,
    )
