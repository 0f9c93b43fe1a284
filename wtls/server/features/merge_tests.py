"""Semantic foresight in the editor: the ``wtls.testMerges`` and ``wtls.land`` commands.

``wtls.testMerges {uri?, command?, timeout?, jobs?, trusted?}`` runs
:func:`wtls.semantic.test_merges` (what ``wtls check --test`` runs) in a thread with
cancellable ``$/progress``: Cancel kills the running group and starts no further run.
``command`` is the test command; without it ``test`` of ``.wtls.toml`` runs, only when
trusted (the ``trusted`` argument, else the ``trusted`` initialization option), like its
``setup``. It returns the ``tests`` object of ``wtls check --test --json`` and publishes
Errors (category ``tests``) in this window's worktrees: at the failing test when it lies in a
changed file, else at the first changed line of the file the failure names, else on the
worktree (:func:`wtls.semantic.test_problems`).

``wtls.land {uri?, worktrees?, command?, timeout?, remove?, trusted?}`` runs
:func:`wtls.land.land` (what ``wtls land`` runs) the same way, with cancellable progress (Cancel
kills the running test; the queue stops there, base left at the last green merge), then
refreshes the repository. It returns the ``wtls land --json`` object.

With the setting ``testOnSettle`` (:class:`SettleRunner`), a trusted workspace whose
``.wtls.toml`` has a ``test`` runs the same tests quietly a few seconds after changes settle.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types

from wtls.arguments import LandArgs, TestMergesArgs
from wtls.engine import Refreshed
from wtls.errors import Refused
from wtls.land import LandResult, land
from wtls.predict.commits import Commit, commit_info
from wtls.problems import Problem
from wtls.semantic import Tester, TestsReport, test_merges, test_problems
from wtls.server.base import RepoSession, Server
from wtls.server.features.documents import unsaved_finder
from wtls.server.protocol import Command
from wtls.server.rpc import command
from wtls.server.shared import SharedRepository, Viewers
from wtls.testplan import plan_tests
from wtls.testrun import DEFAULT_TIMEOUT
from wtls.wire import to_wire
from wtls.worktrees import RepositoryState

#: The diagnostics category of test results.
CATEGORY = "tests"
#: Quiet time after the last refresh that re-read a worktree before ``testOnSettle`` runs.
SETTLE_SECONDS = 5.0


def register(server: Server) -> None:
    """Add the ``wtls.testMerges`` and ``wtls.land`` commands and the ``testOnSettle`` runs."""
    server.refresh_hooks.append(SettleRunner(server).on_refresh)

    @command(server, Command.TEST_MERGES, TestMergesArgs)
    async def test_merges_command(ls: Server, args: TestMergesArgs) -> Any:
        """Test the predicted merges now; the ``tests`` object of ``wtls check --test``."""
        timeout = DEFAULT_TIMEOUT if args.timeout is None else args.timeout
        if not 0.1 <= timeout <= 86400 or not 1 <= args.jobs <= 64:
            raise Refused("`timeout` must be 0.1 to 86400 seconds and `jobs` 1 to 64")
        engine = await ls.engine_for(args.uri)
        await ls.refresh(engine)
        state = engine.state
        if state is None:
            raise Refused("the repository could not be read")
        session = ls.sessions[engine.repository.key]
        text = args.command
        jobs = args.jobs
        trusted = ls.trusted if args.trusted is None else args.trusted
        plan = plan_tests(state, text or None, trusted=trusted)
        if plan.not_run is not None:
            return to_wire(TestsReport(command="", not_run=plan.not_run))
        if not plan.commands:
            raise Refused(
                "no test command: pass `command`, or set `test` in .wtls.toml (run only in a "
                "trusted workspace)"
            )
        tip = _base_tip(state)
        if tip is None:
            raise Refused("testing merges needs a base branch with commits")

        def work(report: Callable[[str], None], cancel: threading.Event) -> TestsReport:
            tester = Tester.for_plan(
                plan, state.repository, timeout=timeout, on_progress=report, cancel=cancel
            )
            return test_merges(state, tester, base_tip=tip, jobs=jobs)

        result = await ls.with_cancellable_progress("wtls: testing merges", work)
        await _publish(ls, session, result, state, tip.oid)
        return to_wire(result)

    @command(server, Command.LAND, LandArgs)
    async def land_command(ls: Server, args: LandArgs) -> Any:
        """Land worktrees on the base branch, tested; the ``wtls land --json`` object."""
        timeout = DEFAULT_TIMEOUT if args.timeout is None else args.timeout
        if not 0.1 <= timeout <= 86400:
            raise Refused("`timeout` must be 0.1 to 86400 seconds")
        engine = await ls.engine_for(args.uri)
        await ls.refresh(engine)
        state = engine.state
        if state is None:
            raise Refused("the repository could not be read")
        session = ls.sessions[engine.repository.key]
        start = args.uri or (session.folders[0] if session.folders else None)
        if start is None:
            raise Refused("no workspace folder is open: pass a `uri` inside the repository")
        trusted = ls.trusted if args.trusted is None else args.trusted
        plan = plan_tests(state, args.command or None, trusted=trusted)
        if plan.not_run is not None:
            raise Refused(plan.not_run)
        if not plan.commands:
            raise Refused(
                "landing needs a test command: pass `command`, or set `test` in .wtls.toml (run "
                "only in a trusted workspace)"
            )
        base = ls.settings.baseBranch or None
        unsaved = await unsaved_finder(ls, start)

        def work(report: Callable[[str], None], cancel: threading.Event) -> LandResult:
            tester = Tester.for_plan(
                plan, state.repository, timeout=timeout, on_progress=report, cancel=cancel
            )
            return land(
                start,
                args.worktrees,
                tester,
                base_branch=base,
                remove=args.remove,
                unsaved=unsaved,
            )

        try:
            return await ls.with_cancellable_progress("wtls: landing worktrees", work)
        finally:
            await ls.refresh(engine)


def _base_tip(state: RepositoryState) -> Commit | None:
    base = state.base_branch
    return commit_info(state.repository.common_dir, f"refs/heads/{base}") if base else None


async def _publish(
    ls: Server, session: RepoSession, report: TestsReport, state: RepositoryState, tip: str
) -> None:
    """Replace the ``tests`` diagnostics of the session's own worktrees (unless cancelled)."""
    own = [wt.path for wt in session.own_worktrees()]
    problems = await _problems(report, state, tip, own)
    if ls.is_open(session) and not report.cancelled:
        ls.diagnostics.replace(CATEGORY, session.key, problems)


