"""What a worktree folder holds, and its proof against the disk: inspect and verify."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from wtls.backup.gitdata import (
    GITLINK,
    SYMLINK,
    WTLS_IDENTITY,
    Hashed,
    checkout_ids,
    disk_entry,
    find_nested,
    git_dir_of,
    gitlinks_of,
    hash_raw,
    head_of,
    index_as_tree,
    listed_paths,
    object_format,
    sparse_setup,
    tree_entries,
    write_tree,
)
from wtls.backup.models import Inspection, Nested, NestedSnapshot
from wtls.git import run_git, split_z


def _snapshot(work: Path, common: Path, skip: frozenset[str]) -> tuple[str, Hashed, list[str]]:
    listed = [
        p
        for p in listed_paths(work)
        if p not in skip and not any(p.startswith(s + "/") for s in skip)
    ]
    hashed = hash_raw(work, listed, common)
    return write_tree(common, hashed.entries), hashed, listed


def _nested_snapshot(
    n: Nested, folder: Path, common: Path, inner: frozenset[str]
) -> NestedSnapshot:
    work = folder / n.path
    head, symref = head_of(work)
    index_tree = index_as_tree(work)
    index_commit: str | None = None
    parents = ["-p", head] if head else []
    index_commit = run_git(
        ["commit-tree", index_tree, *parents, "-m", "wtls: index of a nested repository"],
        work,
        env=WTLS_IDENTITY,
    ).text
    tree, hashed, _ = _snapshot(work, common, inner)
    del hashed
    return NestedSnapshot(nested=n, head=head, symref=symref, tree=tree, index_commit=index_commit)


def _inner_roots(nested: Sequence[Nested], prefix: str) -> frozenset[str]:
    """Nested roots below ``prefix`` (``""`` = the top), relative to that prefix."""
    out = set()
    for n in nested:
        if prefix and not n.path.startswith(prefix + "/"):
            continue
        rel = n.path[len(prefix) + 1 :] if prefix else n.path
        if rel:
            out.add(rel)
    return frozenset(out)


def inspect_worktree(folder: Path) -> Inspection:
    """Look at everything in ``folder`` (a worktree) that a removal would delete.

    Nested repositories are snapshotted too (HEAD, index and files), so that
    :func:`verify_folder` notices a change inside them.
    """
    common = Path(run_git(["rev-parse", "--path-format=absolute", "--git-common-dir"], folder).text)
    fmt = object_format(folder)
    head, _ = head_of(folder)
    gitlinks = gitlinks_of(folder)
    nested = find_nested(folder, gitlinks)
    repos = [n for n in nested if n.kind in ("repository", "submodule")]
    skip = frozenset(n.path for n in nested)
    tree, hashed, _ = _snapshot(folder, common, skip)
    entries = [(m, o, p) for m, o, p in hashed.entries]
    # Nested repositories appear in the snapshot as gitlinks at their HEAD (as git records
    # submodules); their contents are snapshotted on their own.
    snapshots: list[NestedSnapshot] = []
    for n in repos:
        inner = _inner_roots(nested, n.path)
        snapshots.append(_nested_snapshot(n, folder, common, inner))
    links = [(GITLINK, s.head, s.nested.path) for s in snapshots if s.head]
    if links:
        tree = write_tree(common, [*entries, *links])
    index_tree = index_as_tree(folder)
    head_entries = tree_entries(folder, head) if head else {}
    index_entries = tree_entries(folder, index_tree)
    raw = {p: (m, o) for m, o, p in entries}
    changed: list[str] = []
    check: list[tuple[str, str]] = []
    for path, (mode, oid) in raw.items():
        if path in gitlinks:
            continue
        want = head_entries.get(path)
        if want is None:
            changed.append(path)
        elif want != (mode, oid):
            if want[0] == mode and mode != SYMLINK:
                check.append((path, want[1]))
            else:
                changed.append(path)
    if check and head:
        smudged = checkout_ids(folder, head, [p for p, _ in check], fmt)
        changed += [p for p, _ in check if smudged.get(p) != raw[p][1]]
    skip_worktree = _skip_worktree(folder)
    for path, (mode, _) in head_entries.items():
        if mode == GITLINK or path in raw or path in skip_worktree:
            continue
        if any(path == s or path.startswith(s + "/") for s in skip):
            continue
        changed.append(path)  # deleted on disk
    staged = index_entries != head_entries if head else bool(index_entries)
    return Inspection(
        folder=folder,
        head=head,
        tree=tree,
        index_tree=index_tree,
        changed=tuple(sorted(set(changed))),
        staged=staged,
        nested=tuple(nested),
        nested_snapshots=tuple(snapshots),
        sparse=sparse_setup(folder),
        own_refs=tuple(own_refs(folder)),
        special=tuple(hashed.special),
    )


#: Refs git keeps per worktree, in its private git folder.
OWN_REF_PREFIXES = ("refs/worktree/", "refs/bisect/", "refs/rewritten/")


def own_refs(work: Path) -> list[tuple[str, str]]:
    """``(oid, name)`` of the refs that belong to the worktree at ``work`` alone."""
    out = run_git(
        ["for-each-ref", "--format=%(objectname) %(refname)", *OWN_REF_PREFIXES], work
    ).text
    return [(oid, name) for oid, _, name in (line.partition(" ") for line in out.splitlines())]


def _skip_worktree(work: Path) -> frozenset[str]:
    out = run_git(["ls-files", "-z", "-t"], work).stdout
    return frozenset(item[2:] for item in split_z(out) if item.startswith("S "))


def verify_folder(folder: Path, inspection: Inspection) -> list[str]:
    """Read ``folder`` again and list every difference from ``inspection``'s snapshot.

    The hashes are computed here from the bytes on disk, independently of git's index and
    stat cache; the listing asks git again, so a file created since is noticed. Empty = every
    file, link, mode and nested repository is as the snapshot holds it.
    """
    fmt = object_format(folder)
    common = Path(run_git(["rev-parse", "--path-format=absolute", "--git-common-dir"], folder).text)
    env = {"GIT_DIR": str(common)}
    saved = tree_entries(common, inspection.tree, env)
    problems: list[str] = []
    nested_now = find_nested(folder, gitlinks_of(folder))
    if [(n.path, n.kind) for n in nested_now] != [(n.path, n.kind) for n in inspection.nested]:
        problems.append("the nested repositories or worktrees changed")
    skip = frozenset(n.path for n in nested_now)
    listed = set(listed_paths(folder)) - skip
    for path, (mode, oid) in saved.items():
        if mode == GITLINK:
            continue
        got = disk_entry(folder, path, fmt)
        if got != (mode, oid):
            problems.append(path)
    for path in sorted(listed - saved.keys()):
        if disk_entry(folder, path, fmt) is not None:
            problems.append(path)
    if index_as_tree(folder) != inspection.index_tree:
        problems.append("the index changed")
    for snap in inspection.nested_snapshots:
        work = folder / snap.nested.path
        # A submodule's git dir names its work tree by its old path (core.worktree): point
        # git at the folder where it is now (renamed aside, before deletion).
        git_dir = git_dir_of(work)
        if git_dir is None:
            problems.append(f"{snap.nested.path}/ (its .git is gone)")
            continue
        nenv = {"GIT_DIR": str(git_dir), "GIT_WORK_TREE": str(work)}
        head, symref = head_of(work, nenv)
        if (head, symref) != (snap.head, snap.symref):
            problems.append(f"{snap.nested.path}/ (its HEAD moved)")
            continue
        inner_saved = tree_entries(common, snap.tree, env)
        inner_skip = _inner_roots(inspection.nested, snap.nested.path)
        inner_listed = set(listed_paths(work, nenv)) - inner_skip
        for path, (mode, oid) in inner_saved.items():
            if disk_entry(work, path, fmt) != (mode, oid):
                problems.append(f"{snap.nested.path}/{path}")
        for path in sorted(inner_listed - inner_saved.keys()):
            if disk_entry(work, path, fmt) is not None:
                problems.append(f"{snap.nested.path}/{path}")
    return problems
