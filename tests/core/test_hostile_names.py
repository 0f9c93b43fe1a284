"""Hostile names through the real CLI: each is refused or handled safely, never executed.

"Safely" means: exit 0, exactly the expected branch and folder (beside the main worktree, no
path traversal), and no command hidden in the name ran (no ``pwned`` file appears anywhere).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.core.lifecycle_util import repo_snapshot, run_wtls
from tests.gitutil import git

PWNED = "pwned"


def branches(repo: Path) -> set[str]:
    return set(git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads").splitlines())


def no_pwned(root: Path) -> None:
    """No file named ``pwned`` exists: the ``touch pwned`` hidden in a name never ran."""
    assert not any(p.name == PWNED for p in root.rglob("*"))
    assert not (Path.cwd() / PWNED).exists()


# name as given after `--`, and why it is refused
REFUSED = [
    ("--force", "cannot start with '-'"),
    ("-b", "cannot start with '-'"),
    ("-", "cannot start with '-'"),
    ("../../x", "not a valid branch name"),
    ("..", "empty folder name"),
    (".", "empty folder name"),
    ("/", "empty folder name"),
    ("feature//x", "not a valid branch name"),
    ("a\nb", "control character"),
    ("a\tb", "control character"),
    ("a\x1b[31mred", "control character"),
    ("x.lock", "not a valid branch name"),
    ("feature/x.lock", "not a valid branch name"),
    ("feature/a@{1}", "not a valid branch name"),
    ("feature/.hidden", "not a valid branch name"),
    ("feature/a b", "not a valid branch name"),
    ("feature/a:b", "not a valid branch name"),
    ("feature/$(touch pwned)", "not a valid branch name"),
    ("日本語", "empty folder name"),
    ("*", "empty folder name"),
    ("x" * 101, "too long"),
    ("refs/heads/main", "already checked out"),
]


@pytest.mark.parametrize(("name", "match"), REFUSED, ids=[repr(n)[:30] for n, _ in REFUSED])
def test_refused_after_double_dash(repo: Path, name: str, match: str) -> None:
    before = repo_snapshot(repo)
    proc = run_wtls(repo, "spawn", "--", name)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert match in proc.stderr
    assert repo_snapshot(repo) == before
    no_pwned(repo.parent)


@pytest.mark.parametrize("name", ["--force", "-b", "--json", "-x", "--base"])
def test_option_looking_names_are_usage_errors(repo: Path, name: str) -> None:
    before = repo_snapshot(repo)
    proc = run_wtls(repo, "spawn", name)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr
    assert repo_snapshot(repo) == before


# name, branch it becomes, folder slug
HANDLED = [
    ("my task", "agent/my-task", "my-task"),
    ("tâche", "agent/tache", "tache"),
    ("feature/tâche", "feature/tâche", "tache"),
    ("a;touch pwned", "agent/a-touch-pwned", "a-touch-pwned"),
    ("$(touch pwned)", "agent/touch-pwned", "touch-pwned"),
    ("`touch pwned`", "agent/touch-pwned", "touch-pwned"),
    ("a && touch pwned", "agent/a-touch-pwned", "a-touch-pwned"),
    ("a@{1}", "agent/a-1", "a-1"),
    ("@{-1}", "agent/1", "1"),
    ("HEAD", "agent/head", "head"),
    ("x" * 100, "agent/" + "x" * 100, "x" * 100),
]


@pytest.mark.parametrize(("name", "branch", "slug"), HANDLED, ids=[n[:20] for n, _, _ in HANDLED])
def test_handled_safely(repo: Path, name: str, branch: str, slug: str) -> None:
    before = branches(repo)
    proc = run_wtls(repo, "spawn", "--json", "--", name)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    path = repo.parent / f"tasks-app-{slug}"
    assert result["branch"] == branch
    assert result["path"] == str(path)
    assert branches(repo) == before | {branch}
    assert git(path, "rev-parse", "--abbrev-ref", "HEAD") == branch
    assert sorted(p.name for p in repo.parent.iterdir()) == sorted(["tasks-app", path.name])
    no_pwned(repo.parent)


def test_hostile_paths_bases_and_worktree_names(repo: Path, tmp_path: Path) -> None:
    before = repo_snapshot(repo)
    cases = [
        (["spawn", "x", "--path", "$(touch pwned)"], "not ignored"),  # inside the main worktree
        (["spawn", "x", "--base=-x"], "does not exist"),
        (["spawn", "x", "--base", "main; touch pwned"], "does not exist"),
        (["spawn", "x", "--base", "main\n"], "not a valid branch, tag or commit"),
        (["remove", "--", "--force"], "no worktree matches"),
        (["remove", "$(touch pwned)"], "no worktree matches"),
        (["merge", "--", "-b"], "no worktree matches"),
        (["lock", "a\nb"], "not a worktree path or branch name"),
    ]
    for args, match in cases:
        proc = run_wtls(repo, *args)
        assert proc.returncode == 1, (args, proc.stderr)
        assert match in proc.stderr, (args, proc.stderr)
        assert repo_snapshot(repo) == before
    no_pwned(tmp_path)
    # An absolute --path with shell syntax in it is just a folder name.
    odd = tmp_path / "$(touch pwned); x"
    proc = run_wtls(repo, "spawn", "odd", "--path", str(odd))
    assert proc.returncode == 0, proc.stderr
    assert odd.is_dir()
    reason = "$(touch pwned) `touch pwned`"
    assert run_wtls(repo, "lock", "agent/odd", "--reason", reason).returncode == 0
    assert f"locked {reason}" in git(repo, "worktree", "list", "--porcelain")
    no_pwned(tmp_path)
