"""Recreating a worktree from a backup ref, byte for byte."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from wtls.backup.gitdata import (
    BACKUP_REF_PREFIX,
    EXECUTABLE,
    GITLINK,
    MANIFEST_TRAILER,
    MANIFEST_VERSION,
    REGULAR,
    SYMLINK,
    fs_bytes,
    tree_entries,
)
from wtls.backup.models import RestoreResult
from wtls.errors import Refused
from wtls.git import GitError, git_executable, run_git, scrubbed_env, split_z


def read_manifest(run_dir: Path, ref: str) -> tuple[str, dict[str, Any]]:
    """``(backup commit, manifest)`` of a backup ref; Refused when it is no wtls backup."""
    if not ref or ref.startswith("-") or any(ord(c) < 32 for c in ref):
        raise Refused(f"{ref!r} is not a backup ref")
    names = [ref] if ref.startswith("refs/") else [ref, BACKUP_REF_PREFIX + ref]
    commit = ""
    for name in names:
        commit = run_git(
            ["rev-parse", "--verify", "-q", "--end-of-options", f"{name}^{{commit}}"],
            run_dir,
            ok_codes=(0, 1, 128),
        ).text
        if commit:
            break
    if not commit:
        raise Refused(f"no backup {ref!r}: `git for-each-ref {BACKUP_REF_PREFIX}` lists them")
    body = run_git(["cat-file", "commit", commit], run_dir).text
    meta = next(
        (
            line.removeprefix(MANIFEST_TRAILER).strip()
            for line in body.splitlines()
            if line.startswith(MANIFEST_TRAILER)
        ),
        None,
    )
    if meta is None:
        if "wtls backup of" in body:
            raise Refused(
                f"{ref} was made by an older wtls (a stash-shaped commit): restore it with "
                f"`git worktree add PATH {ref}^1` and `git -C PATH stash apply --index {ref}`"
            )
        raise Refused(f"{ref} is not a wtls backup")
    raw = run_git(["cat-file", "blob", f"{meta}:manifest.json"], run_dir).stdout
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise Refused(f"the manifest of {ref} is unreadable: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("version") != MANIFEST_VERSION:
        raise Refused(f"{ref} was made by a newer wtls: upgrade wtls to restore it")
    manifest["_meta"] = meta
    return commit, manifest


def _cat_blobs(common: Path, oids: Sequence[str]) -> Iterator[tuple[str, bytes]]:
    if not oids:
        return
    proc = subprocess.run(
        [git_executable(), "cat-file", "--batch"],
        cwd=str(common),
        env=scrubbed_env({"GIT_DIR": str(common)}),
        input=b"".join(o.encode() + b"\n" for o in oids),
        capture_output=True,
        check=True,
        timeout=None,
    )
    data = proc.stdout
    pos = 0
    for oid in oids:
        nl = data.index(b"\n", pos)
        header = data[pos:nl].split()
        pos = nl + 1
        if len(header) < 3:
            raise GitError(["cat-file"], -1, f"object {oid} is missing", common)
        size = int(header[2])
        yield oid, data[pos : pos + size]
        pos += size + 1


def _write_files(common: Path, tree: str, dest: Path) -> int:
    """Write every blob and link of ``tree`` under ``dest`` as raw bytes; return the count."""
    env = {"GIT_DIR": str(common)}
    entries = tree_entries(common, tree, env)
    files = [(p, m, o) for p, (m, o) in entries.items() if m != GITLINK]
    blobs = dict(_cat_blobs(common, sorted({o for _, _, o in files})))
    for path, mode, oid in files:
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
        if mode == SYMLINK:
            os.symlink(os.fsdecode(blobs[oid]), target)
            continue
        fd = os.open(
            target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o777 if mode == EXECUTABLE else 0o666
        )
        with os.fdopen(fd, "wb") as fh:
            fh.write(blobs[oid])
    return len(files)


def _lay_out(
    work: Path, index_tree: str, store: Path, files: str, env: Mapping[str, str] | None = None
) -> int:
    """Make ``work`` hold the saved index and, on disk, exactly the saved raw files.

    The index is checked out first, as git would (so its stat data is what a checkout leaves
    and ``git status`` judges the raw files as it did before); then the files the user had
    deleted go, and every saved file is written over with its raw bytes.
    """
    run_git(["read-tree", "--reset", "-u", index_tree], work, env=env, timeout=None)
    saved = tree_entries(store, files, {"GIT_DIR": str(store)})
    listed = split_z(run_git(["ls-files", "-z", "-t", "--cached"], work, env=env).stdout)
    for item in listed:
        tag, path = item[:1], item[2:]
        if tag == "S" or path in saved:
            continue
        full = work / path
        if full.is_symlink() or full.is_file():
            full.unlink()
            parent = full.parent
            while parent != work and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
    count = _write_files(store, files, work)
    _refresh_stat(work, saved, env)
    return count


def _refresh_stat(
    work: Path, saved: Mapping[str, tuple[str, str]], env: Mapping[str, str] | None
) -> None:
    """Record fresh stat data for the files whose content equals the index.

    A raw file that differs from the checkout only by a filter or line endings (a CRLF file
    under ``text=auto``) has another size than the checkout git recorded, and git calls such a
    file modified from its size alone, even after ``update-index --refresh``. ``git add`` of
    exactly the paths whose filtered content equals their index entry records their stat data
    and stages nothing new.
    """
    staged: dict[str, str] = {}
    for item in split_z(run_git(["ls-files", "-z", "-s", "-t"], work, env=env).stdout):
        meta, _, path = item.partition("\t")
        tag, mode, oid, stage = meta.split(" ")
        if tag == "H" and stage == "0" and mode in (REGULAR, EXECUTABLE):
            staged[path] = oid
    odd = [
        p
        for p, oid in staged.items()
        if p in saved and saved[p][1] != oid and saved[p][0] != SYMLINK
        if "\n" not in p and not p.startswith('"')
    ]
    if odd:
        filtered = run_git(
            ["hash-object", "--stdin-paths"],
            work,
            env=env,
            input=b"".join(fs_bytes(p) + b"\n" for p in odd),
            timeout=None,
        ).text.split()
        same = [p for p, oid in zip(odd, filtered, strict=True) if oid == staged[p]]
        if same:
            run_git(
                ["add", "--sparse", "--pathspec-from-file=-", "--pathspec-file-nul"],
                work,
                env={**(env or {}), "GIT_LITERAL_PATHSPECS": "1"},
                input=b"".join(fs_bytes(p) + b"\0" for p in same),
                timeout=None,
            )
    run_git(["update-index", "-q", "--refresh"], work, env=env, ok_codes=(0, 1), timeout=None)


def restore_backup(run_dir: Path, ref: str, path: Path | None = None) -> RestoreResult:
    """Recreate the worktree saved in ``ref`` at ``path`` (default: where it was).

    The worktree gets its branch back when the branch is free and still at the saved HEAD (a
    deleted branch is created again there); otherwise it is detached at the saved HEAD and the
    message says why. Files come back as the raw bytes saved, the index as saved, nested
    repositories with all their refs, index and files. Refused when ``path`` exists and is not
    empty.
    """
    commit, manifest = read_manifest(run_dir, ref)
    common = Path(
        run_git(["rev-parse", "--path-format=absolute", "--git-common-dir"], run_dir).text
    )
    target = Path(os.path.abspath(path if path is not None else manifest["worktree"]))
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise Refused(f"{target} exists and is not empty: give another place with --path")
    head: str | None = manifest.get("head")
    branch: str | None = manifest.get("branch")
    if head is None:
        raise Refused(f"{ref} has no HEAD commit to restore onto")
    notes: list[str] = []
    detached = True
    args = ["worktree", "add", "--no-checkout"]
    if branch:
        tip = run_git(
            ["rev-parse", "--verify", "-q", f"refs/heads/{branch}"], run_dir, ok_codes=(0, 1)
        ).text
        checked_out = branch_checked_out(run_dir, branch)
        if not tip:
            run_git(["branch", "--end-of-options", branch, head], run_dir)
            notes.append(f"created branch {branch} again at {head[:12]}")
            detached = False
        elif tip == head and not checked_out:
            detached = False
        elif checked_out:
            notes.append(f"branch {branch} is checked out elsewhere, so this worktree is detached")
        else:
            notes.append(
                f"branch {branch} has moved since the backup, so this worktree is detached at "
                f"{head[:12]}; `git switch {branch}` when you are ready"
            )
    if detached:
        run_git([*args, "--detach", "--", str(target), head], run_dir)
    else:
        assert branch is not None
        run_git([*args, "--", str(target), branch], run_dir)
    sparse = manifest.get("sparse")
    if sparse:
        mode = "--cone" if sparse.get("cone") else "--no-cone"
        run_git(
            ["sparse-checkout", "set", mode, "--stdin"],
            target,
            input="".join(p + "\n" for p in sparse.get("patterns", [])).encode(),
        )
    count = _lay_out(target, f"{manifest['index']}^{{tree}}", common, commit)
    for oid, name in manifest.get("ownRefs", []):
        run_git(["update-ref", str(name), str(oid), ""], target)
    restored_nested: list[str] = []
    for k, item in enumerate(manifest.get("nested", [])):
        restored_nested.append(_restore_nested(common, target, manifest["_meta"], k, item))
    message = f"restored {target} from {ref}" + ("; " + "; ".join(notes) if notes else "")
    return RestoreResult(
        path=target,
        branch=None if detached else branch,
        head=head,
        detached=detached,
        files=count,
        nested=tuple(restored_nested),
        message=message,
    )


def branch_checked_out(run_dir: Path, branch: str) -> bool:
    """Whether any worktree of the repository has ``branch`` checked out."""
    data = run_git(["worktree", "list", "--porcelain", "-z"], run_dir).stdout
    return f"branch refs/heads/{branch}" in split_z(data)


def _restore_nested(common: Path, top: Path, meta: str, k: int, item: Mapping[str, Any]) -> str:
    rel = str(item["path"])
    work = top / rel
    work.mkdir(parents=True, exist_ok=True)
    run_git(["init", "-q", "--", str(work)], top)
    git_dir = work / ".git"
    # Explicit GIT_DIR/GIT_WORK_TREE: a submodule's saved config names its old work tree.
    env = {"GIT_DIR": str(git_dir), "GIT_WORK_TREE": str(work)}
    common_env = {"GIT_DIR": str(common)}
    # Bring its objects back: every saved ref, plus the saved files and index commit.
    tmp_ref = "refs/wtls-restore/files"
    run_git(
        [
            "fetch",
            "-q",
            "--no-tags",
            "--no-write-fetch-head",
            "--update-head-ok",
            "--",
            str(common),
            f"+{item['refs']}refs/*:refs/*",
            f"+{item['files']}:{tmp_ref}",
            *(f"+{c}:refs/wtls-restore/keep-{i}" for i, c in enumerate(item.get("keep", []))),
        ],
        work,
        env=env,
        timeout=None,
    )
    symref, head = item.get("symref"), item.get("head")
    if symref:
        run_git(["symbolic-ref", "HEAD", symref], work, env=env)
    elif head:
        run_git(["update-ref", "--no-deref", "HEAD", head], work, env=env)
    files_commit = run_git(["rev-parse", "--verify", tmp_ref], work, env=env).text
    _lay_out(work, f"{item['index']}^{{tree}}", git_dir, files_commit, env)
    for i in range(len(item.get("keep", []))):
        run_git(["update-ref", "-d", f"refs/wtls-restore/keep-{i}"], work, env=env)
    run_git(["update-ref", "-d", tmp_ref], work, env=env)
    # Last, its config, exclude file, hooks and reflogs as they were (so the fetch above
    # leaves no entry in them, and every stash entry is listed again).
    saved_dir = run_git(
        ["rev-parse", "--verify", "-q", f"{meta}:nested/{k}/gitdir"],
        common,
        env=common_env,
        ok_codes=(0, 1, 128),
    ).text
    if saved_dir:
        _write_files(common, saved_dir, git_dir)
    run_git(
        ["config", "--file", str(git_dir / "config"), "--unset-all", "core.worktree"],
        work,
        env=env,
        ok_codes=(0, 5),
    )
    if item.get("kind") == "submodule":
        run_git(["submodule", "absorbgitdirs", "--", rel], top, ok_codes=(0, 1, 128))
    return rel
