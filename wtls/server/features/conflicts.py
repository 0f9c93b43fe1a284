"""Conflict foresight in the editor: predicted merge conflicts as diagnostics, live.

After every refresh of a repository (and on every edit of an open buffer) the core
:class:`~wtls.predict.ConflictPredictor` runs in a worker thread, at most one run per repository
at a time; changes that arrive meanwhile are coalesced into the next run. Its result goes to:

* the ``wtls/worktrees`` notification (per worktree ``conflicts``, and ``mergeOrder``), through
  :meth:`Engine.set_conflicts`;
* diagnostics on this session's own worktrees' files, open or not: a Warning on the lines that
  will conflict, naming the other worktree, its branch and its lines; an Information hint where
  two worktrees change the same or nearby lines but git would still merge cleanly. They clear
  when the collision is gone.

Unsaved buffers count: an open document whose text differs from the file on disk is given to
the predictor as an overlay. The ``wtls.check`` command returns the ``wtls check --json`` object.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from wtls.arguments import CheckArgs
from wtls.engine import Refreshed
from wtls.errors import Refused
from wtls.git import GitError
from wtls.overlays import buffer_overlays
from wtls.predict import ConflictPredictor, Prediction, notices_for
from wtls.predict.models import CheckPayload
from wtls.problems import Problem
from wtls.server.base import RepoSession, Server
from wtls.server.features.documents import open_texts
from wtls.server.protocol import Command
from wtls.server.rpc import command, uri_to_path
from wtls.worktrees import RepositoryError, RepositoryState, WorktreeConflict

log = logging.getLogger(__name__)

CATEGORY = "conflicts"
CONFLICT_CODE = "predicted-conflict"
OVERLAP_CODE = "predicted-overlap"
#: Quiet time after a keystroke before an unsaved buffer is predicted again.
TYPING_DELAY = 0.3


@dataclass
class _RepoWork:
    """Per-repository prediction state of the server."""

    predictor: ConflictPredictor
    #: Worktrees changed since the last run; None: anything may have changed.
    changed: set[Path] | None = field(default_factory=set)
    wanted: bool = False
    task: asyncio.Task[None] | None = None
    last: Prediction | None = None
    typing: asyncio.TimerHandle | None = None


class ConflictFeature:
    """Keeps predictions current for every repository session of the server."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._work: dict[str, _RepoWork] = {}

    def _for(self, session: RepoSession) -> _RepoWork:
        work = self._work.get(session.key)
        if work is None or work.predictor.repo != session.engine.repository:
            work = _RepoWork(predictor=ConflictPredictor(session.engine.repository), changed=None)
            self._work[session.key] = work
        return work

    # ---------------------------------------------------------------- triggers
    async def on_refresh(self, ls: Server, session: RepoSession, refreshed: Refreshed) -> None:
        """A repository was re-read: predict again for the worktrees that changed."""
        if ls.sessions.get(session.key) is not session:
            self._work.pop(session.key, None)
            return
        work = self._for(session)
        if refreshed.listing_changed:
            work.changed = None
        elif work.changed is not None:
            work.changed |= set(refreshed.touched)
        self.schedule(session)

    async def on_document(self, ls: Server, uri: str) -> None:
        """An open buffer changed (or opened, or closed): predict again shortly."""
        path = uri_to_path(uri)
        session = ls.session_for(path) if path is not None else None
        if session is None:
            return
        work = self._for(session)
        if work.typing is not None:
            work.typing.cancel()
        loop = asyncio.get_running_loop()
        work.typing = loop.call_later(TYPING_DELAY, self.schedule, session)

    def schedule(self, session: RepoSession) -> None:
        """Make sure a prediction run follows (coalescing with one in progress)."""
        if self.server.sessions.get(session.key) is not session:
            return
        work = self._for(session)
        work.wanted = True
        if work.task is None or work.task.done():
            work.task = self.server.spawn_task(self._run(session, work), "conflict prediction")

    # ---------------------------------------------------------------- the run loop
    async def _run(self, session: RepoSession, work: _RepoWork) -> None:
        while work.wanted and self.server.sessions.get(session.key) is session:
            work.wanted = False
            if not self.server.settings.conflictPrediction:
                await self._publish(session, work, None)
                continue
            state = session.engine.state
            if state is None:
                continue
            changed, work.changed = work.changed, set()
            texts = self._open_texts(state)
            try:
                prediction = await asyncio.to_thread(
                    _predict, work.predictor, state, changed, texts
                )
            except (GitError, RepositoryError, OSError) as exc:
                log.warning("conflict prediction failed for %s: %s", session.key, exc)
                self.server.log_message(f"wtls: conflict prediction failed: {exc}")
                work.changed = None
                continue
            await self._publish(session, work, prediction)

    def _open_texts(self, state: RepositoryState) -> dict[Path, str]:
        """Open documents of this repository's worktrees (compared with the disk in a thread)."""
        return {p: text for p, text in open_texts(self.server).items() if state.find(p) is not None}

    async def _publish(
        self, session: RepoSession, work: _RepoWork, prediction: Prediction | None
    ) -> None:
        """Hand the prediction to the engine (notification) and publish the diagnostics."""
        work.last = prediction
        state = session.engine.state
        conflicts: dict[Path, tuple[WorktreeConflict, ...]] = {}
        problems: list[Problem] = []
        if prediction is not None and state is not None:
            for wt in state.worktrees:
                found = prediction.conflicts_for(wt.path)
                if found:
                    conflicts[wt.path] = tuple(found)
            for wt in session.own_worktrees():
                problems.extend(conflict_problems(prediction, wt.path))
        merge_order = prediction.merge_order if prediction is not None else None
        if not self.server.is_open(session):
            return  # closed while predicting
        if session.engine.set_conflicts(conflicts, merge_order):
            await self.server.publish_state(session)
        self.server.diagnostics.replace(CATEGORY, session.key, problems)

    # ---------------------------------------------------------------- command
    async def check(self, ls: Server, args: CheckArgs) -> CheckPayload:
        """``wtls.check {uri?}``: predict now and return the ``wtls check --json`` object."""
        engine = await ls.engine_for(args.uri)
        session = ls.sessions[engine.repository.key]
        if engine.state is None:
            await ls.refresh(engine)
        state = engine.state
        if state is None:
            raise Refused(f"could not read the repository {engine.repository.key}")
        work = self._for(session)
        prediction = await asyncio.to_thread(
            _predict, work.predictor, state, None, self._open_texts(state)
        )
        await self._publish(session, work, prediction)
        return prediction.check_payload()


