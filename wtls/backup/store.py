"""Saving an inspected worktree under one backup ref (nested repositories included)."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wtls.backup.gitdata import (
    BACKUP_REF_PREFIX,
    MANIFEST_TRAILER,
    MANIFEST_VERSION,
    NESTED_REF_PREFIX,
    REGULAR,
    WTLS_IDENTITY,
    BackupChanged,
    BackupError,
    fs_bytes,
    write_tree,
)
from wtls.backup.models import Backup, Inspection
from wtls.backup.snapshot import OWN_REF_PREFIXES, verify_folder
from wtls.git import git_executable, run_git, scrubbed_env


def unique_ref(run_dir: Path, prefix: str, label: str) -> str:
    """A new ref name ``prefix + label + -STAMP`` that does not exist yet."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = f"{prefix}{label}-{stamp}"
    ref, n = base, 2
    while _ref_exists(run_dir, ref) or _ref_exists(
        run_dir, NESTED_REF_PREFIX + ref.removeprefix(prefix)
    ):
        ref = f"{base}-{n}"
        n += 1
    return ref


def _ref_exists(run_dir: Path, ref: str) -> bool:
    out = run_git(["for-each-ref", "--count=1", "--format=%(refname)", ref, f"{ref}/"], run_dir)
    return bool(out.text)


def _copy_objects(source: Path, common: Path, extra: Sequence[str]) -> None:
    """Copy every object of the repository at ``source`` (refs, reflogs, index) into ``common``."""
    git = git_executable()
    with tempfile.TemporaryFile() as pack:
        proc = subprocess.run(
            [
                git,
                "pack-objects",
                "--revs",
                "--all",
                "--reflog",
                "--indexed-objects",
                "--stdout",
                "-q",
            ],
            cwd=str(source),
            env=scrubbed_env(),
            input=b"".join(x.encode() + b"\n" for x in extra),
            stdout=pack,
            stderr=subprocess.PIPE,
            check=False,
            timeout=None,
        )
        if proc.returncode != 0:
            raise BackupError(
                f"could not read the objects of {source}: "
                f"{proc.stderr.decode('utf-8', 'replace').strip()}; nothing was removed",
                source,
            )
        if pack.tell() == 0:
            return
        pack.seek(0)
        done = subprocess.run(
            [git, "index-pack", "--stdin", "--fix-thin"],
            cwd=str(common),
            env=scrubbed_env({"GIT_DIR": str(common)}),
            stdin=pack,
            capture_output=True,
            check=False,
            timeout=None,
        )
        if done.returncode != 0:
            raise BackupError(
                f"could not copy the objects of {source}: "
                f"{done.stderr.decode('utf-8', 'replace').strip()}; nothing was removed",
                source,
            )


#: Files of a nested repository's git dir that a backup keeps (besides objects and refs).
_GIT_DIR_KEPT = ("config", "info", "logs", "hooks", "rr-cache", "lfs")
_OID_RE = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


def _git_dir_files(git_dir: Path) -> list[str]:
    """Relative paths of the config, exclude file, reflogs and hooks in ``git_dir``."""
    out: list[str] = []
    for name in _GIT_DIR_KEPT:
        top = git_dir / name
        if top.is_file() and not top.is_symlink():
            out.append(name)
        elif top.is_dir() and not top.is_symlink():
            out += [
                path.relative_to(git_dir).as_posix()
                for path in sorted(top.rglob("*"))
                if path.is_file()
                and not path.is_symlink()
                and not path.name.endswith(".sample")
                and "\n" not in str(path)
            ]
    return out


def _reflog_commits(git_dir: Path, common: Path) -> list[str]:
    """Commits named by the reflogs of ``git_dir`` that exist in ``common``'s object store."""
    named: set[str] = set()
    logs = git_dir / "logs"
    if logs.is_dir():
        for path in logs.rglob("*"):
            if path.is_file() and not path.is_symlink():
                for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                    named.update(o for o in line.split(" ", 2)[:2] if _OID_RE.fullmatch(o))
    named.discard("0" * 40)
    named.discard("0" * 64)
    if not named:
        return []
    order = sorted(named)
    out = run_git(
        ["cat-file", "--batch-check=%(objectname) %(objecttype)"],
        common,
        env={"GIT_DIR": str(common)},
        input="".join(o + "\n" for o in order).encode(),
    ).text
    return [line.split()[0] for line in out.splitlines() if line.endswith(" commit")]