async def _problems(
    report: TestsReport, state: RepositoryState, tip: str, own: list[Path]
) -> list[Problem]:
    return await asyncio.to_thread(test_problems, report, state, tip, own)


@dataclass(eq=False)
class _Settle:
    """One repository's re-run when changes settle, shared by every session of the process that
    shows it: the quiet-time timer and the one run."""

    timer: asyncio.TimerHandle | None = None
    task: asyncio.Task[None] | None = None
    #: A change settled since the running run started: run again after it.
    wanted: bool = False
    #: Why the last settled change ran nothing (said once per reason in the log).
    said: str | None = None
    #: The sessions that get the results, each with the runner of its server.
    viewers: Viewers[SettleRunner] = field(default_factory=Viewers)


class SettleRunner:
    """``testOnSettle``: the merge tests again :data:`SETTLE_SECONDS` after the last refresh that
    re-read a worktree; one run per repository at a time (however many sessions of the process
    show it), later changes coalesced into the next. Only for sessions in a trusted workspace
    with the setting on, whose ``.wtls.toml`` has a ``test``; quiet (no progress). When a
    settled change runs nothing, the log says why (once per reason)."""

    def __init__(self, server: Server) -> None:
        self.server = server

    async def on_refresh(self, ls: Server, session: RepoSession, refreshed: Refreshed) -> None:
        """A repository was re-read: (re)start its quiet-time timer when a worktree was."""
        if not ls.is_open(session) or not (refreshed.touched or refreshed.listing_changed):
            return
        work = session.shared.feature_state(_Settle, _Settle)
        work.viewers.add(session, self)
        if refreshed.replayed:
            return  # a session joined: nothing changed to test
        if work.timer is not None:
            work.timer.cancel()
        loop = asyncio.get_running_loop()
        work.timer = loop.call_later(SETTLE_SECONDS, self._settled, session.shared, work)

    @staticmethod
    def _settled(shared: SharedRepository, work: _Settle) -> None:
        work.timer = None
        work.wanted = True
        if (work.task is None or work.task.done()) and not shared.closed:
            # The repository's task, not this window's: it goes on if this window closes.
            work.task = shared.spawn(
                SettleRunner._runs(shared, work), "tests on settle", background=True
            )

    @staticmethod
    async def _runs(shared: SharedRepository, work: _Settle) -> None:
        while work.wanted and not shared.closed:
            work.wanted = False
            viewers = work.viewers.live()
            if not viewers:
                return
            session = viewers[0][0]
            why = await SettleRunner._run(session, [runner for _, runner in viewers])
            if why is not None and why != work.said:
                for _, runner in viewers:
                    runner.server.log_message(
                        f"wtls: tests on settle: not run: {why}", types.MessageType.Log
                    )
            work.said = why

    @staticmethod
    async def _run(session: RepoSession, runners: list[SettleRunner]) -> str | None:
        """Test the settled state for the sessions that want it; why nothing ran, or None."""
        if not any(r.server.settings.testOnSettle for r in runners):
            return "the setting wtls.testOnSettle is off"
        wanting = [r for r in runners if r.server.settings.testOnSettle and r.server.trusted]
        if not wanting:
            return "the workspace is not trusted"
        state = session.engine.state
        if state is None:
            return "the repository could not be read"
        try:
            plan = plan_tests(state, None, trusted=True)
        except Refused as exc:
            return str(exc)
        if plan.not_run is not None:
            return plan.not_run
        if not plan.commands:
            return "no `test` in .wtls.toml"
        tip = _base_tip(state)
        if tip is None:
            return "no base branch with commits"
        tester = Tester.for_plan(plan, state.repository, timeout=DEFAULT_TIMEOUT)
        result = await asyncio.to_thread(test_merges, state, tester, base_tip=tip, jobs=1)
        for viewer, runner in session.shared.feature_state(_Settle, _Settle).viewers.live():
            if runner in wanting:
                await _publish(runner.server, viewer, result, state, tip.oid)
        return None
