"""`.wtls.toml` teardown: runs before a removal only when trusted; a failure stops it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.lifecycle_util import repo_snapshot, run_wtls
from tests.gitutil import commit_all, git
from wtls.errors import Refused
from wtls.lifecycle.setup import compose_project_name
from wtls.project_config import load_project_config

#: Appends its environment (the variables wtls sets) to the JSON-lines file argv[1] names.
LOG_ENV = (
    "import json, os, sys\n"
    "keys = ('WTLS_WORKTREE', 'WTLS_BRANCH', 'PORT', 'COMPOSE_PROJECT_NAME')\n"
    "entry = {k: os.environ.get(k) for k in keys}\n"
    "entry['step'] = sys.argv[2]\n"
    "entry['cwd'] = os.getcwd()\n"
    "open(sys.argv[1], 'a').write(json.dumps(entry) + '\\n')\n"
)


def toml_argv(*argv: str) -> str:
    return "[" + ", ".join(json.dumps(a) for a in argv) + "]"


def recipe(repo: Path, log: Path, teardown: list[str] | None = None) -> None:
    """Commit a .wtls.toml whose setup and teardown log their environment to ``log``."""
    teardown_lines = teardown or [toml_argv(sys.executable, "-c", LOG_ENV, str(log), "teardown")]
    (repo / ".wtls.toml").write_text(
        'ports = ["PORT"]\n'
        f"setup = [{toml_argv(sys.executable, '-c', LOG_ENV, str(log), 'setup')}]\n"
        f"teardown = [{', '.join(teardown_lines)}]\n"
    )
    commit_all(repo, "recipe")


def spawned(repo: Path, name: str = "feature/t") -> Path:
    proc = run_wtls(repo, "spawn", name, "--trust", "--json")
    assert proc.returncode == 0, proc.stderr
    return Path(json.loads(proc.stdout)["path"])


def log_entries(log: Path) -> list[dict[str, str]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_trusted_teardown_runs_with_the_same_environment_as_setup(
    repo: Path, tmp_path: Path
) -> None:
    log = tmp_path / "env.log"
    recipe(repo, log)
    wt = spawned(repo)
    proc = run_wtls(repo, "remove", "feature/t", "--trust", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["removed"] is True
    assert result["teardown"]["ran"] is True and result["teardown"]["ok"] is True
    assert "ran its teardown" in result["message"]
    setup, teardown = log_entries(log)
    assert setup["step"] == "setup" and teardown["step"] == "teardown"
    for entry in (setup, teardown):
        assert entry["WTLS_WORKTREE"] == str(wt)
        assert entry["cwd"] == str(wt)
        assert entry["WTLS_BRANCH"] == "feature/t"
        assert entry["PORT"] is not None and entry["PORT"].isdigit()
        assert entry["COMPOSE_PROJECT_NAME"] == compose_project_name(wt)
    assert setup["PORT"] == teardown["PORT"]
    assert not wt.exists()


def test_untrusted_teardown_is_skipped_and_the_removal_goes_ahead(
    repo: Path, tmp_path: Path
) -> None:
    log = tmp_path / "env.log"
    recipe(repo, log)
    wt = spawned(repo)
    dry = run_wtls(repo, "remove", "feature/t", "--dry-run")
    assert "its teardown would not run" in dry.stdout
    proc = run_wtls(repo, "remove", "feature/t")
    assert proc.returncode == 0, proc.stderr
    assert "the workspace is not trusted: its teardown was not run" in proc.stdout
    assert "pass --trust to run it" in proc.stdout
    assert [e["step"] for e in log_entries(log)] == ["setup"]
    assert not wt.exists()


def test_a_failing_teardown_stops_the_removal_unless_forced(repo: Path, tmp_path: Path) -> None:
    log = tmp_path / "env.log"
    recipe(repo, log, [toml_argv(sys.executable, "-c", "import sys; sys.exit(3)")])
    wt = spawned(repo)
    before = repo_snapshot(repo)
    proc = run_wtls(repo, "remove", "feature/t", "--trust")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "teardown command" in proc.stderr and "exit status 3" in proc.stderr
    assert "Nothing was removed" in proc.stderr
    assert repo_snapshot(repo) == before
    forced = run_wtls(repo, "remove", "feature/t", "--trust", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "its teardown failed" in forced.stdout and "removed anyway (--force)" in forced.stdout
    assert not wt.exists()


def test_merge_remove_runs_the_teardown_when_trusted(repo: Path, tmp_path: Path) -> None:
    log = tmp_path / "env.log"
    recipe(repo, log)
    wt = spawned(repo)
    (wt / "new.txt").write_text("n\n")
    commit_all(wt, "new")
    proc = run_wtls(repo, "merge", "feature/t", "--remove", "--trust")
    assert proc.returncode == 0, proc.stderr
    assert "ran its teardown" in proc.stdout
    assert [e["step"] for e in log_entries(log)] == ["setup", "teardown"]
    assert not wt.exists()


def test_files_a_teardown_leaves_in_the_worktree_are_not_lost(repo: Path, tmp_path: Path) -> None:
    """A teardown that writes a dump into the worktree: the removal then refuses, keeping it."""
    dump = "open('db-dump.sql', 'w').write('data\\n')"
    recipe(repo, tmp_path / "env.log", [toml_argv(sys.executable, "-c", dump)])
    wt = spawned(repo)
    proc = run_wtls(repo, "remove", "feature/t", "--trust")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "its teardown ran, then:" in proc.stderr and "db-dump.sql" in proc.stderr
    assert (wt / "db-dump.sql").read_text() == "data\n"


def test_forced_removal_saves_the_work_before_a_teardown_can_delete_it(
    repo: Path, tmp_path: Path
) -> None:
    wipe = "import os; os.remove('notes.txt')"
    recipe(repo, tmp_path / "env.log", [toml_argv(sys.executable, "-c", wipe)])
    wt = spawned(repo)
    (wt / "notes.txt").write_text("precious\n")
    proc = run_wtls(repo, "remove", "feature/t", "--trust", "--force", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["removed"] is True
    saved_in = r"before the teardown is saved in (refs/wtls/backup/[^\s;]+)"
    found = re.search(saved_in, result["message"])
    assert found is not None, result["message"]
    restored = run_wtls(repo, "restore", found.group(1), "--path", str(tmp_path / "back"))
    assert restored.returncode == 0, restored.stderr
    assert (tmp_path / "back" / "notes.txt").read_text() == "precious\n"


def test_compose_project_name_is_valid_stable_and_per_worktree(tmp_path: Path) -> None:
    a = tmp_path / "one" / "Tasks App.wip"
    b = tmp_path / "two" / "Tasks App.wip"
    for path in (a, b, tmp_path / "日本語"):
        assert re.fullmatch(r"[a-z0-9][a-z0-9_-]*", compose_project_name(path))
    assert compose_project_name(a) == compose_project_name(a)
    assert compose_project_name(a) != compose_project_name(b)


@pytest.mark.parametrize(
    "value", ['"rm -rf /"', "[1]", '[""]', "[[]]", '["unterminated \\" quote"]']
)
def test_a_bad_teardown_is_refused_by_name(value: str, tmp_path: Path) -> None:
    (tmp_path / ".wtls.toml").write_text(f"teardown = {value}\n")
    with pytest.raises(Refused, match="teardown"):
        load_project_config(tmp_path)


def test_a_bad_wtls_toml_in_the_worktree_refuses_a_plain_removal(
    repo: Path, tmp_path: Path
) -> None:
    wt = spawned(repo)
    (wt / ".wtls.toml").write_text("teardown = 5\n")
    commit_all(wt, "broken recipe")
    proc = run_wtls(repo, "remove", str(wt), "--trust")
    assert proc.returncode == 1
    assert "`teardown` must be a list" in proc.stderr and "--force" in proc.stderr
    assert wt.exists()
    assert git(repo, "worktree", "list").count("\n") == 1


#: Ends the process whose pid is in argv[1] and waits until it is gone (or a zombie).
STOP_PID = (
    "import os, sys, time\n"
    "pid = int(open(sys.argv[1]).read())\n"
    "os.kill(pid, 15)\n"
    "for _ in range(600):\n"
    "    try:\n"
    "        state = open(f'/proc/{pid}/stat').read().rpartition(')')[2].split()[0]\n"
    "    except OSError:\n"
    "        break\n"
    "    if state in ('Z', 'X'):\n"
    "        break\n"
    "    time.sleep(0.05)\n"
)


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="reads /proc (Linux)")
def test_a_teardown_that_stops_the_dev_server_lets_the_removal_go_ahead(
    repo: Path, tmp_path: Path
) -> None:
    pidfile = tmp_path / "server.pid"
    recipe(repo, tmp_path / "env.log", [toml_argv(sys.executable, "-c", STOP_PID, str(pidfile))])
    wt = spawned(repo)
    server = subprocess.Popen(["sleep", "300"], cwd=wt)
    try:
        pidfile.write_text(str(server.pid))
        untrusted = run_wtls(repo, "remove", "feature/t")
        assert untrusted.returncode == 1  # no teardown ran: the server still uses it
        assert f"pid {server.pid} (sleep 300)" in untrusted.stderr
        proc = run_wtls(repo, "remove", "feature/t", "--trust")
        assert proc.returncode == 0, proc.stderr
        assert server.wait(timeout=10) == -15
        assert not wt.exists()
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(timeout=30)


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="reads /proc (Linux)")
def test_a_refusal_after_the_teardown_says_it_ran(repo: Path, tmp_path: Path) -> None:
    recipe(repo, tmp_path / "env.log")
    wt = spawned(repo)
    sleeper = subprocess.Popen(["sleep", "300"], cwd=wt)
    try:
        proc = run_wtls(repo, "remove", "feature/t", "--trust")
        assert proc.returncode == 1
        assert "its teardown ran, then: 1 process still uses" in proc.stderr
        assert wt.is_dir()
    finally:
        sleeper.kill()
        sleeper.wait(timeout=30)
