"""Hostile review, round 6: writers racing a command, git's locks, submodules, unreadable
process start times. Each test here failed before its fix."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from wtls import processes
from wtls.processes import CWD, ProcessUse


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    p = subprocess.Popen(["sleep", "300"], cwd=tmp_path)
    try:
        yield p
    finally:
        p.kill()
        p.wait(timeout=10)


@pytest.mark.skipif(not processes._has_proc(), reason="needs Linux /proc start times")
def test_a_pid_whose_start_time_was_not_read_is_not_signalled(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    # A process that ends between the scan reading its links and its start time leaves no
    # start time: a process that takes its pid later must not be signalled in its stead.
    use = ProcessUse(pid=sleeper.pid, command="sleep 300", reason=CWD, path=tmp_path)
    failed = processes.stop([use], {}, grace=0.1)
    assert failed == {sleeper.pid: processes.UNVERIFIED}
    assert sleeper.poll() is None  # still running: never signalled


@pytest.mark.skipif(not processes._has_proc(), reason="needs Linux /proc start times")
def test_a_pid_now_started_at_another_time_is_not_signalled(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    use = ProcessUse(pid=sleeper.pid, command="sleep 300", reason=CWD, path=tmp_path)
    failed = processes.stop([use], {sleeper.pid: "1"}, grace=0.1)
    assert sleeper.pid not in failed or failed[sleeper.pid] == processes.UNVERIFIED
    assert sleeper.poll() is None


@pytest.mark.skipif(not processes._has_proc(), reason="needs Linux /proc start times")
def test_a_pid_with_its_scanned_start_time_is_ended(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    start = processes._proc_start(sleeper.pid)
    assert start is not None
    use = ProcessUse(pid=sleeper.pid, command="sleep 300", reason=CWD, path=tmp_path)
    assert processes.stop([use], {sleeper.pid: start}, grace=5.0) == {}
    assert sleeper.wait(timeout=10) is not None
