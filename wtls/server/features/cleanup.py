"""Clean-up in the editor: process counts, ``wtls.stopProcesses``, the prune notice.

* **Process counts.** After a refresh (a refresh hook), the processes using each worktree are
  found (:meth:`wtls.engine.Engine.measure_processes`, which reads every process once) in a
  thread, after the refresh's disk measurement, at most once every :data:`SCAN_INTERVAL`
  seconds per repository, with one trailing scan for the refreshes of that wait. Nothing runs
  while nothing changes: a count is as fresh as the last refresh (``wtls.refresh``, the view's
  Refresh, re-counts).
* **``wtls.stopProcesses {worktree, pids?}``** ends them (:mod:`wtls.lifecycle.stopping`: the
  rules of ``remove --kill``) and counts again at once.
* **The prune notice.** When the merged, clean worktrees hold more than the
  ``pruneNoticeMB`` setting (0: never), an Information ``window/showMessageRequest`` asks
  (:func:`wtls.lifecycle.prune_notice`); its button runs the prune of ``wtls.prune {merged:
  true}`` (teardown only in a trusted workspace) and says what was removed and kept. Asked once
  per repository while the amount stays above the threshold (again only after it fell below
  and grew past it anew), never while a previous question is unanswered.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types

from wtls.arguments import PruneArgs, StopProcessesArgs
from wtls.engine import Refreshed
from wtls.errors import Refused
from wtls.git import GitError
from wtls.lifecycle import (
    StopProcessesResult,
    prune_notice,
    prune_summary,
    stop_worktree_processes,
)
from wtls.server.base import RepoSession, Server
from wtls.server.features.worktree_commands import run_prune_merged, start_path
from wtls.server.protocol import Command
from wtls.server.rpc import command
from wtls.server.shared import SharedRepository, Viewers
from wtls.worktrees import RepositoryError

#: Seconds between two process scans of one repository (a scan reads every process).
SCAN_INTERVAL = 5.0
#: The notice's button.
PRUNE_BUTTON = "Prune Merged"
_MIB = 1024 * 1024


@dataclass(eq=False)
class _Scan:
    """A repository's process scans, shared by every session of the process that shows it."""

    task: asyncio.Task[None] | None = None
    #: A refresh came after the last scan started: scan again.
    again: bool = False
    #: Scan without waiting the interval (after Stop Processes); ``wake`` ends a wait.
    urgent: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    last_scan: float = -math.inf
    #: The sessions that consider the prune notice after a scan, with their server's feature.
    viewers: Viewers[Cleanup] = field(default_factory=Viewers)


@dataclass
class _Notice:
    """One session's prune notice of a repository."""

    #: The notice was shown for the current time above the threshold.
    noticed: bool = False
    #: A notice is waiting for the person's answer.
    asking: bool = False


class Cleanup:
    """Process scans (one per repository for the process) and the prune notice (per session)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._notices: dict[str, _Notice] = {}

    def _notice(self, session: RepoSession) -> _Notice:
        return self._notices.setdefault(session.key, _Notice())

    async def on_refresh(self, ls: Server, session: RepoSession, refreshed: Refreshed) -> None:
        """Refresh hook: consider the notice by the new state (a dip below the threshold counts
        even if the next scan does not see it), count processes again (rate-limited) and
        consider it once more with the new sizes."""
        self._consider_notice(ls, session, self._notice(session))
        scan = session.shared.feature_state(_Scan, _Scan)
        if refreshed.replayed and scan.task is not None:
            # A session joined: the counts of the repository's last scan are in its state.
            scan.viewers.add(session, self)
            return
        self.schedule(ls, session)

    def schedule(self, ls: Server, session: RepoSession, *, urgent: bool = False) -> None:
        """Make sure a scan of ``session``'s repository follows (at once when ``urgent``)."""
        shared = session.shared
        scan = shared.feature_state(_Scan, _Scan)
        scan.viewers.add(session, self)
        scan.again = True
        if urgent:
            scan.urgent = True
            scan.wake.set()
        if scan.task is None or scan.task.done():
            scan.task = shared.spawn(self._run(shared, scan), "process scan", background=True)

    @staticmethod
    async def _run(shared: SharedRepository, scan: _Scan) -> None:
        while scan.again and not shared.closed:
            wait = scan.last_scan + SCAN_INTERVAL - time.monotonic()
            if wait > 0 and not scan.urgent:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(scan.wake.wait(), wait)
            scan.wake.clear()
            # The refresh's disk measurement first: the notice needs its sizes.
            disk = shared.disk_task
            if disk is not None and not disk.done():
                await asyncio.wait([disk])
            scan.again = scan.urgent = False
            scan.last_scan = time.monotonic()
            if await asyncio.to_thread(shared.engine.measure_processes):
                for session in shared.open_sessions():
                    await session.listener.publish(session)
            for session, cleanup in scan.viewers.live():
                cleanup._consider_notice(cleanup.server, session, cleanup._notice(session))

    def _consider_notice(self, ls: Server, session: RepoSession, repo: _Notice) -> None:
        state = session.state
        text = prune_notice(state, ls.settings.pruneNoticeMB * _MIB) if state else None
        if text is None:
            if not repo.asking:
                repo.noticed = False  # below the threshold: growing past it asks anew
            return
        if repo.noticed or repo.asking:
            return
        repo.noticed = repo.asking = True
        ls.spawn_task(self._ask(ls, session, repo, text), "prune notice")

    async def _ask(self, ls: Server, session: RepoSession, repo: _Notice, text: str) -> None:
        params = types.ShowMessageRequestParams(
            type=types.MessageType.Info,
            message=f"wtls: {text}",
            actions=[types.MessageActionItem(title=PRUNE_BUTTON)],
        )
        try:
            answer = await ls.window_show_message_request_async(params)
        finally:
            repo.asking = False
        if answer is None or answer.title != PRUNE_BUTTON or not ls.is_open(session):
            return
        state = session.state
        main = state.main if state is not None else None
        start = main.path if main is not None else (session.folders or [Path.cwd()])[0]
        try:
            result = await run_prune_merged(ls, PruneArgs(merged=True, uri=start), start)
        except (Refused, GitError, RepositoryError, OSError) as exc:
            ls.show_message(f"wtls: prune --merged: {exc}", types.MessageType.Error)
            return
        kind = types.MessageType.Warning if result.problems else types.MessageType.Info
        ls.show_message(f"wtls: {prune_summary(result)}", kind)


def register(server: Server) -> None:
    """Register the process scan, ``wtls.stopProcesses`` and the prune notice."""
    cleanup = Cleanup(server)
    server.refresh_hooks.append(cleanup.on_refresh)

    @command(server, Command.STOP_PROCESSES, StopProcessesArgs)
    async def stop_processes_command(ls: Server, args: StopProcessesArgs) -> StopProcessesResult:
        """End the processes using a worktree (SIGTERM, grace, SIGKILL); count again."""
        start = start_path(ls, args)
        engine = await ls.engine_for(start)
        result = await asyncio.to_thread(
            stop_worktree_processes, start, args.worktree, pids=args.pids
        )
        session = ls.sessions.get(engine.repository.key)
        if session is not None:
            cleanup.schedule(ls, session, urgent=True)
        return result
