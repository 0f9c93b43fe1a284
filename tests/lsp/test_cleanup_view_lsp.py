"""Issue 15, the editor side, through a real ``wtls serve``: process counts in the payload,
``wtls.stopProcesses``, the disk totals and the prune notice (``window/showMessageRequest``)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.gitutil import add_worktree, commit_all, git
from tests.lsp.harness import Session, open_session
from wtls.errors import REFUSED_CODE
from wtls.lifecycle import size_text
from wtls.server.features.cleanup import PRUNE_BUTTON

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/cwd").exists(), reason="process detection is tested on Linux"
)

INVALID_PARAMS = -32602
MIB = 1024 * 1024


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; killed and reaped whatever happens."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=30)


def _worktree(state: dict[str, Any], path: Path) -> dict[str, Any]:
    return next(w for w in state["worktrees"] if w["path"] == str(path))


def _pids(state: dict[str, Any], path: Path) -> list[int] | None:
    processes = _worktree(state, path).get("processes")
    return None if processes is None else [p["pid"] for p in processes]


def _counted(s: Session) -> dict[str, Any]:
    """The payload once every worktree was scanned for processes (after the disk sizes)."""
    return (
        s.latest()
        if s.states and all(w.get("processes") is not None for w in s.latest()["worktrees"])
        else {}
    )


async def test_a_process_in_a_worktree_is_counted_and_stop_processes_ends_it(
    repo: Path, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature/a")
    sleeper = subprocess.Popen(["sleep", "300"], cwd=wt, text=True)
    procs.append(sleeper)
    async with open_session([repo]) as s:
        state = await s.wait_for_state(
            lambda st: _pids(st, wt) == [sleeper.pid], "the sleep counted in its worktree"
        )
        assert _worktree(state, wt)["processes"] == [
            {"pid": sleeper.pid, "command": "sleep 300", "reason": "cwd", "path": str(wt)}
        ]
        assert _pids(state, repo) == []  # the server itself is never counted
        result = await s.command(
            "wtls.stopProcesses", {"worktree": "feature/a", "pids": [sleeper.pid]}
        )
        assert [p["pid"] for p in result["ended"]] == [sleeper.pid]
        assert result["notEnded"] == [] and result["gone"] == []
        assert f"ended 1 process using {wt}" in result["message"]
        assert sleeper.wait(timeout=10) == -15  # SIGTERM was enough
        await s.wait_for_state(lambda st: _pids(st, wt) == [], "the count back to 0")
    assert wt.is_dir()  # stopping processes removes nothing


async def test_a_process_that_ignores_sigterm_is_killed_after_the_grace(
    repo: Path, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature/a")
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('ready', flush=True)\n"
            "time.sleep(300)\n",
        ],
        cwd=wt,
        stdout=subprocess.PIPE,
        text=True,
    )
    procs.append(stubborn)
    assert stubborn.stdout is not None and stubborn.stdout.readline() == "ready\n"
    async with open_session([repo]) as s:
        result = await s.command("wtls.stopProcesses", {"worktree": str(wt)})
        assert [p["pid"] for p in result["ended"]] == [stubborn.pid]
    assert stubborn.wait(timeout=10) == -9  # SIGKILL after SIGTERM was ignored


async def test_stop_processes_refuses_bad_arguments_and_never_signals_a_stranger(
    repo: Path, tmp_path: Path
) -> None:
    add_worktree(repo, tmp_path / "wt", "feature/a")
    async with open_session([repo]) as s:
        with pytest.raises(JsonRpcException) as info:
            await s.command("wtls.stopProcesses", {"worktree": "no-such-worktree"})
        assert info.value.code == REFUSED_CODE
        with pytest.raises(JsonRpcException) as info:
            await s.command("wtls.stopProcesses", {"worktree": "feature/a", "pids": ["1"]})
        assert info.value.code == INVALID_PARAMS and "pids" in str(info.value)
        with pytest.raises(JsonRpcException) as info:
            await s.command("wtls.stopProcesses", {"worktree": "feature/a", "pids": [0]})
        assert info.value.code == REFUSED_CODE and "not a process id" in str(info.value)
        with pytest.raises(JsonRpcException) as info:
            await s.command("wtls.stopProcesses", {})
        assert info.value.code == INVALID_PARAMS and "worktree" in str(info.value)
        # This test's own process does not use the worktree: asked for, it is left alone.
        result = await s.command(
            "wtls.stopProcesses", {"worktree": "feature/a", "pids": [os.getpid()]}
        )
        assert result["ended"] == [] and result["gone"] == [os.getpid()]
        # The main worktree, which the server runs beside: nothing of its own is ended.
        result = await s.command("wtls.stopProcesses", {"worktree": str(repo)})
        assert result["ended"] == [] and result["notEnded"] == []
        assert "no process to end uses" in result["message"]


def _merged_worktree(repo: Path, path: Path, branch: str, megabytes: int) -> Path:
    """A worktree whose branch (one big committed file) is merged into main."""
    wt = add_worktree(repo, path, branch)
    (wt / f"{branch.replace('/', '-')}.bin").write_bytes(os.urandom(megabytes * MIB))
    commit_all(wt, f"big file of {branch}")
    git(repo, "merge", "-q", "--no-ff", "-m", f"merge {branch}", branch)
    return wt


async def _quiet(s: Session) -> None:
    """A round trip: whatever the server sent before answering has arrived."""
    await s.request_worktrees()


async def test_the_notice_asks_above_the_threshold_and_prunes_only_merged_clean_worktrees(
    repo: Path, tmp_path: Path
) -> None:
    clean = _merged_worktree(repo, tmp_path / "clean", "feature/clean", 2)
    dirty = _merged_worktree(repo, tmp_path / "dirty", "feature/dirty", 2)
    (dirty / "notes.txt").write_text("not committed\n")
    async with open_session([repo], settings={"pruneNoticeMB": 1}) as s:
        s.answer = lambda params: PRUNE_BUTTON
        await s.wait_until(lambda: s.message_requests, "the prune notice")
        request = s.message_requests[0]
        state = await s.wait_until(lambda: _counted(s), "process counts and sizes")
        reclaimable = state["reclaimableBytes"]
        assert reclaimable == _worktree(state, clean)["diskBytes"] >= 2 * MIB
        assert state["diskBytes"] == sum(w["diskBytes"] for w in state["worktrees"])
        assert request.type == types.MessageType.Info
        assert request.message == (
            f"wtls: 1 merged worktree of {repo.name} holds {size_text(reclaimable)} "
            "(feature/clean). Prune it?"
        )
        assert [a.title for a in request.actions or []] == [PRUNE_BUTTON]
        said = await s.wait_until(
            lambda: [m for m in s.client.messages if "merged worktree" in m.message],
            "what the prune did",
        )
        assert said[0].message.startswith("wtls: removed 1 merged worktree (")
        assert (
            "feature/clean" in said[0].message and "dirty (uncommitted changes" in said[0].message
        )
        await s.wait_for_state(
            lambda st: [w["path"] for w in st["worktrees"]] == [str(repo), str(dirty)],
            "the pruned worktree gone from the view",
        )
        await _quiet(s)
        assert len(s.message_requests) == 1
    assert not clean.exists() and (dirty / "notes.txt").is_file()
    assert "feature/clean" not in git(repo, "branch", "--list")


@pytest.mark.parametrize("settings", [{}, {"pruneNoticeMB": 0}], ids=["default-1GiB", "zero"])
async def test_no_notice_below_the_threshold_or_when_zero(
    repo: Path, tmp_path: Path, settings: dict[str, Any]
) -> None:
    wt = _merged_worktree(repo, tmp_path / "wt", "feature/a", 2)
    async with open_session([repo], settings=settings) as s:
        state = await s.wait_until(lambda: _counted(s), "process counts and sizes")
        assert state["reclaimableBytes"] >= 2 * MIB
        await _quiet(s)
        assert s.message_requests == []
    assert wt.is_dir()


async def test_the_notice_is_asked_once_and_again_only_when_the_amount_grows_anew(
    repo: Path, tmp_path: Path
) -> None:
    first = _merged_worktree(repo, tmp_path / "first", "feature/first", 2)
    answered = asyncio.Event()

    async def hold(params: types.ShowMessageRequestParams) -> None:
        await answered.wait()  # the person has not answered yet; then dismisses

    async with open_session([repo], settings={"pruneNoticeMB": 1}) as s:
        s.answer = hold
        await s.wait_until(lambda: s.message_requests, "the prune notice")
        # Unanswered: refreshes (each followed by a scan) ask nothing more.
        await s.command("wtls.refresh")
        await s.command("wtls.refresh")
        await _quiet(s)
        assert len(s.message_requests) == 1
        answered.set()
        # Dismissed, still above the threshold: not asked again.
        await s.command("wtls.refresh")
        await _quiet(s)
        assert len(s.message_requests) == 1
        # The amount falls below (the worktree is removed), then grows past it anew.
        await s.command("wtls.remove", {"worktree": str(first)})
        await s.wait_for_state(lambda st: st.get("reclaimableBytes") == 0, "nothing reclaimable")
        s.answer = lambda params: None
        _merged_worktree(repo, tmp_path / "second", "feature/second", 2)
        await s.command("wtls.refresh")
        await s.wait_until(lambda: len(s.message_requests) == 2, "the notice asked anew")