def _nested_refs(work: Path) -> list[tuple[str, str]]:
    out = run_git(["for-each-ref", "--format=%(objectname) %(refname)"], work).text
    return [tuple(line.split(" ", 1)) for line in out.splitlines() if " " in line]  # type: ignore[misc]


def save_backup(
    inspection: Inspection,
    run_dir: Path,
    label: str,
    branch: str | None,
    *,
    why: str = "removal",
) -> Backup:
    """Store everything of ``inspection`` under a new ``refs/wtls/backup/`` ref and verify it.

    ``why`` names what the backup comes before (its commit message and reflog say so).

    Raises :class:`BackupError` (nothing removed, nothing but unreachable objects written)
    when anything cannot be saved or does not verify against the disk.
    """
    folder = inspection.folder
    common = Path(run_git(["rev-parse", "--path-format=absolute", "--git-common-dir"], folder).text)
    ref = unique_ref(run_dir, BACKUP_REF_PREFIX, label)
    backup_id = ref.removeprefix(BACKUP_REF_PREFIX)
    env_common = {**WTLS_IDENTITY, "GIT_DIR": str(common)}
    head = inspection.head
    parents = ["-p", head] if head else []
    index_commit = run_git(
        ["commit-tree", inspection.index_tree, *parents, "-m", f"wtls: index of {label}"],
        folder,
        env=WTLS_IDENTITY,
    ).text
    nested_json: list[dict[str, Any]] = []
    nested_commits: list[str] = []
    ref_updates: list[tuple[str, str]] = []
    meta_entries: list[tuple[str, str, str]] = []
    for k, snap in enumerate(inspection.nested_snapshots):
        work = folder / snap.nested.path
        extra = [x for x in (snap.index_commit,) if x]
        _copy_objects(work, common, extra)
        nparents: list[str] = []
        for p in (snap.head, snap.index_commit):
            if p:
                nparents += ["-p", p]
        ncommit = run_git(
            ["commit-tree", snap.tree, *nparents, "-m", f"wtls: files of {snap.nested.path}"],
            common,
            env=env_common,
        ).text
        nested_commits.append(ncommit)
        prefix = f"{NESTED_REF_PREFIX}{backup_id}/{k}/"
        for oid, name in _nested_refs(work):
            ref_updates.append((prefix + name, oid))
        kept_files = _git_dir_files(snap.nested.git_dir)
        if kept_files:
            oids = run_git(
                ["hash-object", "-w", "--no-filters", "--stdin-paths"],
                common,
                env=env_common,
                input=b"".join(fs_bytes(str(snap.nested.git_dir / r)) + b"\n" for r in kept_files),
            ).text.split()
            for rel, oid in zip(kept_files, oids, strict=True):
                meta_entries.append((REGULAR, oid, f"nested/{k}/gitdir/{rel}"))
        keep = _reflog_commits(snap.nested.git_dir, common)
        nested_json.append(
            {
                "path": snap.nested.path,
                "kind": snap.nested.kind,
                "head": snap.head,
                "symref": snap.symref,
                "files": ncommit,
                "index": snap.index_commit,
                "refs": prefix,
                "keep": keep,
            }
        )
    manifest = {
        "version": MANIFEST_VERSION,
        "worktree": str(folder),
        "branch": branch,
        "head": head,
        "index": index_commit,
        "sparse": dict(inspection.sparse) if inspection.sparse else None,
        "changed": list(inspection.changed),
        "nested": nested_json,
        "ownRefs": [[oid, name] for oid, name in inspection.own_refs],
    }
    manifest_blob = run_git(
        ["hash-object", "-w", "--stdin"],
        common,
        env=env_common,
        input=json.dumps(manifest, indent=1, ensure_ascii=True).encode(),
    ).text
    meta_tree = write_tree(common, [(REGULAR, manifest_blob, "manifest.json"), *meta_entries])
    # Commits only a nested reflog names (older stash entries, reset-away work) stay alive as
    # parents of the manifest commit.
    keepers = sorted({c for item in nested_json for c in item["keep"]})
    meta_parents = [arg for c in keepers for arg in ("-p", c)]
    meta_commit = run_git(
        ["commit-tree", meta_tree, *meta_parents, "-m", f"wtls: manifest of the backup of {label}"],
        common,
        env=env_common,
    ).text
    all_parents = [*parents, "-p", index_commit, "-p", meta_commit]
    for c in nested_commits:
        all_parents += ["-p", c]
    message = (
        f"wtls backup of {folder} ({branch or 'detached'}) before {why}\n\n"
        f"Restore with: wtls restore {ref}\n\n{MANIFEST_TRAILER} {meta_commit}\n"
    )
    commit = run_git(
        ["commit-tree", inspection.tree, *all_parents, "-F", "-"],
        common,
        env=env_common,
        input=message.encode(),
    ).text
    # Prove it before anyone relies on it: the disk must still match what was saved.
    problems = verify_folder(folder, inspection)
    if problems:
        raise BackupChanged(
            f"the backup of {folder} does not match its files "
            f"({', '.join(problems[:5])}{' …' if len(problems) > 5 else ''}): they changed "
            "while wtls read them; nothing was removed",
            folder,
        )
    own = [(f"{NESTED_REF_PREFIX}{backup_id}/own/{name}", oid) for oid, name in inspection.own_refs]
    updates = [(ref, commit), *ref_updates, *((name, oid) for name, oid in own)]
    script = "".join(f"create {name} {oid}\n" for name, oid in updates)
    run_git(
        ["update-ref", "--stdin", "-m", f"wtls: backup before {why}"],
        run_dir,
        input=script.encode(),
    )
    if run_git(["rev-parse", "--verify", ref], run_dir).text != commit:
        raise BackupError(f"backup ref {ref} does not hold {commit}; nothing was removed", run_dir)
    return Backup(
        ref=ref,
        commit=commit,
        files=inspection.changed,
        nested=tuple(n["path"] for n in nested_json),
        nested_refs=tuple(name for name, _ in [*ref_updates, *own]),
    )


