"""Helpers for tests: run real git in real temporary repositories (never a mock)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(cwd: Path | str, *args: str, check: bool = True, input: str | None = None) -> str:
    """Run git in ``cwd`` with the test's hermetic environment; return stdout (stripped)."""
    proc = subprocess.run(
        ["git", *args],
        cwd=str(cwd),
        capture_output=True,
        text=True,
        input=input,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}: {proc.stderr}")
    return proc.stdout.strip()


TASKS_CLI = '''\
"""tasks-app: a tiny task list."""
import json
import sys

USAGE = "usage: cli.py add <text> | list | done <index>"


def main(argv):
    if not argv:
        print(USAGE)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''


def make_repo(root: Path, name: str = "tasks-app", files: dict[str, str] | None = None) -> Path:
    """A repository on ``main`` with one commit holding ``files`` (default: the seed's cli.py)."""
    repo = root / name
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    content = files if files is not None else {"cli.py": TASKS_CLI, ".gitignore": "tasks.json\n"}
    for rel, text in content.items():
        target = repo / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


def add_worktree(repo: Path, path: Path, branch: str, base: str = "HEAD") -> Path:
    """``git worktree add PATH -b BRANCH BASE``."""
    git(repo, "worktree", "add", "-q", "-b", branch, "--", str(path), base)
    return path


def commit_all(worktree: Path, message: str) -> str:
    """Stage everything and commit; return the new commit id."""
    git(worktree, "add", "-A")
    git(worktree, "commit", "-q", "-m", message)
    return git(worktree, "rev-parse", "HEAD")
