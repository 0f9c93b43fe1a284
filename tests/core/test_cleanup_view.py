"""What the Worktrees view shows about clean-up, computed by the core on real repositories:
processes per worktree, the disk totals, what ``prune --merged`` would free, the notice's words."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gitutil import add_worktree, commit_all, git
from wtls.engine import Engine
from wtls.lifecycle import (
    KeptWorktree,
    PrunedWorktree,
    PruneMergedResult,
    prune_candidates,
    prune_notice,
    prune_summary,
    size_text,
)
from wtls.wire import wire_object
from wtls.worktrees import discover, repository_payload

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/cwd").exists(), reason="process detection is tested on Linux"
)

MIB = 1024 * 1024


@pytest.fixture
def procs() -> Iterator[list[int]]:
    """pids of ``sleep 300`` started in a folder, not as children of this process (wtls never
    counts its own children: the git commands it runs); killed at the end."""
    started: list[int] = []
    yield started
    for pid in started:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _sleep_in(folder: Path, procs: list[int]) -> int:
    out = subprocess.run(
        ["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    procs.append(int(out))
    return procs[-1]


def _engine(repo: Path) -> Engine:
    engine = Engine(discover(repo))
    engine.refresh()
    return engine


def _merged(repo: Path, path: Path, branch: str) -> Path:
    wt = add_worktree(repo, path, branch)
    (wt / "big.bin").write_bytes(os.urandom(2 * MIB))
    commit_all(wt, "big file")
    git(repo, "merge", "-q", "--no-ff", "-m", f"merge {branch}", branch)
    return wt


def test_the_payload_carries_processes_per_worktree_and_the_disk_totals(
    repo: Path, tmp_path: Path, procs: list[int]
) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature/a")
    pid = _sleep_in(wt, procs)
    engine = _engine(repo)
    before = wire_object(repository_payload(engine.state))  # type: ignore[arg-type]
    assert [w["processes"] for w in before["worktrees"]] == [None, None]  # not scanned yet
    assert before["diskBytes"] is None and before["reclaimableBytes"] is None
    engine.measure_disk()
    assert engine.measure_processes() is True
    assert engine.measure_processes() is False  # nothing changed since
    payload = wire_object(repository_payload(engine.state))  # type: ignore[arg-type]
    main, linked = payload["worktrees"]
    assert main["processes"] == []
    assert linked["processes"] == [
        {"pid": pid, "command": "sleep 300", "reason": "cwd", "path": str(wt)}
    ]
    assert payload["diskBytes"] == main["diskBytes"] + linked["diskBytes"] > 0
    assert payload["reclaimableBytes"] == 0  # feature/a has no commit of its own: not merged


def test_reclaimable_bytes_and_the_notice_count_only_clean_merged_idle_worktrees(
    repo: Path, tmp_path: Path, procs: list[int]
) -> None:
    clean = _merged(repo, tmp_path / "clean", "feature/clean")
    dirty = _merged(repo, tmp_path / "dirty", "feature/dirty")
    (dirty / "notes.txt").write_text("not committed\n")
    engine = _engine(repo)
    engine.measure_disk()
    state = engine.state
    assert state is not None
    size = next(w.disk_bytes for w in state.worktrees if w.path == clean)
    assert size is not None and size >= 2 * MIB
    assert [w.path for w in prune_candidates(state)] == [clean]
    assert state.reclaimable_bytes == size
    assert prune_notice(state, size) is None  # at the threshold: not more than it
    assert prune_notice(state, 0) is None  # 0: never
    assert prune_notice(state, size - 1) == (
        f"1 merged worktree of {repo.name} holds {size_text(size)} (feature/clean). Prune it?"
    )
    # A process in the merged worktree keeps it (prune --merged would too).
    _sleep_in(clean, procs)
    engine.measure_processes()
    busy = engine.state
    assert busy is not None
    assert prune_candidates(busy) == () and busy.reclaimable_bytes == 0
    assert prune_notice(busy, 1) is None


def test_the_prune_report_says_what_was_removed_and_kept() -> None:
    result = PruneMergedResult(
        removed=(
            PrunedWorktree(path=Path("/r/a"), branch="agent/a", bytes=3 * MIB),
            PrunedWorktree(path=Path("/r/b"), branch=None, bytes=MIB),
        ),
        kept=(
            KeptWorktree(path=Path("/r"), reason="the main worktree"),
            KeptWorktree(path=Path("/r/c"), reason="uncommitted changes: notes.txt"),
        ),
    )
    assert prune_summary(result) == (
        "removed 2 merged worktrees (4.0 MiB): agent/a, b; "
        "kept 1: c (uncommitted changes: notes.txt)"
    )
    assert prune_summary(PruneMergedResult()) == "no merged worktree was removed"
    assert [size_text(n) for n in (1, 512, 1536, 5 * MIB, 3 * 1024 * MIB)] == [
        "1 byte",
        "512 bytes",
        "1.5 KiB",
        "5.0 MiB",
        "3.0 GiB",
    ]
