"""The refresh pipeline: file events → a coalesced, debounced re-read → what clients see.

Changes of a repository coalesce into one pending :class:`~wtls.watch.ChangeSet` per session; one
loop per session waits the debounce and for git commands that are rewriting a worktree, re-reads
off the event loop, then publishes: the ``wtls/worktrees`` notification (only when its payload
changed), the worktree problems, and every feature's refresh hook.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from wtls.engine import Engine, Refreshed, git_writing_until
from wtls.git import GitError
from wtls.problems import Problem, stale_problems, worktree_problems
from wtls.server.base import RepoSession, Server
from wtls.server.protocol import WORKTREES_METHOD
from wtls.watch import ChangeSet
from wtls.worktrees import RepositoryError

#: Diagnostics category of the worktree problems (stale, far behind, ...).
WORKTREE_CATEGORY = "worktree"

SessionCallback = Callable[[RepoSession], Awaitable[None]]
FailureCallback = Callable[[RepoSession, Exception], Awaitable[None]]


class RefreshPipeline:
    """Re-reads sessions when their files change and publishes what changed."""

    def __init__(
        self, ls: Server, *, on_listing_changed: SessionCallback, on_failure: FailureCallback
    ) -> None:
        self._ls = ls
        #: After a refresh that changed the worktree list (folders may need opening again).
        self._on_listing_changed = on_listing_changed
        #: After a refresh that failed with a new error.
        self._on_failure = on_failure

    def queue_change(self, session: RepoSession, change: ChangeSet) -> None:
        """Coalesce ``change`` into the session's pending work and make sure a refresh runs."""
        if self._ls.shutting_down or session.key not in self._ls.sessions:
            return
        if session.pending is None:
            session.pending = change
        else:
            session.pending.merge(change)
        if session.refresh_task is None or session.refresh_task.done():
            session.refresh_task = self._ls.spawn_task(self._loop(session), "refresh")

    async def refresh(self, engine: Engine, change: ChangeSet | None = None) -> None:
        """Refresh a repository now (everything when ``change`` is None) and publish."""
        session = self._ls.sessions.get(engine.repository.key)
        if session is None:
            return
        self.queue_change(session, change or ChangeSet(everything=True))
        if session.refresh_task is not None:
            await asyncio.shield(session.refresh_task)

    async def _loop(self, session: RepoSession) -> None:
        ls = self._ls
        while session.pending is not None and not ls.shutting_down and ls.is_open(session):
            if ls.settings.debounceMs:
                await asyncio.sleep(ls.settings.debounceMs / 1000)
            await self._wait_for_git_writes(session)
            change, session.pending = session.pending, None
            if change is None:
                break
            try:
                refreshed = await asyncio.to_thread(session.engine.refresh, change)
            except (GitError, RepositoryError, OSError) as exc:
                await self._failed(session, exc)
                continue
            session.last_error = None
            listing_changed = refreshed.listing_changed
            if listing_changed and session.watcher is not None:
                # Watch new worktrees before announcing them, then re-read them: anything
                # written between the read above and the new watch is caught.
                await asyncio.to_thread(session.watcher.retarget, session.engine.watch_targets())
                new = {w.path for w in refreshed.state.worktrees} - session.announced
                if new:
                    refreshed = await asyncio.to_thread(
                        session.engine.refresh, ChangeSet(worktrees=new)
                    )
            if not ls.is_open(session):
                return
            await self.after_refresh(session, refreshed)
            if listing_changed:
                await self._on_listing_changed(session)

    async def _wait_for_git_writes(self, session: RepoSession) -> None:
        """Let a git command that is rewriting a worktree of this change finish first (at most
        :data:`~wtls.engine.GIT_WRITE_GRACE` after it started); events arriving meanwhile join
        the change. Its release of ``index.lock`` is itself an event, so nothing is missed."""
        engine = session.engine
        while (change := session.pending) is not None and not self._ls.shutting_down:
            until = await asyncio.to_thread(
                lambda: git_writing_until(engine.index_locks(change), time.time())
            )
            if until is None:
                return
            await asyncio.sleep(min(0.05, max(until - time.time(), 0.0)))

    async def _failed(self, session: RepoSession, exc: Exception) -> None:
        message = str(exc)
        if session.last_error == message:
            return
        session.last_error = message
        await self._on_failure(session, exc)

    async def after_refresh(
        self, session: RepoSession, refreshed: Refreshed, *, force: bool = False
    ) -> None:
        """Publish a session's new state and start every feature's follow-up work."""
        ls = self._ls
        await self.publish(session, force=force)
        self._publish_worktree_problems(session)
        for hook in ls.agent_hooks:
            ls.spawn_task(hook(ls, session, refreshed), f"agent hook {hook.__name__}")
        if refreshed.agents_only:
            return  # an agent's state file: no file changed, nothing to scan or predict
        for hook in ls.refresh_hooks:
            ls.spawn_task(hook(ls, session, refreshed), f"refresh hook {hook.__name__}")
        if session.disk_task is None or session.disk_task.done():
            session.disk_task = ls.spawn_task(self._measure_disk(session), "disk usage")

    async def _measure_disk(self, session: RepoSession) -> None:
        """Sizes on disk, off the loop; cached a minute by the core, so bursts cost one walk."""
        if await asyncio.to_thread(session.engine.measure_disk):
            await self.publish(session)

    async def publish(self, session: RepoSession, *, force: bool = False) -> None:
        """Send the ``wtls/worktrees`` notification when its payload changed (or ``force``)."""
        if session.engine.state is None or not self._ls.is_open(session):
            return  # not read yet (the first refresh publishes), or closed
        payload = session.payload()
        if not force and payload == session.last_payload:
            return
        session.last_payload = payload
        session.announced = frozenset(Path(w["path"]) for w in payload["worktrees"])
        self._ls.notify(WORKTREES_METHOD, payload)

    def _publish_worktree_problems(self, session: RepoSession) -> None:
        state = session.state
        if state is None:
            return
        problems: list[Problem] = list(stale_problems(state))
        for wt in session.own_worktrees():
            problems.extend(worktree_problems(state, wt, far_behind=self._ls.settings.farBehind))
        self._ls.diagnostics.replace(WORKTREE_CATEGORY, session.key, problems)
