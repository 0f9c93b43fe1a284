"""Agent state per worktree (wtls.agents) on real repositories: stored in the private git dir,
written atomically, garbage-tolerant, dropped when its process is gone, seen by the watcher and
re-read by the engine without git."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gitutil import add_worktree, git
from wtls import agents
from wtls.agents import AGENT_FILE, AgentError, clear_agent, locate, read_agent, set_agent
from wtls.engine import Engine
from wtls.watch import ChangeSet, RepoWatcher, classify
from wtls.wire import wire_object
from wtls.worktrees import discover, repository_payload


def _gitdir(worktree: Path) -> Path:
    return Path(git(worktree, "rev-parse", "--absolute-git-dir"))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_state_lives_in_the_private_git_dir_and_status_stays_clean(
    repo: Path, tmp_path: Path
) -> None:
    linked = add_worktree(repo, tmp_path / "linked", "feature/x")
    place = locate(linked / ".")
    assert place.worktree == linked.resolve()
    assert place.gitdir == _gitdir(linked)
    agent = set_agent(place.gitdir, "waiting", message="Allow Bash?", tool="claude", session="s1")
    assert (place.gitdir / AGENT_FILE).is_file()
    assert not (place.gitdir / f"{AGENT_FILE}.{os.getpid()}.tmp").exists()
    assert git(linked, "status", "--porcelain", "--ignored") == ""
    assert git(repo, "status", "--porcelain", "--ignored") == ""
    assert read_agent(place.gitdir) == agent
    assert agent.since.endswith("Z") and len(agent.since) == 20
    assert read_agent(_gitdir(repo)) is None  # the main worktree has none


def test_since_is_kept_while_the_state_stays(repo: Path) -> None:
    gd = _gitdir(repo)
    first = set_agent(gd, "working", session="s", now=1_000_000_000)
    again = set_agent(gd, "working", session="s", now=1_000_000_100)
    assert again.since == first.since == "2001-09-09T01:46:40Z"
    later = set_agent(gd, "idle", session="s", now=1_000_000_200)
    assert later.since == "2001-09-09T01:50:00Z"


def test_unknown_state_and_removed_worktree_are_refused(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown agent state"):
        set_agent(_gitdir(repo), "sleeping")
    gone = tmp_path / "gone-admin"
    with pytest.raises(AgentError, match="does not exist"):
        set_agent(gone, "working")
    assert not gone.exists()  # never created
    with pytest.raises(AgentError):
        locate(tmp_path)  # not in a repository


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'{"agent": {"state": "dancing", "since": "x"}}',
        b'{"agent": {"state": "working"}}',
        b'{"agent": "working"}',
        b"[" * 100_000,
    ],
)
def test_garbage_is_no_state(repo: Path, content: bytes) -> None:
    gd = _gitdir(repo)
    (gd / AGENT_FILE).write_bytes(content)
    assert read_agent(gd) is None
    # and a writer replaces garbage with a good file
    assert set_agent(gd, "idle").state == "idle"
    assert read_agent(gd) is not None


def test_size_bound_and_non_regular_files(repo: Path) -> None:
    gd = _gitdir(repo)
    set_agent(gd, "working")
    body = json.loads((gd / AGENT_FILE).read_text())
    body["agent"]["message"] = "x" * (agents.MAX_AGENT_BYTES + 1)
    (gd / AGENT_FILE).write_text(json.dumps(body))
    assert read_agent(gd) is None
    (gd / AGENT_FILE).unlink()
    os.mkfifo(gd / AGENT_FILE)
    assert read_agent(gd) is None  # never blocks on a FIFO


def test_bad_field_types_are_dropped_not_fatal(repo: Path) -> None:
    gd = _gitdir(repo)
    (gd / AGENT_FILE).write_text(
        json.dumps(
            {
                "agent": {
                    "state": "working",
                    "since": "2026-01-01T00:00:00Z",
                    "message": 5,
                    "tool": ["x"],
                    "session": None,
                    "pid": True,
                    "others": "nope",
                },
                "sessions": "garbage",
            }
        )
    )
    agent = read_agent(gd)
    assert agent is not None
    assert (agent.message, agent.tool, agent.session, agent.pid, agent.others) == (
        None,
        None,
        None,
        None,
        (),
    )


def test_a_gone_process_drops_the_state(repo: Path) -> None:
    gd = _gitdir(repo)
    set_agent(gd, "working", pid=_dead_pid())
    assert read_agent(gd) is None
    set_agent(gd, "working", pid=os.getpid())
    agent = read_agent(gd)
    assert agent is not None and agent.pid == os.getpid()


def test_clear_by_session_leaves_another_sessions_state(repo: Path) -> None:
    gd = _gitdir(repo)
    set_agent(gd, "working", session="a")
    set_agent(gd, "working", session="b")
    assert clear_agent(gd, session="a") is False  # b's state stays
    agent = read_agent(gd)
    assert agent is not None and agent.session == "b" and agent.others == ()
    assert clear_agent(gd, session="b") is True
    assert read_agent(gd) is None
    set_agent(gd, "idle")
    assert clear_agent(gd) is True
    assert not (gd / AGENT_FILE).exists()


def test_guard_two_sessions_within_a_minute(repo: Path) -> None:
    gd = _gitdir(repo)
    set_agent(gd, "working", session="a", now=1000.0)
    b = set_agent(gd, "working", session="b", now=1030.0)
    assert b.others == ("a",)
    # a minute and more later, a is no longer counted
    b = set_agent(gd, "working", session="b", now=1100.0)
    assert b.others == ()


def test_payload_on_every_worktree(repo: Path, tmp_path: Path) -> None:
    linked = add_worktree(repo, tmp_path / "linked", "feature/x")
    set_agent(_gitdir(linked), "waiting", message="hi", tool="codex", session="s", pid=None)
    engine = Engine(discover(repo))
    engine.refresh()
    assert engine.state is not None
    payload = wire_object(repository_payload(engine.state))
    by_path = {w["path"]: w for w in payload["worktrees"]}
    assert by_path[str(repo.resolve())]["agent"] is None
    agent = by_path[str(linked.resolve())]["agent"]
    assert agent == {
        "state": "waiting",
        "since": agent["since"],
        "message": "hi",
        "tool": "codex",
        "session": "s",
        "pid": None,
        "others": [],
    }


def test_classify_agent_files(repo: Path, tmp_path: Path) -> None:
    linked = add_worktree(repo, tmp_path / "linked", "feature/x")
    engine = Engine(discover(repo))
    engine.refresh()
    t = engine.watch_targets()
    admin = _gitdir(linked)
    common = _gitdir(repo)
    c = classify([admin / AGENT_FILE], t)
    assert c.agents == {linked.resolve()} and not (c.worktrees or c.refs or c.listing)
    c = classify([common / AGENT_FILE], t)
    assert c.agents == {repo.resolve()} and not (c.worktrees or c.refs or c.listing)
    assert not classify([admin / f"{AGENT_FILE}.123.tmp", admin / "wtls-agent.lock"], t)


def test_agent_only_refresh_runs_no_git(repo: Path, tmp_path: Path) -> None:
    linked = add_worktree(repo, tmp_path / "linked", "feature/x")
    engine = Engine(discover(repo))
    engine.refresh()
    set_agent(_gitdir(linked), "working", tool="claude")
    # With git unreachable, only a git-free refresh can succeed.
    old_path = os.environ["PATH"]
    os.environ["PATH"] = str(tmp_path / "no-git-here")
    try:
        refreshed = engine.refresh(ChangeSet(agents={linked.resolve()}))
    finally:
        os.environ["PATH"] = old_path
    assert refreshed.changed and not refreshed.touched and refreshed.agents_only
    wt = refreshed.state.find(linked)
    assert wt is not None and wt.agent is not None and wt.agent.state == "working"


def test_watcher_reports_an_agent_state_change(repo: Path, tmp_path: Path) -> None:
    linked = add_worktree(repo, tmp_path / "linked", "feature/x")
    engine = Engine(discover(repo))
    engine.refresh()
    got: queue.Queue[ChangeSet] = queue.Queue()
    watcher = RepoWatcher(engine.watch_targets(), got.put)
    watcher.start()
    try:
        set_agent(_gitdir(linked), "waiting", message="?")
        change = got.get(timeout=10)
        while not change.agents:
            change = got.get(timeout=10)
        assert change.agents == {linked.resolve()}
    finally:
        watcher.stop()