def _predict(
    predictor: ConflictPredictor,
    state: RepositoryState,
    changed: set[Path] | None,
    texts: Mapping[Path, str],
) -> Prediction:
    """Blocking: overlays from the buffers that differ from disk, then the prediction."""
    return predictor.update(state, changed=changed, overlays=buffer_overlays(texts))


def conflict_problems(prediction: Prediction, worktree: Path) -> list[Problem]:
    """The diagnostics of one worktree's files, as editor-neutral problems (0-based lines)."""
    out: list[Problem] = []
    for notice in notices_for(prediction, worktree):
        out.append(
            Problem(
                path=notice.file,
                severity="warning" if notice.severity == "warning" else "information",
                code=CONFLICT_CODE if notice.severity == "warning" else OVERLAP_CODE,
                message=notice.message,
                line=notice.start - 1,
                end_line=notice.end - 1,
                data={
                    "other": str(notice.other),
                    "branch": notice.other_branch,
                    "kind": notice.kind,
                    "againstBase": notice.against_base,
                },
            )
        )
    return out


def register(server: Server) -> None:
    """Predict conflicts after refreshes and buffer edits; add the ``wtls.check`` command."""
    feature = ConflictFeature(server)
    server.refresh_hooks.append(feature.on_refresh)
    server.document_hooks.append(feature.on_document)

    @command(server, Command.CHECK, CheckArgs)
    async def check(ls: Server, args: CheckArgs) -> CheckPayload:
        """Predict merge conflicts now; the ``wtls check --json`` object."""
        return await feature.check(ls, args)
