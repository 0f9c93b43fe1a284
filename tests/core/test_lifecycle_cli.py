"""Every lifecycle command end to end through the real ``wtls`` CLI, on real repositories."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.lifecycle_util import repo_snapshot, run_printed, run_wtls
from tests.gitutil import add_worktree, commit_all, git


def worktree_paths(repo: Path) -> list[str]:
    return [
        line.removeprefix("worktree ")
        for line in git(repo, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]


def assert_refused(repo: Path, cwd: Path, *args: str, match: str) -> str:
    """The CLI exits 1 with ``match`` in its stderr and nothing changed."""
    before = repo_snapshot(repo)
    proc = run_wtls(cwd, *args)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("wtls: refused: ")
    assert match in proc.stderr, proc.stderr
    assert repo_snapshot(repo) == before
    return proc.stderr


def test_spawn_json_and_human(repo: Path, tmp_path: Path) -> None:
    (repo / "src").mkdir()
    (repo / "src" / "m.py").write_text("x = 1\n")
    commit_all(repo, "src")
    prompt = tmp_path / "prompt.md"
    prompt.write_text("Add a `wipe` command.\n")
    # Run from a subfolder: any folder of the repository works.
    proc = run_wtls(repo / "src", "spawn", "wipe", "--prompt-file", str(prompt), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    path = repo.parent / "tasks-app-wipe"
    assert result["path"] == str(path)
    assert result["branch"] == "agent/wipe"
    assert result["uri"] == path.as_uri()
    assert result["promptFile"] == str(path / ".wtls" / "task.md")
    assert (path / ".wtls" / "task.md").read_text() == "Add a `wipe` command.\n"
    assert result["setup"]["ran"] is False
    assert "wtls: creating" in proc.stderr  # progress goes to stderr, JSON stays clean
    human = run_wtls(repo, "spawn", "feature/remaining", "--prompt", "count pending tasks")
    assert human.returncode == 0, human.stderr
    assert human.stdout.startswith(
        f"created {repo.parent / 'tasks-app-remaining'} on branch feature/remaining (from main)"
    )
    assert "task prompt:" in human.stdout
    assert sorted(worktree_paths(repo)) == sorted(
        [str(repo), str(path), str(repo.parent / "tasks-app-remaining")]
    )


def test_spawn_setup_trust(repo: Path) -> None:
    (repo / ".wtls.toml").write_text(
        'ports = ["PORT"]\nsetup = ["sh -c \\"echo setting up on $PORT; touch ready\\""]\n'
    )
    (repo / ".gitignore").write_text("tasks.json\nready\n")
    commit_all(repo, "recipe")
    untrusted = run_wtls(repo, "spawn", "untrusted", "--json")  # stdin is not a terminal
    assert untrusted.returncode == 0
    assert "not trusted" in untrusted.stderr and "--trust" in untrusted.stderr
    assert not (repo.parent / "tasks-app-untrusted" / "ready").exists()
    trusted = run_wtls(repo, "spawn", "trusted", "--trust", "--json")
    assert trusted.returncode == 0, trusted.stderr
    result = json.loads(trusted.stdout)
    assert (repo.parent / "tasks-app-trusted" / "ready").exists()
    assert f"setting up on {result['ports']['PORT']}" in trusted.stderr  # streamed output
    assert result["setup"]["ok"] is True
    listing = json.loads(run_wtls(repo, "list", "--json").stdout)
    assert listing["worktrees"][0]["path"] == str(repo)


def test_spawn_setup_failure_exit_2_keeps_worktree(repo: Path) -> None:
    (repo / ".wtls.toml").write_text('setup = ["false"]\n')
    commit_all(repo, "recipe")
    proc = run_wtls(repo, "spawn", "x", "--trust")
    assert proc.returncode == 2
    assert "setup command `false` failed (exit status 1)" in proc.stderr
    assert (repo.parent / "tasks-app-x").is_dir()


def test_spawn_open_runs_the_open_command(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "opened"
    monkeypatch.setenv("WTLS_OPEN_COMMAND", f"sh -c 'echo \"$0\" > {marker}' {{path}}")
    proc = run_wtls(repo, "spawn", "o", "--open")
    assert proc.returncode == 0, proc.stderr
    assert marker.read_text() == f"{repo.parent / 'tasks-app-o'}\n"
    monkeypatch.delenv("WTLS_OPEN_COMMAND")
    hint = run_wtls(repo, "spawn", "p", "--open")
    assert hint.returncode == 0 and "WTLS_OPEN_COMMAND" in hint.stderr


def test_spawn_refusals_and_usage_errors(repo: Path) -> None:
    add_worktree(repo, repo.parent / "taken", "feature/taken")
    assert_refused(repo, repo, "spawn", "feature/taken", match="already checked out in worktree")
    assert_refused(repo, repo, "spawn", "x", "--base", "nope", match="base 'nope' does not exist")
    assert_refused(repo, repo, "spawn", "--", "-b", match="cannot start with '-'")
    before = repo_snapshot(repo)
    for args in (
        ["spawn"],
        ["spawn", "-b"],
        ["spawn", "--force"],
        ["spawn", "x", "--bogus"],
        ["spawn", "x", "--prompt", "a", "--prompt-file", "f"],
    ):
        proc = run_wtls(repo, *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "usage:" in proc.stderr
    assert repo_snapshot(repo) == before
    missing = run_wtls(repo, "spawn", "x", "--prompt-file", str(repo / "nope.md"))
    assert missing.returncode == 2 and "cannot read the prompt file" in missing.stderr
    assert repo_snapshot(repo) == before


def test_not_a_repository_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    proc = run_wtls(tmp_path / "plain", "spawn", "x")
    assert proc.returncode == 2 and "not inside a git repository" in proc.stderr


def test_open(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature/a")
    listing = run_wtls(repo, "open")
    assert listing.returncode == 0
    assert listing.stdout.splitlines() == [f"{repo}\tmain (main)", f"{wt}\tfeature/a"]
    assert json.loads(run_wtls(repo, "open", "--json").stdout)["worktrees"][1]["path"] == str(wt)
    assert run_wtls(repo, "open", "feature/a").stdout == f"{wt}\n"
    chosen = json.loads(run_wtls(repo, "open", "feature/a", "--json").stdout)
    assert chosen == {"path": str(wt), "uri": wt.as_uri(), "branch": "feature/a", "opened": False}
    marker = tmp_path / "opened"
    monkeypatch.setenv("WTLS_OPEN_COMMAND", f"sh -c 'echo \"$0\" > {marker}'")
    proc = run_wtls(repo, "open", "feature/a")
    assert proc.returncode == 0 and proc.stdout == ""
    assert marker.read_text() == f"{wt}\n"
    monkeypatch.setenv("WTLS_OPEN_COMMAND", "false")
    assert run_wtls(repo, "open", "feature/a").returncode == 2
    assert_refused(repo, repo, "open", "nope", match="no worktree matches 'nope'")


def test_merge_clean_conflict_abort(repo: Path, tmp_path: Path) -> None:
    a = add_worktree(repo, tmp_path / "a", "feature/a")
    (a / "a.txt").write_text("a\n")
    commit_all(a, "a")
    proc = run_wtls(a, "merge", ".", "--json")  # run from the agent's own worktree
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["merged"] is True and result["conflicts"] == []
    assert result["removed"] is False and result["branchDeleted"] is False
    assert (repo / "a.txt").exists()
    b = add_worktree(repo, tmp_path / "b", "feature/b", base="HEAD~1")
    (b / "a.txt").write_text("b's a\n")
    commit_all(b, "b")
    conflict = run_wtls(repo, "merge", "feature/b")
    assert conflict.returncode == 2
    assert "stopped with conflicts in a.txt" in conflict.stderr
    assert f"conflict: {repo / 'a.txt'}" in conflict.stderr
    assert "<<<<<<<" in (repo / "a.txt").read_text()
    assert_refused(repo, repo, "merge", "feature/b", match="merge is in progress")
    aborted = run_wtls(repo, "merge", "feature/b", "--abort")
    assert aborted.returncode == 0, aborted.stderr
    assert "aborted" in aborted.stdout
    assert (repo / "a.txt").read_text() == "a\n"


def test_merge_remove(repo: Path, tmp_path: Path) -> None:
    a = add_worktree(repo, tmp_path / "a", "feature/a")
    (a / "a.txt").write_text("a\n")
    commit_all(a, "a")
    (repo / "cli.py").write_text("dirty\n")
    assert_refused(
        repo, repo, "merge", "feature/a", "--remove", match="uncommitted changes: cli.py"
    )
    git(repo, "checkout", "--", "cli.py")
    proc = run_wtls(repo, "merge", "feature/a", "--remove", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["merged"] and result["removed"] and result["branchDeleted"]
    assert worktree_paths(repo) == [str(repo)]


def test_remove_dirty_force_and_restore(repo: Path, tmp_path: Path) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature/a")
    (wt / "cli.py").write_text("unstaged\n")
    (wt / "new file.txt").write_text("untracked\n")
    err = assert_refused(repo, repo, "remove", "feature/a", match="uncommitted changes")
    assert "cli.py" in err and "new file.txt" in err
    dry = run_wtls(repo, "remove", "feature/a", "--force", "--dry-run", "--json")
    assert dry.returncode == 0
    assert sorted(json.loads(dry.stdout)["wouldBackUp"]) == ["cli.py", "new file.txt"]
    assert wt.exists()
    proc = run_wtls(repo, "remove", "feature/a", "--force")
    assert proc.returncode == 0, proc.stderr
    assert not wt.exists()
    assert "refs/wtls/backup/feature/a-" in proc.stdout
    restore = proc.stdout.split("restore with:\n", 1)[1].strip()
    run_printed(restore)
    assert (wt / "cli.py").read_text() == "unstaged\n"
    assert (wt / "new file.txt").read_text() == "untracked\n"


def test_remove_json_and_refusals(repo: Path, tmp_path: Path) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature/a")
    assert_refused(repo, repo, "remove", str(repo), match="is the main worktree")
    assert run_wtls(repo, "lock", "feature/a", "--reason", "busy agent").returncode == 0
    assert_refused(repo, repo, "remove", "feature/a", match="locked (busy agent)")
    proc = run_wtls(repo, "remove", "feature/a", "--force", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["removed"] is True and result["backupRef"] is None
    assert result["restoreCommand"] is None and result["wouldBackUp"] == []
    assert not wt.exists()


def test_prune(repo: Path, tmp_path: Path) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature/a")
    shutil.rmtree(wt)
    before = repo_snapshot(repo)
    dry = run_wtls(repo, "prune", "--dry-run")
    assert dry.returncode == 0 and f"would prune {wt}" in dry.stdout
    assert repo_snapshot(repo) == before
    proc = run_wtls(repo, "prune", "--json")
    assert proc.returncode == 0
    assert [p["path"] for p in json.loads(proc.stdout)["pruned"]] == [str(wt)]
    assert worktree_paths(repo) == [str(repo)]
    assert "no stale worktree records" in run_wtls(repo, "prune").stdout


def test_lock_unlock(repo: Path, tmp_path: Path) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature/a")
    proc = run_wtls(repo, "lock", str(wt), "--reason", "agent running", "--json")
    assert proc.returncode == 0
    assert json.loads(proc.stdout) == {"path": str(wt), "locked": True, "reason": "agent running"}
    assert_refused(repo, repo, "lock", "feature/a", match="already locked (agent running)")
    unlocked = run_wtls(repo, "unlock", "feature/a")
    assert unlocked.returncode == 0 and unlocked.stdout == f"unlocked {wt}\n"
    assert_refused(repo, repo, "unlock", "feature/a", match="is not locked")


def test_busy_repository_exit_2(repo: Path, tmp_path: Path) -> None:
    a = add_worktree(repo, tmp_path / "a", "feature/a")
    (a / "a.txt").write_text("a\n")
    commit_all(a, "a")
    (repo / ".git" / "index.lock").write_text("")
    before = repo_snapshot(repo)
    proc = run_wtls(repo, "merge", "feature/a")
    assert proc.returncode == 2
    assert "busy" in proc.stderr and "retry" in proc.stderr
    assert repo_snapshot(repo) == before


def test_remove_run_from_inside_the_worktree(repo: Path, tmp_path: Path) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature/a")
    (wt / "sub").mkdir()
    (wt / "sub" / "f.txt").write_text("f\n")
    commit_all(wt, "f")
    proc = run_wtls(wt / "sub", "remove", ".")
    assert proc.returncode == 0, proc.stderr
    assert not wt.exists()
    assert "kept branch feature/a (not merged into main)" in proc.stdout
    assert worktree_paths(repo) == [str(repo)]


def test_two_cli_spawns_of_the_same_name_at_once(repo: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "wtls", "spawn", "race"],
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=120), p.communicate(timeout=10)) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    loser = next(err for code, (_, err) in results if code == 1)
    assert "wtls: refused: branch agent/race is already checked out in worktree" in loser
    assert sorted(worktree_paths(repo)) == sorted([str(repo), str(repo.parent / "tasks-app-race")])
    assert git(repo.parent / "tasks-app-race", "status", "--porcelain") == ""


def test_output_into_a_closed_pipe_is_no_traceback(repo: Path) -> None:
    # `wtls list --json | head -1`: the reader leaves early; wtls stops quietly (exit 2).
    read_end, write_end = os.pipe()
    os.close(read_end)
    proc = subprocess.run(
        [sys.executable, "-m", "wtls", "list", "--json", "--no-size"],
        cwd=repo,
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    os.close(write_end)
    assert proc.stderr == "" and proc.returncode == 2


def test_list_table(repo: Path, tmp_path: Path) -> None:
    out = run_wtls(repo, "list", "--no-size")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "1 worktree; base branch: main"
    wipe = add_worktree(repo, tmp_path / "wipe", "feature/wipe")
    (wipe / "new.txt").write_text("x\n")
    out = run_wtls(wipe, "list")
    assert out.returncode == 0, out.stderr
    header, *rows, footer = out.stdout.splitlines()
    assert header.split() == [
        "BRANCH",
        "HEAD",
        "VS",
        "BASE",
        "CHANGES",
        "AGENT",
        "SIZE",
        "PATH",
        "NOTES",
    ]
    [mine] = [r for r in rows if r.startswith("*")]
    assert "feature/wipe" in mine and str(wipe) in mine and "untracked" in mine
    assert footer.startswith("2 worktrees; base branch: main; total size ")
