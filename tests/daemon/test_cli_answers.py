"""``wtls list``, ``status`` and ``check`` answered by the running engine: byte for byte what the
CLI alone prints, as fresh as reading alone (a change made just before is in the answer), and
only when an engine runs (the CLI never starts one)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.daemon.support import engine_pids, hello_line, raw_exchange, run_wtls
from tests.gitutil import add_worktree, commit_all
from wtls.daemon.ask import parse_question
from wtls.daemon.client import connect
from wtls.daemon.paths import engine_files


def git_logging_path(folder: Path, log: Path) -> str:
    """A PATH whose ``git`` logs each call to ``log`` (counts the git commands the CLI runs)."""
    real = shutil.which("git")
    assert real is not None
    folder.mkdir()
    wrapper = folder / "git"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    return f"{folder}:/usr/bin:/bin"


def start_engine(repo: Path) -> None:
    """An engine for ``repo``, as an editor's first session would start it."""
    sock, _ = connect((repo / ".git").resolve(), "status")
    sock.close()


def two_worktrees(repo: Path, tmp_path: Path) -> Path:
    other = add_worktree(repo, tmp_path / "other", "feature/other")
    (other / "cli.py").write_text("print('other')\n")
    commit_all(other, "other")
    return other


def test_the_engine_answers_exactly_what_the_cli_alone_prints(
    repo: Path, tmp_path: Path, runtime: Path, request: pytest.FixtureRequest
) -> None:
    other = two_worktrees(repo, tmp_path)
    start_engine(repo)
    log = tmp_path / "git.log"
    env = {"PATH": git_logging_path(tmp_path / "bin", log)}
    asked = [
        ["check", "--json"],
        ["check", "--order"],
        ["list", "--json", "--no-size"],
        ["list", "--no-size"],
        ["status", "--json"],
        ["status"],
    ]
    # A process using the main worktree is listed by both (the asking CLI itself is not).
    sleeper = subprocess.Popen(["sleep", "120"], cwd=repo)
    request.addfinalizer(sleeper.kill)
    for round_ in range(3):
        # A change made just before the question is in the answer (the engine syncs first).
        (repo / "cli.py").write_text(f"print('main {round_}')\n")
        (other / f"new-{round_}.txt").write_text("x\n")
        for args in asked:
            log.write_text("")
            engine = run_wtls(*args, cwd=repo, env=env)
            calls = log.read_text().splitlines()
            alone = run_wtls(*args, "--no-daemon", cwd=repo, env=env)
            assert engine.stdout == alone.stdout, (args, engine.stderr)
            assert engine.returncode == alone.returncode, args
            # Answered by the engine: the CLI ran one git command (which repository), not the
            # reading itself.
            assert calls == ["rev-parse --path-format=absolute --git-common-dir"], (args, calls)
    payload = json.loads(run_wtls("check", "--json", cwd=repo).stdout)
    assert payload["conflicts"], payload  # main and feature/other both change cli.py
    status = json.loads(run_wtls("status", "--json", cwd=repo).stdout)
    assert [p["pid"] for p in status["processes"]] == [sleeper.pid], status["processes"]


def test_without_an_engine_the_cli_works_alone_and_starts_none(
    repo: Path, tmp_path: Path, runtime: Path
) -> None:
    two_worktrees(repo, tmp_path)
    (repo / "cli.py").write_text("print('main')\n")
    done = run_wtls("check", "--json", cwd=repo)
    assert done.returncode == 1 and json.loads(done.stdout)["conflicts"]
    assert engine_pids(runtime) == []


def test_command_lines_the_engine_does_not_answer_run_alone(
    repo: Path, tmp_path: Path, runtime: Path
) -> None:
    start_engine(repo)
    log = tmp_path / "git.log"
    env = {"PATH": git_logging_path(tmp_path / "bin", log)}
    for args in (
        ["status", "--no-daemon"],
        ["check", "--test", "true"],
        ["list", "--js"],  # an abbreviation argparse accepts: the CLI decides
    ):
        log.write_text("")
        run_wtls(*args, cwd=repo, env=env)
        assert len(log.read_text().splitlines()) > 1, args


