"""The CLI's ``list``, ``status`` and ``check`` answered by the repository's engine, from its live
state and its predictor's cache: what the engine's ``query`` hello runs (:mod:`wtls.daemon.ask`
asks; ``wtls engine`` hands this function to :func:`wtls.daemon.engine.main`). Also the
lifecycle commands' question (``unsaved``): which of the sessions' editor buffers inside the
paths a command will delete or rewrite are unsaved (:mod:`wtls.unsaved`).

An answer is given only when it is exactly what the CLI alone would print: the state is brought
up to date first (:meth:`~wtls.server.shared.SharedRepository.sync`: every change made before the
question is read), and the text comes from the same functions (:mod:`wtls.cli.reports`).
Anything else (other commands or flags, ``check --test``, a path in another repository, an engine
whose sessions set another base branch, a broken worktree the CLI explains) is answered
``{"ok": false, "fallback": true}``: the CLI then reads the repository itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from wtls.cli.reports import as_read_alone, check_report, list_report, status_report
from wtls.daemon.ask import parse_question
from wtls.engine import EngineSettings
from wtls.git import GitError
from wtls.server.features.conflicts import shared_predictor
from wtls.server.shared import SHARED, SharedRepositories
from wtls.unsaved import UnsavedAnswer, UnsavedQuestion, unsaved_in
from wtls.watch import ChangeSet
from wtls.worktrees import RepositoryError, discover

log = logging.getLogger(__name__)


def _fallback(why: str) -> dict[str, Any]:
    return {"ok": False, "fallback": True, "error": why}


async def answer_query(
    request: dict[str, Any], shared: SharedRepositories = SHARED
) -> dict[str, Any]:
    """The answer to the hello ``request`` (``argv``: the command line after ``wtls``, ``cwd``:
    the caller's folder): ``{"stdout": text, "code": exit code}``, or a fallback."""
    news = request.get("news")
    if news is not None:
        return await _news(news, shared)
    if request.get("unsaved") is not None:
        return await _unsaved(request, shared)
    argv = request.get("argv")
    cwd = request.get("cwd")
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        return {"ok": False, "error": "a query needs `argv`, a list of strings"}
    if not isinstance(cwd, str) or not os.path.isabs(cwd):
        return {"ok": False, "error": "a query needs `cwd`, an absolute path"}
    question = parse_question(argv)
    if question is None:
        return _fallback("the engine answers only plain list, status and check")
    raw = question.path or "."
    folder = Path(cwd, raw)
    try:
        folder = await asyncio.to_thread(folder.resolve)
        repository = await asyncio.to_thread(discover, folder)
        hub = await shared.open_warm(repository, EngineSettings())
    except (RepositoryError, GitError, OSError) as exc:
        return _fallback(str(exc))
    if hub.engine.settings != EngineSettings():
        return _fallback("the sessions of this engine set another base branch or ignore rules")
    if not await hub.sync():
        await hub.refresh(ChangeSet(everything=True))
    state = hub.engine.state
    if state is None or hub.last_error is not None:
        return _fallback("the engine could not read the repository")
    if question.command == "list":
        if not question.no_size:
            # Walked afresh, as the CLI alone would (the sessions' sizes may be a minute old).
            await asyncio.to_thread(hub.engine.measure_disk, 0)
            state = hub.engine.state or state
        alone = as_read_alone(state, sizes=not question.no_size)
        report = list_report(alone, folder, as_json=question.json)
    elif question.command == "status":
        if state.find(folder) is None:
            return _fallback("not in a worktree this repository lists")
        alone = as_read_alone(state, sizes=False)
        asker = request.get("peerPid")
        report = await asyncio.to_thread(
            lambda: status_report(
                alone,
                folder,
                as_json=question.json,
                asker=asker if isinstance(asker, int) else None,
            )
        )
    else:
        from wtls.errors import Refused
        from wtls.testplan import plan_tests

        try:
            plan = await asyncio.to_thread(plan_tests, state, None, trusted=False)
        except Refused as exc:
            return _fallback(str(exc))
        if plan.not_run is not None or plan.commands:
            return _fallback("the repository's .wtls.toml has a test: the CLI reports on it")
        predictor = shared_predictor(hub)
        prediction = await asyncio.to_thread(predictor.update, state)
        report = check_report(
            prediction, as_json=question.json, order=question.order, cwd=Path(cwd)
        )
    return {"stdout": report.stdout, "code": report.code}


async def _news(news: Any, shared: SharedRepositories) -> dict[str, Any]:
    """An agent hook's conflict news (``{"worktree", "file"}``) from the warm predictor."""
    from wtls.hooks import news_text

    if not isinstance(news, dict):
        return {"ok": False, "error": "`news` must be an object"}
    worktree, file = news.get("worktree"), news.get("file")
    if not (isinstance(worktree, str) and isinstance(file, str)):
        return {"ok": False, "error": "`news` needs `worktree` and `file` (strings)"}
    if not (os.path.isabs(worktree) and os.path.isabs(file)):
        return {"ok": False, "error": "`news` paths must be absolute"}
    try:
        root = await asyncio.to_thread(lambda: Path(os.path.realpath(worktree)))
        target = await asyncio.to_thread(lambda: Path(os.path.realpath(file)))
        repository = await asyncio.to_thread(discover, root)
        hub = await shared.open_warm(repository, EngineSettings())
    except (RepositoryError, GitError, OSError) as exc:
        return _fallback(str(exc))
    if not await hub.sync():
        await hub.refresh(ChangeSet(everything=True))
    state = hub.engine.state
    here = state.find(root) if state is not None else None
    if state is None or here is None:
        return {"news": None}
    try:
        rel = target.relative_to(here.path).as_posix()
    except ValueError:
        return {"news": None}  # a file outside this worktree
    predictor = shared_predictor(hub)
    prediction = await asyncio.to_thread(
        lambda: predictor.update(state, changed=None, involving=here.path)
    )
    return {"news": news_text(state, prediction, here.path, rel)}


async def _unsaved(request: dict[str, Any], shared: SharedRepositories) -> dict[str, Any]:
    """``{"unsaved": {"targets": [...]}}``: the unsaved buffers of every session of the
    repository inside the targets (taken on the loop, compared with the disk in a thread)."""
    try:
        question = UnsavedQuestion.from_json(request.get("unsaved"))
    except ValueError as exc:
        return {"ok": False, "error": str(exc)}
    # The sessions joined under the real common git dir (the engine checked that the hello's
    # repository is this one, through links too).
    key = request.get("repository")
    real = await asyncio.to_thread(os.path.realpath, key) if isinstance(key, str) else None
    hub = shared.get(real) if real is not None else None
    buffers = hub.open_buffers() if hub is not None else []
    found = await asyncio.to_thread(unsaved_in, buffers, question.targets)
    return {"unsaved": UnsavedAnswer(buffers=found).to_json()}
