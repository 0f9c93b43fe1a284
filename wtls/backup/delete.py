"""Deleting a verified worktree folder: only what is saved byte for byte, or ignored."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from wtls.backup.gitdata import (
    GITLINK,
    disk_entry,
    fs_bytes,
    git_dir_of,
    object_format,
    tree_entries,
)
from wtls.backup.models import Inspection
from wtls.git import run_git, split_z


def deletion_plan(inspection: Inspection, folder: Path) -> dict[str, Any]:
    """What :func:`delete_verified` may delete: the snapshot trees, as JSON-able data."""
    common = run_git(["rev-parse", "--path-format=absolute", "--git-common-dir"], folder).text
    return {
        "common": common,
        "format": object_format(folder),
        "tree": inspection.tree,
        "nested": {s.nested.path: s.tree for s in inspection.nested_snapshots},
    }


def _owner(rel: str, roots: Sequence[str]) -> str:
    """The deepest nested repository root holding ``rel`` (``""`` = the worktree itself)."""
    return next((r for r in roots if rel.startswith(r + "/")), "")


def _ignored(
    folder: Path, paths: Sequence[str], roots: Sequence[str], env: Mapping[str, str]
) -> set[str]:
    """Which of ``paths`` git ignores, each asked of the repository that holds it."""
    groups: dict[str, list[str]] = {}
    for rel in paths:
        groups.setdefault(_owner(rel, roots), []).append(rel)
    found: set[str] = set()
    for root, rels in groups.items():
        work = folder / root if root else folder
        if root:
            git_dir = git_dir_of(work)
            if git_dir is None:
                continue
            genv: Mapping[str, str] = {"GIT_DIR": str(git_dir), "GIT_WORK_TREE": str(work)}
        else:
            genv = env
        inner = [r[len(root) + 1 :] if root else r for r in rels]
        out = run_git(
            ["check-ignore", "-z", "--stdin"],
            work,
            env=genv,
            input=b"".join(fs_bytes(p) + b"\0" for p in inner),
            ok_codes=(0, 1),
            timeout=None,
        ).stdout
        found |= {f"{root}/{p}" if root else p for p in split_z(out)}
    return found


def delete_verified(folder: Path, plan: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """Delete from ``folder`` only what is saved or disposable; return what was kept.

    A file goes when its bytes and mode on disk are what the snapshot holds (computed here), or
    when git ignores it; the ``.git`` data of the nested repositories the plan saved goes too.
    Anything else, such as a file written by a process working inside the folder after the last
    check, stays, and is returned. ``env`` points git at the worktree's git data (its ``.git``
    file is kept until the end). The folder itself is removed only when nothing is kept.
    """
    common = Path(plan["common"])
    fmt = str(plan["format"])
    genv = {"GIT_DIR": str(common)}
    nested: Mapping[str, str] = plan["nested"]
    roots = sorted(nested, key=len, reverse=True)
    saved = {p: e for p, e in tree_entries(common, plan["tree"], genv).items() if e[0] != GITLINK}
    for root, tree in nested.items():
        for p, e in tree_entries(common, tree, genv).items():
            if e[0] != GITLINK:
                saved[f"{root}/{p}"] = e
    unknown: list[str] = []
    verified: list[str] = []
    git_data: list[Path] = []
    for here, dirs, files in os.walk(folder):
        base = Path(here)
        rel_here = base.relative_to(folder).as_posix()
        rel_here = "" if rel_here == "." else rel_here
        for name in list(dirs):
            if (base / name).is_symlink():
                dirs.remove(name)
                files.append(name)
        for name in (".git",):
            if name in dirs:
                dirs.remove(name)
            elif name not in files:
                continue
            else:
                files.remove(name)
            if not rel_here:
                continue  # the worktree's own .git file goes last
            if rel_here in nested:
                git_data.append(base / name)
            else:
                unknown.append(f"{rel_here}/.git")
        for name in files:
            rel = f"{rel_here}/{name}" if rel_here else name
            entry = disk_entry(folder, rel, fmt)
            if entry is not None and saved.get(rel) == entry:
                verified.append(rel)
            else:
                unknown.append(rel)
    # Ask git what it ignores while every .gitignore is still there; then delete.
    files_unknown = [r for r in unknown if not r.endswith("/.git")]
    ignored = _ignored(folder, files_unknown, roots, env)
    unknown = [r for r in unknown if r not in ignored]
    for rel in ignored:
        with contextlib.suppress(OSError):
            os.unlink(folder / rel)
    # A verified file is moved into a holding name first and checked there: a writer that
    # rewrites it meanwhile by its path creates a new file, which is kept.
    holding = folder / f".wtls-deleting-{os.getpid()}"
    for rel in verified:
        try:
            os.rename(folder / rel, holding)
        except OSError:
            continue
        if disk_entry(folder, holding.name, fmt) == saved[rel]:
            holding.unlink()
        elif not os.path.lexists(folder / rel):
            os.rename(holding, folder / rel)
            unknown.append(rel)
        else:
            kept_as = folder / f"{rel}.wtls-kept-{os.getpid()}"
            os.rename(holding, kept_as)
            unknown.append(kept_as.relative_to(folder).as_posix())
    for data in git_data:
        if data.is_dir() and not data.is_symlink():
            shutil.rmtree(data, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                data.unlink()
    for here, dirs, _ in os.walk(folder, topdown=False):
        for name in dirs:
            with contextlib.suppress(OSError):
                (Path(here) / name).rmdir()
    kept = sorted(
        Path(here, name).relative_to(folder).as_posix()
        for here, dirs, files in os.walk(folder)
        for name in [*files, *(d for d in dirs if Path(here, d).is_symlink())]
        if Path(here, name) != folder / ".git"
    )
    if not kept:
        with contextlib.suppress(OSError):
            (folder / ".git").unlink()
        with contextlib.suppress(OSError):
            folder.rmdir()
    return kept