def save_commit(run_dir: Path, label: str, commit: str, why: str) -> str:
    """Keep ``commit`` reachable under a new ``refs/wtls/backup/`` ref; return the ref."""
    ref = unique_ref(run_dir, BACKUP_REF_PREFIX, label)
    run_git(["update-ref", "-m", f"wtls: {why}", ref, commit, ""], run_dir)
    return ref


def unreachable_commits(run_dir: Path, commit: str) -> bool:
    """Whether ``commit`` has history that no branch, tag or remote-tracking ref reaches."""
    out = run_git(
        ["rev-list", "-n", "1", commit, "--not", "--branches", "--tags", "--remotes"],
        run_dir,
        ok_codes=(0, 128),
    )
    return out.returncode == 0 and bool(out.text)


def admin_refs(admin: Path) -> list[tuple[str, str]]:
    """``(oid, name)`` of the refs a worktree keeps in its admin dir (``refs/worktree/*``...)."""
    found: list[tuple[str, str]] = []
    for prefix in OWN_REF_PREFIXES:
        top = admin / prefix.rstrip("/")
        if not top.is_dir():
            continue
        for path in sorted(top.rglob("*")):
            if path.is_symlink() or not path.is_file():
                continue
            oid = path.read_text(encoding="utf-8", errors="replace").strip()
            if _OID_RE.fullmatch(oid):
                found.append((oid, path.relative_to(admin).as_posix()))
    return found


def admin_head(admin: Path) -> str | None:
    """The commit a worktree's HEAD names when it is detached (None on a branch)."""
    try:
        text = (admin / "HEAD").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return text if _OID_RE.fullmatch(text) else None


def save_refs(run_dir: Path, label: str, refs: Sequence[tuple[str, str]], why: str) -> str:
    """Keep ``refs`` under a new ``refs/wtls/backup/LABEL-own-refs-STAMP/`` folder; its name."""
    base = unique_ref(run_dir, BACKUP_REF_PREFIX, f"{label}-own-refs")
    script = "".join(f"create {base}/{name} {oid}\n" for oid, name in refs)
    run_git(["update-ref", "--stdin", "-m", f"wtls: {why}"], run_dir, input=script.encode())
    return base
