"""Snapshots: a worktree's working state as an unreferenced commit, and its fingerprint.

The working state (committed and uncommitted changes, untracked files, never ignored ones, plus
unsaved editor buffers given as overlays) goes through a *temporary* index: a copy of the
worktree's real index (so stat data lets git skip unchanged files and gitlinks/skip-worktree
entries stay right), ``git add -A``, ``write-tree``, ``commit-tree -p HEAD``. The worktree's
real index, HEAD and refs are never touched. :func:`fingerprint` says what must stay the same
for a snapshot to still be right.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from wtls.git import run_git, split_z
from wtls.predict.commits import IDENTITY_ENV, Commit, TempDir, commit_info
from wtls.worktrees import WorktreeState

#: Why a worktree without commits has no snapshot (as the prediction's ``skipped`` says).
NO_COMMITS = "it has no commits yet"

#: An untracked folder with more files than this makes the fingerprint "unknown" (re-snapshot).
_FINGERPRINT_WALK_LIMIT = 5000


def _worktree_index(worktree: Path) -> Path:
    """The real index file of ``worktree`` (``git rev-parse --git-path index``)."""
    rel = run_git(["rev-parse", "--git-path", "index"], worktree).text
    path = Path(rel)
    return path if path.is_absolute() else worktree / path


def snapshot_worktree(
    worktree: Path,
    overlays: Mapping[str, bytes] | None = None,
    *,
    index: Path | None = None,
    head: Commit | None = None,
    added: Path | None = None,
    keep: Path | None = None,
) -> tuple[str, Commit] | None:
    """Snapshot ``worktree``'s working state (plus ``overlays``: relative path → bytes).

    ``index`` is the worktree's real index file and ``head`` its HEAD commit, when the caller
    knows them (each saves a git call). ``keep``: a new file to save the temporary index in
    after ``git add -A`` (before the overlays). ``added``: such a file from an earlier
    snapshot, used instead of the real index and ``add -A`` — only when the caller knows the
    worktree's files are unchanged since and only the buffers differ: an unsaved edit then
    costs no walk of the worktree. A missing ``added`` falls back to the walk.
    Returns ``(head, commit)``; the commit is HEAD itself when nothing differs from it. None
    for a worktree without commits. The worktree's index, HEAD and refs are not touched.
    """
    if head is None:
        head = commit_info(worktree, "HEAD")
    if head is None:
        return None
    with TempDir() as tmp:
        temp_index = tmp / "index"
        env = {"GIT_INDEX_FILE": str(temp_index)}
        if not _copied(added, temp_index):
            real_index = index if index is not None else _worktree_index(worktree)
            try:
                # copy2 keeps the mtime: git's racy-clean check compares entries with the index
                # file's own mtime, and a newer copy would hide a same-second edit.
                shutil.copy2(real_index, temp_index)
            except FileNotFoundError:
                run_git(["read-tree", head.oid], worktree, env=env)
            run_git(["add", "-A"], worktree, env=env)
            if keep is not None:
                _copied(temp_index, keep)
        if overlays:
            _apply_overlays(worktree, overlays, env, tmp)
        tree = run_git(["write-tree"], worktree, env=env).text
    if tree == head.tree:
        return head.oid, head
    oid = run_git(
        ["commit-tree", tree, "-p", head.oid, "-m", f"wtls snapshot of {worktree}"],
        worktree,
        env={
            **IDENTITY_ENV,
            # The parent's date: deterministic ids (same state → same commit) and no clock skew.
            "GIT_AUTHOR_DATE": f"@{head.date} +0000",
            "GIT_COMMITTER_DATE": f"@{head.date} +0000",
        },
    ).text
    return head.oid, Commit(oid=oid, tree=tree, date=head.date)


def _copied(source: Path | None, target: Path) -> bool:
    """Whether ``source`` was copied to ``target`` whole (a partial copy is removed)."""
    if source is None:
        return False
    try:
        shutil.copy2(source, target)
    except OSError:
        with contextlib.suppress(OSError):
            target.unlink()
        return False
    return True


def _apply_overlays(
    worktree: Path, overlays: Mapping[str, bytes], env: Mapping[str, str], tmp: Path
) -> None:
    """Put unsaved buffers into the temporary index, as ``git add`` would have (filters too)."""
    rels = sorted(overlays)
    staged: dict[str, str] = {}
    listing = run_git(
        ["ls-files", "-s", "-z", "--", *rels],
        worktree,
        env={**env, "GIT_LITERAL_PATHSPECS": "1"},  # a file named `*.py` is not a glob here
    ).stdout
    for item in split_z(listing):
        meta, _, path = item.partition("\t")
        staged[path] = meta.split(" ")[0]
    # Only a file git does not track can be ignored (the buffer of a tracked one always counts).
    untracked = [r for r in rels if r not in staged]
    ignored = set(
        split_z(
            run_git(
                ["check-ignore", "-z", "--stdin"],
                worktree,
                env=env,
                input=b"\0".join(r.encode("utf-8", "surrogateescape") for r in untracked) + b"\0",
                ok_codes=(0, 1),
            ).stdout
        )
        if untracked
        else ()
    )
    lines: list[bytes] = []
    for n, rel in enumerate(rels):
        if rel in ignored and rel not in staged:
            continue  # an ignored file never takes part in a merge
        blob_file = tmp / f"overlay-{n}"
        blob_file.write_bytes(overlays[rel])
        # --path applies the path's attributes (eol, clean filters) like `git add` does.
        oid = run_git(
            ["hash-object", "-w", f"--path={rel}", "--", str(blob_file)], worktree, env=env
        ).text
        mode = staged.get(rel)
        if mode is None or mode == "160000":
            mode = "100755" if os.access(worktree / rel, os.X_OK) else "100644"
        lines.append(f"{mode} {oid}\t{rel}".encode("utf-8", "surrogateescape"))
    if lines:
        run_git(
            ["update-index", "-z", "--add", "--index-info"],
            worktree,
            env=env,
            input=b"\0".join(lines) + b"\0",
        )


def unusable(wt: WorktreeState) -> str | None:
    """Why a worktree cannot be snapshotted, or None."""
    if wt.bare:
        return "bare"
    if wt.prunable:
        return "its folder is gone (prunable)"
    if wt.broken:
        return f"it is broken: {wt.broken}"
    if not wt.path.is_dir():
        return "its folder is missing"
    if wt.head is None:
        return NO_COMMITS
    return None


def fingerprint(
    wt: WorktreeState, written: Iterable[str] = (), *, without: Iterable[str] = ()
) -> tuple[Any, ...] | None:
    """What must be unchanged for a snapshot of ``wt`` to still be right; None: unknown.

    HEAD, the real index file's stat data, and the stat data of every path ``git status``
    reported as changed (every file of an untracked folder), plus ``written``: paths (relative)
    written since ``wt`` was read, which its status may not list yet, minus ``without``. The
    same files give the same fingerprint whichever list named them.
    """
    index = wt.gitdir / "index" if wt.gitdir is not None else None
    try:
        st = index.stat() if index is not None else None
        index_key = (st.st_mtime_ns, st.st_size, st.st_ino) if st else None
    except OSError:
        index_key = None
    files: set[tuple[Any, ...]] = set()
    for rel in {*wt.status.changed_paths, *written}.difference(without):
        for item in _walk_changed(wt.path, rel):
            files.add(item)
            if len(files) > _FINGERPRINT_WALK_LIMIT:
                return None
    return (wt.head, wt.branch, index_key, frozenset(files))


def overlay_digest(overlays: Mapping[str, bytes]) -> str:
    """A digest of unsaved buffers (relative path → bytes): a snapshot's overlays' identity."""
    digest = hashlib.sha1()
    for rel in sorted(overlays):
        digest.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        digest.update(hashlib.sha1(overlays[rel]).digest())
    return digest.hexdigest()


def _walk_changed(root: Path, rel: str) -> Iterator[tuple[Any, ...]]:
    """Stat data of a changed path; every file of an untracked folder (``dir/``)."""
    target = root / rel
    if rel.endswith("/"):
        for folder, _dirs, names in os.walk(target):
            for name in sorted(names):
                p = Path(folder) / name
                yield _stat_key(p, p.relative_to(root).as_posix())
        return
    yield _stat_key(target, rel)


def _stat_key(path: Path, rel: str) -> tuple[Any, ...]:
    try:
        st = path.lstat()
    except OSError:
        return (rel, None)
    return (rel, st.st_mtime_ns, st.st_size, st.st_mode, st.st_ino)
