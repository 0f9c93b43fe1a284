"""The refresh pipeline: what one session's client sees after a repository is re-read.

The re-read itself (file events coalesced into one :class:`~wtls.watch.ChangeSet`, the debounce,
waiting for git commands that rewrite a worktree) runs once per repository in
:class:`~wtls.server.shared.SharedRepository`, for every session of the process. This pipeline is
a session's :class:`~wtls.server.shared.SessionListener`: it publishes the ``wtls/worktrees``
notification (only when its payload changed), the worktree problems, and runs every feature's
refresh hook.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from wtls.engine import Engine, Refreshed
from wtls.problems import Problem, stale_problems, worktree_problems
from wtls.server.base import RepoSession, Server
from wtls.server.protocol import WORKTREES_METHOD
from wtls.watch import ChangeSet

#: Diagnostics category of the worktree problems (stale, far behind, ...).
WORKTREE_CATEGORY = "worktree"

SessionCallback = Callable[[RepoSession], Awaitable[None]]
FailureCallback = Callable[[RepoSession, Exception], Awaitable[None]]


class RefreshPipeline:
    """Publishes what changed to this server's client, for each of its sessions."""

    def __init__(
        self, ls: Server, *, on_listing_changed: SessionCallback, on_failure: FailureCallback
    ) -> None:
        self._ls = ls
        #: After a refresh that changed the worktree list (folders may need opening again).
        self._on_listing_changed = on_listing_changed
        #: After a refresh that failed with a new error.
        self._on_failure = on_failure

    # ---------------------------------------------------------------- into the shared loop
    def queue_change(self, session: RepoSession, change: ChangeSet) -> None:
        """Coalesce ``change`` into the repository's pending work (shared by every session)."""
        if self._ls.shutting_down or not self._ls.is_open(session):
            return
        session.shared.queue_change(change)

    async def refresh(self, engine: Engine, change: ChangeSet | None = None) -> None:
        """Refresh a repository now (everything when ``change`` is None) and publish."""
        session = self._ls.sessions.get(engine.repository.key)
        if session is None or self._ls.shutting_down:
            return
        await session.shared.refresh(change)

    # ---------------------------------------------------------------- the listener
    def is_open(self, session: RepoSession) -> bool:
        """Whether ``session`` is still this server's session for its repository."""
        return not self._ls.shutting_down and self._ls.is_open(session)

    async def listing_changed(self, session: RepoSession) -> None:
        """The worktree list changed: folders may need opening again."""
        await self._on_listing_changed(session)

    async def refresh_failed(self, session: RepoSession, exc: Exception) -> None:
        """A refresh failed with a new error."""
        await self._on_failure(session, exc)

    async def after_refresh(
        self, session: RepoSession, refreshed: Refreshed, *, force: bool = False
    ) -> list[asyncio.Task[None]]:
        """Publish a session's new state and start every feature's follow-up work (returned)."""
        ls = self._ls
        await self.publish(session, force=force)
        self._publish_worktree_problems(session)
        tasks = [
            ls.spawn_task(hook(ls, session, refreshed), f"agent hook {hook.__name__}")
            for hook in ls.agent_hooks
        ]
        if refreshed.agents_only:
            return tasks  # an agent's state file: no file changed, nothing to scan or predict
        tasks += [
            ls.spawn_task(hook(ls, session, refreshed), f"refresh hook {hook.__name__}")
            for hook in ls.refresh_hooks
        ]
        return tasks

    async def publish(self, session: RepoSession, *, force: bool = False) -> None:
        """Send the ``wtls/worktrees`` notification when its payload changed (or ``force``)."""
        if session.engine.state is None or not self._ls.is_open(session):
            return  # not read yet (the first refresh publishes), or closed
        payload = session.payload()
        if not force and payload == session.last_payload:
            return
        session.last_payload = payload
        self._ls.notify(WORKTREES_METHOD, payload)

    def _publish_worktree_problems(self, session: RepoSession) -> None:
        state = session.state
        if state is None:
            return
        problems: list[Problem] = list(stale_problems(state))
        for wt in session.own_worktrees():
            problems.extend(worktree_problems(state, wt, far_behind=self._ls.settings.farBehind))
        self._ls.diagnostics.replace(WORKTREE_CATEGORY, session.key, problems)
