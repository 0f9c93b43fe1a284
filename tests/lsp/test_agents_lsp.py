"""Agent states through the real server: a window sees another worktree's agent start waiting,
go idle and end, live in ``wtls/worktrees``; two sessions in its own worktree give a Warning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pygls.exceptions import JsonRpcException

from tests.gitutil import add_worktree, git
from tests.lsp.harness import open_session
from wtls.errors import REFUSED_CODE

ROOT = Path(__file__).resolve().parents[2]


def agent_of(state: dict[str, Any], path: Path) -> dict[str, Any] | None:
    found = next(w for w in state["worktrees"] if w["path"] == str(path.resolve()))
    return found["agent"]  # type: ignore[no-any-return]


def claude(cwd: Path, name: str, session: str = "s1", **extra: Any) -> None:
    """Claude Code's hook run in ``cwd`` with one documented event."""
    event = {"session_id": session, "cwd": str(cwd), "hook_event_name": name, **extra}
    out = subprocess.run(
        [sys.executable, "-m", "wtls", "hook", "claude"],
        cwd=cwd,
        input=json.dumps(event),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0 and out.stderr == "", out.stderr


async def test_another_worktrees_agent_state_is_announced_live(repo: Path, tmp_path: Path) -> None:
    other = add_worktree(repo, tmp_path / "tasks-app-wipe", "feature/wipe")
    async with open_session([repo]) as s:
        first = await s.wait_for_state(lambda st: len(st["worktrees"]) == 2, "initial state")
        assert agent_of(first, other) is None and agent_of(first, repo) is None

        n = len(s.states)
        claude(other, "Notification", message="Claude needs your permission to use Bash")
        st = await s.wait_for_state(
            lambda st: (a := agent_of(st, other)) is not None and a["state"] == "waiting",
            "waiting",
            since=n,
        )
        agent = agent_of(st, other)
        assert agent is not None
        assert agent["message"] == "Claude needs your permission to use Bash"
        assert agent["tool"] == "claude" and agent["session"] == "s1"
        assert agent["since"].endswith("Z")
        assert agent_of(st, repo) is None

        n = len(s.states)
        claude(other, "Stop")
        await s.wait_for_state(
            lambda st: (a := agent_of(st, other)) is not None and a["state"] == "idle",
            "idle",
            since=n,
        )
        n = len(s.states)
        claude(other, "SessionEnd", reason="exit")
        await s.wait_for_state(lambda st: agent_of(st, other) is None, "cleared", since=n)


async def test_two_sessions_in_this_worktree_give_a_warning(repo: Path) -> None:
    head = Path(git(repo, "rev-parse", "--absolute-git-dir")) / "HEAD"
    async with open_session([repo]) as s:
        await s.wait_for_state(lambda st: len(st["worktrees"]) == 1, "initial state")
        claude(repo, "UserPromptSubmit", session="one", prompt="a")
        claude(repo, "UserPromptSubmit", session="two", prompt="b")
        diagnostics = await s.wait_for_diagnostics(
            head, lambda ds: any(d.code == "two-agents" for d in ds), "two-agents warning"
        )
        [warning] = [d for d in diagnostics if d.code == "two-agents"]
        assert warning.severity == 2  # Warning
        assert "Two agent sessions (two, one)" in warning.message


async def test_an_agent_that_dies_is_dropped_at_once(repo: Path, tmp_path: Path) -> None:
    """No file changes when an agent is killed: the server waits on its process itself."""
    other = add_worktree(repo, tmp_path / "tasks-app-wipe", "feature/wipe")
    agent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        async with open_session([repo]) as s:
            await s.wait_for_state(lambda st: len(st["worktrees"]) == 2, "initial state")
            n = len(s.states)
            args = ["agent", "set", "working", "--pid", str(agent.pid), "--worktree", str(other)]
            out = subprocess.run(
                [sys.executable, "-m", "wtls", *args],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            assert out.returncode == 0, out.stderr
            await s.wait_for_state(
                lambda st: (a := agent_of(st, other)) is not None and a["pid"] == agent.pid,
                "working with its pid",
                since=n,
            )
            n = len(s.states)
            agent.kill()
            agent.wait(timeout=30)
            await s.wait_for_state(lambda st: agent_of(st, other) is None, "dropped", since=n)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(timeout=30)


async def test_spawn_with_agent_claude_through_the_server(repo: Path) -> None:
    """What VS Code sends when its agent command is Claude Code."""
    async with open_session([repo]) as s:
        await s.wait_for_state(lambda st: len(st["worktrees"]) == 1, "initial state")
        result = await s.command("wtls.spawn", {"name": "hooked", "agent": "claude"})
        path = Path(result["path"])
        assert result["agentHooks"] == str(path / ".claude" / "settings.local.json")
        settings = json.loads((path / ".claude" / "settings.local.json").read_text())
        assert "Notification" in settings["hooks"]
        assert git(path, "status", "--porcelain") == "" and git(repo, "status", "--porcelain") == ""
        with pytest.raises(JsonRpcException) as info:
            await s.command("wtls.spawn", {"name": "other", "agent": "cursor"})
        assert info.value.code == REFUSED_CODE and "unknown agent" in str(info.value)
        assert git(repo, "branch", "--list", "agent/other") == ""
