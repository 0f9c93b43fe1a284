"""Looking at a merge before it happens, and at a worktree's work before it is merged.

:func:`predicted_merge` is one file as git's merge of two working states would leave it
(conflict markers included): the same snapshots and the same ``git merge-tree`` that conflict
foresight uses (:mod:`wtls.predict`), read back for one path. :func:`worktree_diff` is a
worktree's working state (committed, uncommitted and untracked) against its merge base with the
base branch: what merging it would bring. Neither touches a worktree, an index or a ref. No LSP.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from wtls.errors import Refused
from wtls.git import GitError, require_git, run_git, split_z
from wtls.lifecycle.common import resolve_worktree
from wtls.links import absolute
from wtls.predict import merge_many, snapshot_worktree
from wtls.predict.commits import Commit, commit_info
from wtls.worktrees import RepositoryError, RepositoryState, WorktreeState, repository_state
from wtls.worktrees import discover as discover_repository

#: The word for "the base branch's tip" where a worktree is expected.
BASE = "base"
#: The largest merged file returned in full (a bigger one is refused, not cut).
MAX_MERGED_FILE = 8 * 1024 * 1024
#: Pathspecs are file names, never patterns or magic (``:(glob)``, ``*``).
LITERAL = {"GIT_LITERAL_PATHSPECS": "1"}
#: The mode of a submodule entry.
GITLINK = "160000"
#: git's own test for binary content: a NUL within the first 8,000 bytes.
BINARY_PROBE = 8000


@dataclass(frozen=True, kw_only=True)
class PredictedMerge:
    """One file of a predicted merge: ``wtls/predictedMerge``'s answer."""

    #: The file as the merge leaves it (conflict markers included); "" when deleted or binary.
    content: str
    #: Whether git's merge would stop with a conflict in this file.
    conflicted: bool
    #: Its path in the merge (relative, ``/``-separated; renames followed); None when deleted.
    path: str | None
    #: The file's path in this worktree (relative).
    source: str
    #: The label of this worktree's side ("ours": the first side of each conflict).
    ours: str
    #: The label of the other side: a branch, a folder, or the base branch.
    theirs: str
    #: Whether the merged file is binary (then ``content`` is empty).
    binary: bool = False


@dataclass(frozen=True, kw_only=True)
class ChangedFile:
    """One file a worktree's work changes, against its merge base with the base branch."""

    path: str
    #: ``added``, ``modified``, ``deleted``, ``renamed``, ``copied`` or ``type-changed``.
    status: str
    #: The path before a rename or copy.
    old_path: str | None = None
    #: Lines added and deleted; None for a binary file.
    added: int | None = None
    deleted: int | None = None


@dataclass(frozen=True, kw_only=True)
class WorktreeDiff:
    """``wtls diff``: what merging a worktree's working state into the base branch would bring."""

    worktree: Path
    branch: str | None
    base: str
    #: The merge base of the working state and the base branch's tip.
    merge_base: str
    #: The commit that stands for the working state (HEAD itself when nothing is uncommitted).
    snapshot: str
    files: tuple[ChangedFile, ...]
    #: The unified diff (``git diff`` text); None when only the summary was asked for.
    patch: str | None = None


def repository_state_at(path: Path, base_branch: str | None) -> RepositoryState:
    require_git()
    try:
        return repository_state(discover_repository(path), base_branch)
    except RepositoryError as exc:
        raise Refused(str(exc)) from exc


def working_state(wt: WorktreeState, overlays: Mapping[Path, bytes]) -> Commit:
    if wt.bare or wt.prunable or not wt.path.is_dir():
        raise Refused(f"worktree {wt.path} has no files to merge (bare, or its folder is gone)")
    own = {
        p.relative_to(wt.path).as_posix(): data
        for p, data in overlays.items()
        if wt.path in p.parents
    }
    made = snapshot_worktree(wt.path, own, index=wt.gitdir / "index" if wt.gitdir else None)
    if made is None:
        raise Refused(f"worktree {wt.path} has no commits yet: there is nothing to merge")
    return made[1]


def base_tip(state: RepositoryState) -> tuple[str, Commit]:
    base = state.base_branch
    tip = commit_info(state.repository.common_dir, f"refs/heads/{base}") if base else None
    if base is None or tip is None:
        raise Refused("the repository has no base branch (set one with --base)")
    return base, tip


def side_label(wt: WorktreeState) -> str:
    return wt.branch or f"detached {wt.path.name}"


