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
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wtls.arguments import LandArgs, TestMergesArgs
from wtls.errors import Refused
from wtls.land import LandResult, land
from wtls.predict.commits import commit_info
from wtls.problems import Problem
from wtls.semantic import Tester, TestsReport, plan_tests, test_merges, test_problems
from wtls.server.base import Server
from wtls.server.protocol import Command
from wtls.server.rpc import command
from wtls.testrun import DEFAULT_TIMEOUT
from wtls.wire import to_wire
from wtls.worktrees import RepositoryState

#: The diagnostics category of test results.
CATEGORY = "tests"


def register(server: Server) -> None:
    """Add the ``wtls.testMerges`` and ``wtls.land`` commands."""

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
        commands, recipe, not_run, notes = plan_tests(state, text or None, trusted=trusted)
        if not_run is not None:
            return to_wire(TestsReport(command="", not_run=not_run))
        if not commands:
            raise Refused(
                "no test command: pass `command`, or set `test` in .wtls.toml (run only in a "
                "trusted workspace)"
            )
        base = state.base_branch
        tip = commit_info(state.repository.common_dir, f"refs/heads/{base}") if base else None
        if tip is None:
            raise Refused("testing merges needs a base branch with commits")

        def work(report: Callable[[str], None], cancel: threading.Event) -> TestsReport:
            tester = Tester(
                repo=state.repository,
                commands=commands,
                recipe=recipe,
                timeout=timeout,
                on_progress=report,
                notes=notes,
                cancel=cancel,
            )
            return test_merges(state, tester, base_tip=tip, jobs=jobs)

        result = await ls.with_cancellable_progress("wtls: testing merges", work)
        own = [wt.path for wt in session.own_worktrees()]
        problems = await _problems(result, state, tip.oid, own)
        if ls.is_open(session) and not result.cancelled:
            ls.diagnostics.replace(CATEGORY, session.key, problems)
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
        commands, recipe, not_run, notes = plan_tests(state, args.command or None, trusted=trusted)
        if not_run is not None:
            raise Refused(not_run)
        if not commands:
            raise Refused(
                "landing needs a test command: pass `command`, or set `test` in .wtls.toml (run "
                "only in a trusted workspace)"
            )
        base = ls.settings.baseBranch or None

        def work(report: Callable[[str], None], cancel: threading.Event) -> LandResult:
            tester = Tester(
                repo=state.repository,
                commands=commands,
                recipe=recipe,
                timeout=timeout,
                on_progress=report,
                notes=notes,
                cancel=cancel,
            )
            return land(start, args.worktrees, tester, base_branch=base, remove=args.remove)

        try:
            return await ls.with_cancellable_progress("wtls: landing worktrees", work)
        finally:
            await ls.refresh(engine)


async def _problems(
    report: TestsReport, state: RepositoryState, tip: str, own: list[Path]
) -> list[Problem]:
    return await asyncio.to_thread(test_problems, report, state, tip, own)