def test_a_path_elsewhere_or_outside_any_repository(
    repo: Path, tmp_path: Path, runtime: Path
) -> None:
    start_engine(repo)
    outside = tmp_path / "plain"
    outside.mkdir()
    done = run_wtls("list", str(outside))
    assert done.returncode == 2 and "is not inside a git repository" in done.stderr, done.stderr
    # A path given from another folder is the path's repository, read from that folder.
    answer = run_wtls("list", "--json", "--no-size", str(repo), cwd=outside)
    alone = run_wtls("list", "--json", "--no-size", "--no-daemon", str(repo), cwd=outside)
    assert answer.stdout == alone.stdout and json.loads(answer.stdout)["worktrees"]


def test_a_bad_query_is_answered_with_an_error_and_the_engine_serves_on(
    repo: Path, runtime: Path
) -> None:
    start_engine(repo)
    common = (repo / ".git").resolve()
    socket_path = engine_files(common).socket
    for extra in ({"argv": "check", "cwd": "/"}, {"argv": ["check"], "cwd": "relative"}, {}):
        line = raw_exchange(socket_path, hello_line("query", common, **extra)).split(b"\n")[0]
        reply = json.loads(line)
        assert reply["ok"] is False and reply["error"], reply
    assert run_wtls("status", cwd=repo).returncode == 0
    assert len(engine_pids(runtime)) == 1


def test_parse_question_takes_only_what_the_engine_answers() -> None:
    assert parse_question(["check", "--json", "sub"]) is not None
    question = parse_question(["list", "--no-size", "--json"])
    assert question is not None and question.no_size and question.json and question.path is None
    for argv in (
        [],
        ["spawn", "x"],
        ["check", "--test", "pytest"],
        ["check", "--base", "main"],
        ["list", "--no-daemon"],
        ["status", "--help"],
        ["list", "a", "b"],
        ["list", "file:///tmp"],
        ["status", "--"],
    ):
        assert parse_question(argv) is None, argv


def test_an_agents_hook_gets_its_conflict_news_from_the_engine(
    repo: Path, tmp_path: Path, runtime: Path
) -> None:
    from tests.core.test_agent_hooks import _edit_event, _two_agents, hook

    _wipe, remaining = _two_agents(repo, tmp_path)
    start_engine(repo)
    log = tmp_path / "git.log"
    env = {"PATH": git_logging_path(tmp_path / "bin", log)}
    out = hook(remaining, _edit_event(remaining, "cli.py"), env=env)
    assert out.returncode == 0, out.stderr
    text = json.loads(out.stdout)["hookSpecificOutput"]["additionalContext"]
    assert "cli.py will CONFLICT" in text and "branch feature/wipe" in text, text
    assert "your line 5 against its line 5 of cli.py" in text
    # The engine predicted (warm): the hook itself ran no merge, no snapshot, no status.
    calls = log.read_text().splitlines()
    assert not any(c.split()[0] in ("merge-tree", "status", "write-tree") for c in calls), calls
    # Without the engine (another runtime folder: none runs there) the hook predicts by
    # itself and says the same.
    elsewhere = tmp_path / "rt"
    elsewhere.mkdir(mode=0o700)
    alone = hook(
        remaining, _edit_event(remaining, "cli.py"), env={"WTLS_RUNTIME_DIR": str(elsewhere)}
    )
    assert json.loads(alone.stdout)["hookSpecificOutput"]["additionalContext"] == text


def test_check_in_a_repository_whose_config_has_a_test_is_the_clis(
    repo: Path, tmp_path: Path, runtime: Path
) -> None:
    (repo / ".wtls.toml").write_text('test = ["python3", "-c", "pass"]\n')
    commit_all(repo, "config")
    start_engine(repo)
    engine = run_wtls("check", "--json", cwd=repo)
    alone = run_wtls("check", "--json", "--no-daemon", cwd=repo)
    assert (engine.stdout, engine.stderr, engine.returncode) == (
        alone.stdout,
        alone.stderr,
        alone.returncode,
    )
    assert "not trusted" in engine.stderr
