"""Helpers for the lifecycle tests: snapshots that prove "nothing changed" and file trees."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.gitutil import git


def disk_state(root: Path) -> dict[str, tuple[str, bytes | str]]:
    """Every file, folder and symlink under ``root`` (``.git`` internals excluded) with content."""
    out: dict[str, tuple[str, bytes | str]] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git"]
        for d in dirs:
            p = Path(folder, d)
            rel = str(p.relative_to(root))
            out[rel] = ("link", os.readlink(p)) if p.is_symlink() else ("dir", b"")
        for f in files:
            p = Path(folder, f)
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif f == ".git":
                out[rel] = ("gitfile", p.read_bytes())
            else:
                mode = "x" if os.access(p, os.X_OK) else "f"
                out[rel] = (mode, p.read_bytes())
    return out


def repo_snapshot(repo: Path) -> dict[str, object]:
    """Refs, worktree records, every worktree's status and all files beside the repository."""
    worktrees = git(repo, "worktree", "list", "--porcelain")
    statuses = {}
    for line in worktrees.splitlines():
        if line.startswith("worktree "):
            path = Path(line.removeprefix("worktree "))
            if path.is_dir():
                statuses[str(path)] = git(path, "status", "--porcelain=v2", "--branch")
    return {
        "refs": git(repo, "for-each-ref", "--format=%(refname) %(objectname)"),
        "worktrees": worktrees,
        "statuses": statuses,
        "files": disk_state(repo.parent),
    }


def run_wtls(cwd: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real ``wtls`` CLI (``python -m wtls``) in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "wtls", *args],
        cwd=str(cwd),
        capture_output=True,
        text=True,
        input=input,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )


def run_printed(command: str | None) -> None:
    """Run a command wtls printed for the user, through a shell exactly as they would paste it."""
    assert command is not None
    proc = subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, f"{command!r} failed: {proc.stderr}"