def tree_entry(cwd: Path, tree: str, path: str) -> tuple[str, str, int] | None:
    """``(mode, oid, size)`` of ``path`` in ``tree`` (size -1 for a submodule or a folder),
    None if absent."""
    out = run_git(["ls-tree", "-z", "-l", "--full-tree", tree, "--", path], cwd, env=LITERAL)
    for item in split_z(out.stdout):
        meta, _, name = item.partition("\t")
        if name == path:
            mode, _kind, oid, size = meta.split()
            return mode, oid, -1 if size == "-" else int(size)
    return None


def name_status(cwd: Path, args: list[str]) -> list[tuple[str, str | None, str]]:
    """``(letter, old path of a rename or copy, path)`` per entry of ``git ARGS``, a command
    printing ``--name-status -z`` (``diff``, ``diff-tree``)."""
    fields = split_z(run_git(args, cwd).stdout)
    out: list[tuple[str, str | None, str]] = []
    i = 0
    while i < len(fields):
        code = fields[i][:1]
        if code in ("R", "C"):
            out.append((code, fields[i + 1], fields[i + 2]))
            i += 3
        else:
            out.append((code, None, fields[i + 1]))
            i += 2
    return out


def merge_base_of(wt: WorktreeState, work: Commit, tip: Commit, base_name: str) -> str:
    """The merge base of ``wt``'s working state ``work`` and the base tip; refused when none."""
    try:
        return run_git(["merge-base", work.oid, tip.oid], wt.path).text
    except GitError as exc:
        raise Refused(f"{side_label(wt)} and {base_name} have no common history") from exc


def _merged_path(cwd: Path, ours: Commit, theirs: Commit, tree: str, rel: str) -> str | None:
    """Where ``rel`` of ``ours`` is in the merged ``tree``: the same path, a rename, or gone.

    A rename on the other side is found the way the merge finds it: the other side's changes
    since the merge base, with rename detection.
    """
    if tree_entry(cwd, tree, rel) is not None:
        return rel
    try:
        base = run_git(["merge-base", ours.oid, theirs.oid], cwd).text
    except GitError:
        return None
    for code, old, new in name_status(
        cwd, ["diff-tree", "-r", "-z", "-M", "--name-status", base, theirs.oid]
    ):
        if code == "R" and old == rel and tree_entry(cwd, tree, new) is not None:
            return new
    return None


def _read_blob(cwd: Path, tree: str, path: str) -> tuple[bytes, str]:
    """The bytes and mode of ``path`` in ``tree`` (a link's target, a submodule's commit line)."""
    found = tree_entry(cwd, tree, path)
    assert found is not None, (tree, path)  # the caller found it there
    mode, oid, size = found
    if mode == GITLINK:
        return f"Subproject commit {oid}\n".encode(), mode
    if size > MAX_MERGED_FILE:
        raise Refused(
            f"{path} would be {size:,} bytes after the merge: too large to show "
            f"(the limit is {MAX_MERGED_FILE:,})"
        )
    return run_git(["cat-file", "blob", oid], cwd).stdout, mode


def _relabel(
    data: bytes, ours: Commit, theirs: Commit, ours_label: str, theirs_label: str
) -> bytes:
    """Marker lines name the commits merge-tree was given; name the sides instead."""
    out: list[bytes] = []
    for line in data.splitlines(keepends=True):
        for marker, commit, label in (
            (b"<<<<<<< ", ours, ours_label),
            (b">>>>>>> ", theirs, theirs_label),
        ):
            prefix = marker + commit.oid.encode()
            if line.startswith(prefix):
                line = marker + label.encode("utf-8", "surrogateescape") + line[len(prefix) :]
                break
        out.append(line)
    return b"".join(out)


