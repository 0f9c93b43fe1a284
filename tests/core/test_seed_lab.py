"""The course's worktree lab (module 7), scripted through wtls commands only.

A coordinating session spawns two agent worktrees (feature/wipe, feature/remaining); each agent
edits the same usage line of the tasks-app and commits; both are merged back (the second
conflicts, and the test resolves it the way the lab asks: keep both commands); both worktrees
are removed; ``git worktree list`` shows only the main worktree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.core.lifecycle_util import run_wtls
from tests.gitutil import TASKS_CLI, commit_all, git

USAGE = 'USAGE = "usage: cli.py add <text> | list | done <index>"'


def agent_edit(worktree: Path, command: str, body: str) -> None:
    """What an agent does in its own window: edit cli.py and commit."""
    source = (worktree / "cli.py").read_text()
    source = source.replace(USAGE, USAGE.replace('<index>"', f'<index> | {command}"'))
    source = source.replace(
        "    if not argv:\n",
        f"    if argv and argv[0] == {command!r}:\n        {body}\n        return 0\n"
        "    if not argv:\n",
    )
    (worktree / "cli.py").write_text(source)
    commit_all(worktree, f"Add {command} command")


def ok(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = run_wtls(cwd, *args)
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc


def test_seed_lab(repo: Path) -> None:
    parent = repo.parent
    # Part B: the coordinating session creates one worktree per agent.
    wipe = json.loads(
        ok(
            repo,
            "spawn",
            "feature/wipe",
            "--json",
            "--prompt",
            "Add a `wipe` command that removes all tasks.",
        ).stdout
    )
    remaining = json.loads(
        ok(
            repo,
            "spawn",
            "feature/remaining",
            "--json",
            "--prompt",
            "Add a `remaining` command that prints the number of pending tasks.",
        ).stdout
    )
    wipe_path, remaining_path = Path(wipe["path"]), Path(remaining["path"])
    assert wipe_path == parent / "tasks-app-wipe"
    assert remaining_path == parent / "tasks-app-remaining"
    assert "wipe" in (wipe_path / ".wtls" / "task.md").read_text()
    listing = git(repo, "worktree", "list")
    assert "[feature/wipe]" in listing and "[feature/remaining]" in listing

    # Part C: two agents work at the same time, each in its own folder.
    agent_edit(wipe_path, "wipe", 'print("all tasks removed")')
    agent_edit(remaining_path, "remaining", 'print("0 tasks pending")')
    assert (repo / "cli.py").read_text() == TASKS_CLI  # main untouched by either agent
    state = json.loads(ok(repo, "list", "--json").stdout)
    assert len(state["worktrees"]) == 3

    # Part D: merge both back from the coordinating session.
    first = json.loads(ok(repo, "merge", "feature/wipe", "--json").stdout)
    assert first["merged"] is True and first["conflicts"] == []
    second = run_wtls(repo, "merge", "feature/remaining", "--json")
    assert second.returncode == 2
    result = json.loads(second.stdout)
    assert result["merged"] is False and result["conflicts"] == ["cli.py"]
    conflicted = (repo / "cli.py").read_text()
    assert "<<<<<<<" in conflicted and ">>>>>>> feature/remaining" in conflicted

    # The conflict is resolved as the lab asks: keep BOTH commands, then complete the merge.
    final = TASKS_CLI.replace(USAGE, USAGE.replace('<index>"', '<index> | wipe | remaining"'))
    final = final.replace(
        "    if not argv:\n",
        '    if argv and argv[0] == "wipe":\n        print("all tasks removed")\n'
        "        return 0\n"
        '    if argv and argv[0] == "remaining":\n        print("0 tasks pending")\n'
        "        return 0\n"
        "    if not argv:\n",
    )
    (repo / "cli.py").write_text(final)
    git(repo, "add", "cli.py")
    git(repo, "commit", "-q", "--no-edit")

    # Verify the app has both commands.
    for command, output in (("wipe", "all tasks removed"), ("remaining", "0 tasks pending")):
        run = subprocess.run(
            [sys.executable, "cli.py", command],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert run.returncode == 0 and run.stdout.strip() == output
    usage = subprocess.run(
        [sys.executable, "cli.py"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert "wipe | remaining" in usage.stdout

    # Clean up: remove both worktrees (their branches are merged, so they go too) and prune.
    for name in ("feature/wipe", "feature/remaining"):
        removed = json.loads(ok(repo, "remove", name, "--json").stdout)
        assert removed["removed"] is True and removed["branchDeleted"] is True
        assert removed["backupRef"] is None
    ok(repo, "prune")
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert git(repo, "worktree", "list").split()[0] == str(repo)
    assert not wipe_path.exists() and not remaining_path.exists()
    assert sorted(p.name for p in parent.iterdir()) == ["tasks-app"]
    assert git(repo, "branch", "--format=%(refname:short)") == "main"
    assert git(repo, "status", "--porcelain") == ""
