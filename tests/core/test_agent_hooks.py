"""``wtls agent`` and ``wtls hook`` through the real CLI on real repositories: Claude Code's hook
events replayed from the JSON its hooks reference documents, Codex's notify argument, bad input
(always exit 0, nothing changed, one line on stderr), and the conflict news after an edit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.core.lifecycle_util import run_wtls
from tests.gitutil import add_worktree, commit_all, git
from wtls.agents import AGENT_FILE, read_agent
from wtls.predict import ConflictPredictor
from wtls.worktrees import discover, repository_state

ROOT = Path(__file__).resolve().parents[2]


def _gitdir(worktree: Path) -> Path:
    return Path(git(worktree, "rev-parse", "--absolute-git-dir"))


def _event(name: str, cwd: Path, **extra: Any) -> dict[str, Any]:
    """A hook event as Claude Code's hooks reference documents its common fields."""
    return {
        "session_id": "abc123",
        "transcript_path": "/home/user/.claude/projects/x/abc123.jsonl",
        "cwd": str(cwd),
        "permission_mode": "default",
        "hook_event_name": name,
        **extra,
    }


def hook(
    cwd: Path, data: str | bytes, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """``wtls hook claude`` (or ``args``) with ``data`` on stdin, from ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "wtls", "hook", *(args or ("claude",))],
        cwd=str(cwd),
        input=data.encode() if isinstance(data, str) else data,
        capture_output=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


def _state_file(worktree: Path) -> bytes | None:
    path = _gitdir(worktree) / AGENT_FILE
    return path.read_bytes() if path.exists() else None


# -- wtls agent -----------------------------------------------------------------------------


def test_agent_set_and_clear(repo: Path, tmp_path: Path) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature/x")
    out = run_wtls(
        repo, "agent", "set", "waiting", "--message", "Allow Bash?", "--tool", "aider",
        "--session", "s1", "--worktree", str(wt / "cli.py"), "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    agent = json.loads(out.stdout)
    assert agent["state"] == "waiting" and agent["tool"] == "aider"
    listed = json.loads(run_wtls(repo, "list", "--json", "--no-size").stdout)
    by_path = {w["path"]: w for w in listed["worktrees"]}
    assert by_path[str(wt.resolve())]["agent"] == agent
    assert by_path[str(repo.resolve())]["agent"] is None
    table = run_wtls(repo, "list", "--no-size").stdout
    [row] = [line for line in table.splitlines() if str(wt.resolve()) in line]
    assert "waiting: Allow Bash?" in row
    assert git(wt, "status", "--porcelain", "--ignored") == ""
    out = run_wtls(wt, "agent", "clear")
    assert out.returncode == 0 and "cleared" in out.stdout
    assert _state_file(wt) is None


def test_agent_set_usage_errors(repo: Path, tmp_path: Path) -> None:
    out = run_wtls(repo, "agent", "set", "sleeping")
    assert out.returncode == 2 and "invalid choice" in out.stderr
    out = run_wtls(repo, "agent", "set", "working", "--pid", "many")
    assert out.returncode == 2
    assert _state_file(repo) is None
    outside = tmp_path / "outside"
    outside.mkdir()
    out = run_wtls(outside, "agent", "set", "working")
    assert out.returncode == 2 and "not inside a worktree" in out.stderr
    assert "Traceback" not in out.stderr


def test_status_warns_of_two_sessions(repo: Path) -> None:
    run_wtls(repo, "agent", "set", "working", "--session", "one")
    run_wtls(repo, "agent", "set", "working", "--session", "two")
    out = run_wtls(repo, "status")
    assert "warning: Two agent sessions (two, one)" in out.stdout
    problems = json.loads(run_wtls(repo, "status", "--json").stdout)["problems"]
    assert [p["code"] for p in problems if p["code"] == "two-agents"] == ["two-agents"]


# -- wtls hook claude: every event ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "extra", "state", "message"),
    [
        ("SessionStart", {"source": "startup"}, "working", None),
        ("UserPromptSubmit", {"prompt": "Write a function"}, "working", None),
        (
            "PreToolUse",
            {"tool_name": "Bash", "tool_input": {"command": "npm test"}},
            "working",
            None,
        ),
        (
            "PostToolUse",
            {
                "tool_name": "Bash",
                "tool_input": {"command": "npm test"},
                "tool_response": {"stdout": "ok"},
            },
            "working",
            None,
        ),
        (
            "Notification",
            {
                "message": "Claude needs your permission to use Bash",
                "title": "Claude Code",
                "notification_type": "permission_prompt",
            },
            "waiting",
            "Claude needs your permission to use Bash",
        ),
        ("Stop", {"stop_hook_active": False}, "idle", None),
    ],
)
def test_claude_events(
    repo: Path, tmp_path: Path, name: str, extra: dict[str, Any], state: str, message: str | None
) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature/x")
    (wt / "sub").mkdir()
    out = hook(wt, json.dumps(_event(name, wt / "sub", **extra)))
    assert out.returncode == 0 and out.stderr == b"" and out.stdout == b""
    agent = read_agent(_gitdir(wt))
    assert agent is not None
    assert (agent.state, agent.message, agent.tool, agent.session) == (
        state,
        message,
        "claude",
        "abc123",
    )
    # The agent process is this hook's parent: here, the test itself.
    assert agent.pid == os.getpid()
    assert read_agent(_gitdir(repo)) is None  # another worktree is untouched
    assert git(wt, "status", "--porcelain", "--ignored") == ""


def test_session_end_clears(repo: Path) -> None:
    hook(repo, json.dumps(_event("Stop", repo)))
    assert read_agent(_gitdir(repo)) is not None
    out = hook(repo, json.dumps(_event("SessionEnd", repo, reason="exit")))
    assert out.returncode == 0 and out.stderr == b""
    assert read_agent(_gitdir(repo)) is None


def test_pid_is_the_agent_not_the_shell_and_its_death_drops_the_state(repo: Path) -> None:
    # An "agent" process that runs the hook through `sh -c` (not exec'd: `; true` follows).
    event = json.dumps(_event("UserPromptSubmit", repo, prompt="hi"))
    agent_code = (
        "import subprocess, sys, os;"
        f"subprocess.run(['sh', '-c', '{sys.executable} -m wtls hook claude; true'], "
        "input=sys.argv[1].encode(), check=True);"
        "print(os.getpid())"
    )
    out = subprocess.run(
        [sys.executable, "-c", agent_code, event],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    agent_pid = int(out.stdout.split()[-1])
    raw = json.loads((_gitdir(repo) / AGENT_FILE).read_text())
    assert raw["agent"]["pid"] == agent_pid
    # That agent has exited: its state is no longer shown.
    assert read_agent(_gitdir(repo)) is None
    listed = json.loads(run_wtls(repo, "list", "--json", "--no-size").stdout)
    assert listed["worktrees"][0]["agent"] is None


def test_waiting_notifications_only(repo: Path) -> None:
    hook(repo, json.dumps(_event("Stop", repo)))
    before = _state_file(repo)
    out = hook(
        repo,
        json.dumps(
            _event("Notification", repo, message="Signed in", notification_type="auth_success")
        ),
    )
    assert out.returncode == 0 and out.stderr == b""
    assert _state_file(repo) == before


# -- wtls hook claude: bad input ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"{not json", b"not JSON"),
        (b"\xff\xfe\x00", b"not JSON"),
        (b"", b"not JSON"),
        (b"[1, 2]", b"not a JSON object"),
        (b'{"cwd": "/tmp"}', b"without hook_event_name"),
        (b'{"hook_event_name": "Stop"}', b"without hook_event_name or cwd"),
        (b'{"hook_event_name": 5, "cwd": "/"}', b"without hook_event_name"),
    ],
)
def test_malformed_events_change_nothing(repo: Path, data: bytes, said: bytes) -> None:
    hook(repo, json.dumps(_event("Stop", repo)))
    before = _state_file(repo)
    out = hook(repo, data)
    assert out.returncode == 0 and out.stdout == b""
    assert said in out.stderr and out.stderr.count(b"\n") == 1
    assert b"Traceback" not in out.stderr
    assert _state_file(repo) == before


def test_unknown_event_changes_nothing(repo: Path) -> None:
    hook(repo, json.dumps(_event("Stop", repo)))
    before = _state_file(repo)
    out = hook(repo, json.dumps(_event("TeaTime\x1b[31m", repo)))
    assert out.returncode == 0 and out.stdout == b""
    assert b"unknown hook event" in out.stderr and b"\x1b" not in out.stderr
    assert _state_file(repo) == before
    out = hook(repo, json.dumps(_event("SubagentStop", repo)))  # known, means nothing here
    assert out.returncode == 0 and out.stderr == b""
    assert _state_file(repo) == before


def test_cwd_outside_any_repository(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    for cwd in (outside, tmp_path / "does-not-exist"):
        out = hook(repo, json.dumps(_event("Stop", cwd)))
        assert out.returncode == 0 and out.stdout == b""
        assert b"agent state not recorded" in out.stderr and out.stderr.count(b"\n") == 1
    assert _state_file(repo) is None
    assert not (outside / ".git").exists()


def test_worktree_being_removed(repo: Path, tmp_path: Path) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature/x")
    admin = _gitdir(wt)
    # `git worktree remove` deletes the admin dir while the folder may still be there.
    for child in admin.iterdir():
        if child.is_file():
            child.unlink()
    subprocess.run(["rm", "-rf", str(admin)], check=True)
    out = hook(wt, json.dumps(_event("PreToolUse", wt, tool_name="Bash", tool_input={})))
    assert out.returncode == 0 and out.stdout == b""
    assert b"agent state not recorded" in out.stderr
    assert not admin.exists()  # never created again


def test_git_missing_still_exits_zero(repo: Path, tmp_path: Path) -> None:
    out = hook(repo, json.dumps(_event("Stop", repo)), env={"PATH": str(tmp_path)})
    assert out.returncode == 0 and out.stdout == b""
    assert out.stderr.count(b"\n") == 1 and b"Traceback" not in out.stderr


# -- wtls hook codex ------------------------------------------------------------------------


def test_codex_turn_complete(repo: Path, tmp_path: Path) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature/x")
    payload = {
        "type": "agent-turn-complete",
        "thread-id": "t-1",
        "turn-id": "12345",
        "cwd": str(wt),
        "input-messages": ["Rename `foo` to `bar` and update the callsites."],
        "last-assistant-message": "Rename complete and verified `cargo build` succeeds.\nMore.",
    }
    out = hook(repo, b"", "codex", json.dumps(payload))
    assert out.returncode == 0 and out.stderr == b""
    agent = read_agent(_gitdir(wt))
    assert agent is not None
    assert (agent.state, agent.tool, agent.session, agent.message) == (
        "idle",
        "codex",
        "t-1",
        "Rename complete and verified `cargo build` succeeds.",
    )
    # Without "cwd" in the payload, the folder Codex ran it in.
    del payload["cwd"]
    out = hook(repo, b"", "codex", json.dumps(payload))
    assert out.returncode == 0 and read_agent(_gitdir(repo)) is not None


@pytest.mark.parametrize("argument", [None, "{bad", "[]", '{"type": "approval-requested"}'])
def test_codex_bad_input(repo: Path, argument: str | None) -> None:
    out = hook(repo, b"", "codex", *([argument] if argument is not None else []))
    assert out.returncode == 0 and out.stdout == b"" and out.stderr.count(b"\n") == 1
    assert _state_file(repo) is None


# -- conflict news after an edit ------------------------------------------------------------


def _two_agents(repo: Path, tmp_path: Path) -> tuple[Path, Path]:
    wipe = add_worktree(repo, tmp_path / "tasks-app-wipe", "feature/wipe")
    remaining = add_worktree(repo, tmp_path / "tasks-app-remaining", "feature/remaining")
    cli = (wipe / "cli.py").read_text()
    (wipe / "cli.py").write_text(cli.replace("done <index>", "done <index> | wipe"))
    commit_all(wipe, "wipe")
    (remaining / "cli.py").write_text(cli.replace("done <index>", "done <index> | remaining"))
    return wipe, remaining


def _edit_event(worktree: Path, rel: str) -> str:
    return json.dumps(
        _event(
            "PostToolUse",
            worktree,
            tool_name="Edit",
            tool_input={"file_path": str(worktree / rel), "old_string": "a", "new_string": "b"},
            tool_response={"filePath": str(worktree / rel), "success": True},
        )
    )


def test_conflicting_edit_tells_the_agent(repo: Path, tmp_path: Path) -> None:
    wipe, remaining = _two_agents(repo, tmp_path)
    out = hook(remaining, _edit_event(remaining, "cli.py"))
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    specific = answer["hookSpecificOutput"]
    assert specific["hookEventName"] == "PostToolUse"
    text = specific["additionalContext"]
    assert "cli.py will CONFLICT" in text
    assert "branch feature/wipe" in text and str(wipe.resolve()) in text
    assert "your line 5 against its line 5 of cli.py" in text
    assert "committed on feature/wipe" in text
    assert "keep off those lines" in text
    # Seen from the other side: that side (remaining) is uncommitted.
    out = hook(wipe, _edit_event(wipe, "cli.py").replace("PostToolUse", "PostToolUse"))
    text = json.loads(out.stdout)["hookSpecificOutput"]["additionalContext"]
    assert "branch feature/remaining" in text and "uncommitted work in that worktree" in text
    # And the state is recorded as for any PostToolUse.
    agent = read_agent(_gitdir(remaining))
    assert agent is not None and agent.state == "working"


def test_predictor_restricted_to_one_worktree_agrees_with_the_full_prediction(
    repo: Path, tmp_path: Path
) -> None:
    _wipe, remaining = _two_agents(repo, tmp_path)
    third = add_worktree(repo, tmp_path / "third", "feature/third")
    (third / "cli.py").write_text((third / "cli.py").read_text().replace("usage", "USAGE"))
    commit_all(third, "third")
    state = repository_state(discover(repo))
    full = ConflictPredictor(discover(repo)).update(state)
    only = ConflictPredictor(discover(repo)).update(state, involving=remaining.resolve())
    assert only.merge_order is None
    expected = [p for p in full.pairs if p.involves(remaining.resolve())]
    assert only.pairs == tuple(expected) and expected
    assert any(not p.involves(remaining.resolve()) for p in full.pairs)  # wipe <-> third


def test_harmless_edit_prints_nothing(repo: Path, tmp_path: Path) -> None:
    _wipe, remaining = _two_agents(repo, tmp_path)
    (remaining / "notes.md").write_text("only here\n")
    out = hook(remaining, _edit_event(remaining, "notes.md"))
    assert out.returncode == 0 and out.stdout == b"" and out.stderr == b""
    # A tool that edits nothing asks for no prediction either.
    event = json.loads(_edit_event(remaining, "cli.py"))
    event["tool_name"] = "Read"
    out = hook(remaining, json.dumps(event))
    assert out.returncode == 0 and out.stdout == b""


def test_news_that_takes_too_long_is_not_said(repo: Path, tmp_path: Path) -> None:
    _wipe, remaining = _two_agents(repo, tmp_path)
    out = hook(remaining, _edit_event(remaining, "cli.py"), env={"WTLS_HOOK_TIMEOUT": "0.000001"})
    assert out.returncode == 0 and out.stdout == b"" and out.stderr == b""
    agent = read_agent(_gitdir(remaining))
    assert agent is not None and agent.state == "working"