def predicted_merge(
    file: Path,
    other: str,
    *,
    overlays: Mapping[Path, bytes] | None = None,
    base_branch: str | None = None,
    cwd: Path | None = None,
) -> PredictedMerge:
    """``file`` (in one worktree) as merging its worktree's working state with ``other`` leaves it.

    ``other`` is another worktree (its path, a path inside it, its branch or folder name) or
    ``"base"`` (the base branch's tip). ``overlays`` are unsaved buffers (absolute path → bytes)
    of either side. This worktree is "ours": the first side of each conflict, as in ``git
    merge`` run there. Raises :class:`Refused` with the reason for a file outside every
    worktree, an unknown or identical other side, a merge git cannot do, or a huge file.
    """
    target = absolute(file)
    folder = target if target.is_dir() else target.parent
    if not folder.is_dir():
        raise Refused(f"{target} is not in an existing folder")
    state = repository_state_at(folder, base_branch)
    ours_wt = state.find(target)
    if ours_wt is None:
        raise Refused(f"{target} is not inside any worktree of {state.repository.key}")
    rel = target.relative_to(ours_wt.path).as_posix()
    if rel == "." or rel == ".git" or rel.startswith(".git/"):
        raise Refused(f"{target} is not a file of worktree {ours_wt.path}")
    if other == BASE:
        theirs_label, theirs = base_tip(state)
    else:
        theirs_wt = resolve_worktree(state, other, cwd=cwd)
        if theirs_wt.path == ours_wt.path:
            raise Refused(f"{other!r} is this file's own worktree {ours_wt.path}: name another")
        theirs_label, theirs = side_label(theirs_wt), working_state(theirs_wt, overlays or {})
    ours = working_state(ours_wt, overlays or {})
    outcome = merge_many(ours_wt.path, [(ours.oid, theirs.oid)])[0]
    if outcome is None:
        raise Refused(
            f"git cannot merge {side_label(ours_wt)} with {theirs_label} (unrelated histories?)"
        )
    path = _merged_path(ours_wt.path, ours, theirs, outcome.tree, rel)
    conflicted = bool({rel, path} & set(outcome.conflicted_paths()))
    content, binary = "", False
    if path is not None:
        data, _mode = _read_blob(ours_wt.path, outcome.tree, path)
        binary = b"\0" in data[:BINARY_PROBE]
        if not binary:
            data = _relabel(data, ours, theirs, side_label(ours_wt), theirs_label)
            content = data.decode("utf-8", "replace")
    return PredictedMerge(
        content=content,
        conflicted=conflicted,
        path=path,
        source=rel,
        ours=side_label(ours_wt),
        theirs=theirs_label,
        binary=binary,
    )


#: The word for each ``--name-status`` letter.
STATUS = {
    "A": "added",
    "M": "modified",
    "D": "deleted",
    "R": "renamed",
    "C": "copied",
    "T": "type-changed",
}


def worktree_diff(
    spec: str,
    *,
    cwd: Path,
    base_branch: str | None = None,
    patch: bool = True,
    max_patch: int = MAX_MERGED_FILE,
) -> WorktreeDiff:
    """What merging worktree ``spec``'s working state into the base branch would bring.

    The working state is committed, uncommitted and untracked (never ignored) work, as
    conflict foresight sees it, compared with its merge base with the base branch's tip (the
    changes the base branch made meanwhile are not shown). ``patch`` adds the unified diff,
    refused above ``max_patch`` bytes (ask for the summary instead).
    """
    state = repository_state_at(cwd, base_branch)
    wt = resolve_worktree(state, spec, cwd=cwd)
    base, tip = base_tip(state)
    work = working_state(wt, {})
    merge_base = merge_base_of(wt, work, tip, base)
    numstat = split_z(
        run_git(["diff", "--numstat", "-z", "-M", merge_base, work.oid, "--"], wt.path).stdout
    )
    counts: dict[str, tuple[int | None, int | None]] = {}
    i = 0
    while i < len(numstat):
        added, deleted, rest = numstat[i].split("\t", 2)
        if rest == "":  # a rename: the old and the new path follow
            name = numstat[i + 2]
            i += 3
        else:
            name = rest
            i += 1
        counts[name] = (
            None if added == "-" else int(added),
            None if deleted == "-" else int(deleted),
        )
    files: list[ChangedFile] = []
    for code, old, new in name_status(
        wt.path, ["diff", "--name-status", "-z", "-M", merge_base, work.oid, "--"]
    ):
        added_n, deleted_n = counts.get(new, (None, None))
        files.append(
            ChangedFile(
                path=new,
                status=STATUS.get(code, "modified"),
                old_path=old,
                added=added_n,
                deleted=deleted_n,
            )
        )
    text: str | None = None
    if patch:
        data = run_git(["diff", "-M", "--binary", merge_base, work.oid, "--"], wt.path).stdout
        if len(data) > max_patch:
            raise Refused(
                f"the diff of {side_label(wt)} is {len(data):,} bytes: too large to print "
                "(use --stat)"
            )
        text = data.decode("utf-8", "replace")
    return WorktreeDiff(
        worktree=wt.path,
        branch=wt.branch,
        base=base,
        merge_base=merge_base,
        snapshot=work.oid,
        files=tuple(files),
        patch=text,
    )
