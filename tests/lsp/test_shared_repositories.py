"""The per-process shared repositories (wtls/server/shared.py) on real repositories and the real
watcher: every session of a process shares one engine, one watcher and one re-read per change;
``sync`` brings the state up to date with every change made before it was called."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.gitutil import add_worktree
from wtls.engine import EngineSettings, Refreshed
from wtls.server.shared import RepoSession, SharedRepositories
from wtls.worktrees import discover


class Recorder:
    """A session listener that records what it was told (stands for one LSP session)."""

    def __init__(self) -> None:
        self.refreshes: list[Refreshed] = []
        self.open = True
        self.changed = asyncio.Event()

    async def after_refresh(
        self, session: RepoSession, refreshed: Refreshed, *, force: bool = False
    ) -> None:
        self.refreshes.append(refreshed)
        self.changed.set()

    async def publish(self, session: RepoSession, *, force: bool = False) -> None:
        pass

    async def listing_changed(self, session: RepoSession) -> None:
        pass

    async def refresh_failed(self, session: RepoSession, exc: Exception) -> None:
        pass

    def is_open(self, session: RepoSession) -> bool:
        return self.open


def untracked(session: RepoSession, worktree: Path) -> int:
    state = session.state
    assert state is not None
    found = state.find(worktree)
    assert found is not None
    return found.status.untracked


async def test_sessions_share_one_engine_watcher_and_reread(repo: Path, tmp_path: Path) -> None:
    linked = add_worktree(repo, tmp_path / "linked", "feature/x").resolve()
    registry = SharedRepositories()
    repository = discover(repo)
    first, second = Recorder(), Recorder()
    a = await registry.join(repository, EngineSettings(), first, [repo.resolve()], debounce_ms=30)
    b = await registry.join(repository, EngineSettings(), second, [linked], debounce_ms=30)
    try:
        assert a.shared is b.shared and a.engine is b.engine
        assert registry.get(repository.key) is a.shared
        watcher = a.shared.watcher
        assert watcher is not None and b.watcher is watcher

        calls = 0
        real_refresh = a.engine.refresh

        def counting_refresh(*args: object) -> Refreshed:
            nonlocal calls
            calls += 1
            return real_refresh(*args)  # type: ignore[arg-type]

        a.engine.refresh = counting_refresh  # type: ignore[method-assign]
        (linked / "new.txt").write_text("hello\n")
        assert await a.shared.sync()
        # One re-read for the change, told to both sessions (the same object).
        assert calls == 1
        assert first.refreshes[-1] is second.refreshes[-1]
        assert untracked(a, linked) == 1 and untracked(b, linked) == 1
    finally:
        registry.close_all()


async def test_sync_waits_for_a_change_made_just_before(repo: Path) -> None:
    registry = SharedRepositories()
    session = await registry.join(
        discover(repo), EngineSettings(), Recorder(), [repo.resolve()], debounce_ms=30
    )
    try:
        for n in range(1, 6):
            (repo / f"file-{n}.txt").write_text("x\n")
            # No sleep: sync returns only once the watcher's events up to now are read.
            assert await session.shared.sync()
            assert untracked(session, repo.resolve()) == n
        # The cookies are gone again.
        assert list((repo / ".git" / "wtls" / "sync").iterdir()) == []
    finally:
        registry.close_all()


async def test_last_session_out_closes_unless_kept_warm(repo: Path) -> None:
    registry = SharedRepositories()
    repository = discover(repo)
    listener = Recorder()
    session = await registry.join(
        repository, EngineSettings(), listener, [repo.resolve()], debounce_ms=30
    )
    shared = session.shared
    registry.leave(session)
    assert shared.closed and registry.get(repository.key) is None

    warm = await registry.open_warm(repository, EngineSettings())
    again = await registry.join(
        repository, EngineSettings(), listener, [repo.resolve()], debounce_ms=30
    )
    assert again.shared is warm
    registry.leave(again)
    assert registry.get(repository.key) is warm and not warm.closed
    registry.close_all()
    assert warm.closed


async def test_sync_never_writes_through_a_symlinked_cookie_folder(
    repo: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (repo / ".git" / "wtls").mkdir()
    os.symlink(elsewhere, repo / ".git" / "wtls" / "sync")
    registry = SharedRepositories()
    session = await registry.join(
        discover(repo), EngineSettings(), Recorder(), [repo.resolve()], debounce_ms=30
    )
    try:
        assert not await session.shared.sync()
        assert list(elsewhere.iterdir()) == []
    finally:
        registry.close_all()


@pytest.mark.parametrize("bad", ["objects", "refs"])
def test_cookie_names_are_only_read_from_the_sync_folder(repo: Path, bad: str) -> None:
    from wtls.engine import Engine
    from wtls.watch import classify

    engine = Engine(discover(repo))
    engine.refresh()
    common = (repo / ".git").resolve()
    targets = engine.watch_targets()
    seen = classify([common / "wtls" / "sync" / "abc"], targets)
    assert seen.cookies == {"abc"} and not (seen.worktrees or seen.refs or seen.listing)
    other = classify([common / bad / "wtls" / "sync" / "abc"], targets)
    assert not other.cookies
