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
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from wtls.arguments import CheckArgs
from wtls.engine import Refreshed, git_writing_until
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
from wtls.server.shared import SharedRepository, Viewers
from wtls.watch import ChangeSet
from wtls.worktrees import RepositoryError, RepositoryState, WorktreeConflict

log = logging.getLogger(__name__)

CATEGORY = "conflicts"
CONFLICT_CODE = "predicted-conflict"
OVERLAP_CODE = "predicted-overlap"
#: Files written since the last run remembered per worktree at most (a flood of writes).
WRITTEN_LIMIT = 5000
#: More files written at once than this are a bulk operation: predicted after the re-read.
EARLY_FILES = 100
#: While typing goes on, the quiet time after a keystroke before the buffer is predicted again
#: (the first keystroke after a pause is predicted at once).
TYPING_DELAY = 0.3


@dataclass(eq=False)
class _RepoWork:
    """A repository's prediction, shared by every session of the process that shows it: one
    predictor, one run at a time, the unsaved buffers of all of them as overlays."""

    predictor: ConflictPredictor
    #: Worktrees changed since the last run; None: anything may have changed.
    changed: set[Path] | None = None
    wanted: bool = False
    task: asyncio.Task[None] | None = None
    typing: asyncio.TimerHandle | None = None
    #: When the last run ended (the event loop's clock).
    last_run_end: float = float("-inf")
    #: The sessions showing the result, each with the feature of its server.
    viewers: Viewers[ConflictFeature] = field(default_factory=Viewers)
    #: Files the watcher saw written since the last run, per worktree root: predicted at once,
    #: before the re-read of the worktree's status (which the run after it then reuses).
    written: dict[Path, set[Path]] = field(default_factory=dict)

    def files_written(self, change: ChangeSet) -> None:
        """Watcher events (shared repository's change listener): a plain file write starts a
        run now. A change of git data (HEAD, index, refs, the worktree list) waits for the
        re-read, whose refresh hook schedules the run."""
        if change.everything or change.listing or change.refs:
            return
        roots = [root for root in change.files if root not in change.git_data]
        if not roots or not self.viewers.live():
            return
        for root in roots:
            files = self.written.setdefault(root, set())
            if len(files) <= WRITTEN_LIMIT:  # beyond it the snapshot's fingerprint is unknown
                files.update(change.files[root])
        self.predict_again()

    def predict_again(self) -> None:
        """Make sure a run follows, through any session still showing the repository."""
        for session, feature in self.viewers.live()[:1]:
            feature.schedule(session)

    def open_texts(self, state: RepositoryState) -> dict[Path, str]:
        """The open buffers of every viewing session in ``state``'s worktrees (the overlays)."""
        texts: dict[Path, str] = {}
        for _, feature in self.viewers.live():
            texts.update(feature._open_texts(state))
        return texts


def _work_of(shared: SharedRepository) -> _RepoWork:
    def make() -> _RepoWork:
        work = _RepoWork(predictor=ConflictPredictor(shared.engine.repository))
        shared.change_listeners.append(work.files_written)
        return work

    return shared.feature_state(_RepoWork, make)


def shared_predictor(shared: SharedRepository) -> ConflictPredictor:
    """The repository's one conflict predictor (its snapshots and merges are cached: the CLI's
    ``wtls check`` answered by the engine reuses what the sessions' predictions computed)."""
    return _work_of(shared).predictor


class ConflictFeature:
    """Keeps predictions current for every repository session of the server."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def _for(self, session: RepoSession) -> _RepoWork:
        work = _work_of(session.shared)
        work.viewers.add(session, self)
        return work

    # ---------------------------------------------------------------- triggers
    async def on_refresh(self, ls: Server, session: RepoSession, refreshed: Refreshed) -> None:
        """A repository was re-read: predict again for the worktrees that changed."""
        if not ls.is_open(session):
            return
        work = self._for(session)
        if refreshed.replayed:
            pass  # a session joined: nothing changed, the run only publishes to it too
        elif refreshed.listing_changed:
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
            work.typing = None
        loop = asyncio.get_running_loop()
        idle = work.task is None or work.task.done()
        if idle and loop.time() - work.last_run_end >= TYPING_DELAY:
            # Leading edge: the first keystroke after a pause is predicted at once.
            self.schedule(session)
        else:  # typing: once it pauses
            # Through any viewer when it fires: this window may have closed meanwhile.
            work.typing = loop.call_later(TYPING_DELAY, work.predict_again)

    def on_close(self, ls: Server, session: RepoSession) -> None:
        """A session of this server left its repository (its window closed, its folder was
        removed): its unsaved buffers no longer count, so predict again for the sessions that
        still show the repository (else they keep a warning about an edit gone with it)."""
        if session.shared.closed:
            return
        _work_of(session.shared).predict_again()

    def schedule(self, session: RepoSession) -> None:
        """Make sure a prediction run follows (coalescing with one in progress, whichever
        session of the process asked)."""
        if not self.server.is_open(session):
            return
        work = self._for(session)
        work.wanted = True
        if work.task is None or work.task.done():
            # The repository's task, not this window's: it goes on if this window closes.
            work.task = session.shared.spawn(self._run(session.shared, work), "conflict prediction")

    # ---------------------------------------------------------------- the run loop
    async def _run(self, shared: SharedRepository, work: _RepoWork) -> None:
        while work.wanted and not shared.closed:
            work.wanted = False
            viewers = work.viewers.live()
            if not viewers:
                return
            if not any(f.server.settings.conflictPrediction for _, f in viewers):
                await self._publish(work, None)
                continue
            state = shared.engine.state
            if state is None:
                continue
            changed, work.changed = work.changed, set()
            written, work.written = work.written, {}
            texts = work.open_texts(state)
            try:
                prediction = await asyncio.to_thread(
                    _predict, work.predictor, state, changed, texts, written
                )
            except (GitError, RepositoryError, OSError) as exc:
                log.warning("conflict prediction failed for %s: %s", shared.key, exc)
                for _, feature in viewers:
                    feature.server.log_message(f"wtls: conflict prediction failed: {exc}")
                work.changed = None
                work.written.clear()  # everything is snapshotted again
                continue
            work.last_run_end = asyncio.get_running_loop().time()
            await self._publish(work, prediction)

    def _open_texts(self, state: RepositoryState) -> dict[Path, str]:
        """Open documents of this repository's worktrees (compared with the disk in a thread)."""
        return {p: text for p, text in open_texts(self.server).items() if state.find(p) is not None}

    @staticmethod
    async def _publish(work: _RepoWork, prediction: Prediction | None) -> None:
        """Hand the prediction to the engine (notification) and publish the diagnostics of
        every session that shows it, each on its own worktrees' files."""
        viewers = work.viewers.live()
        if not viewers:
            return
        engine = viewers[0][0].engine
        state = engine.state
        conflicts: dict[Path, tuple[WorktreeConflict, ...]] = {}
        if prediction is not None and state is not None:
            for wt in state.worktrees:
                found = prediction.conflicts_for(wt.path)
                if found:
                    conflicts[wt.path] = tuple(found)
        merge_order = prediction.merge_order if prediction is not None else None
        changed = engine.set_conflicts(conflicts, merge_order)
        for session, feature in viewers:
            shown = prediction if feature.server.settings.conflictPrediction else None
            problems: list[Problem] = []
            if shown is not None:
                for wt in session.own_worktrees():
                    problems.extend(conflict_problems(shown, wt.path))
            if changed:
                await feature.server.publish_state(session)
            feature.server.diagnostics.replace(CATEGORY, session.key, problems)

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
        texts = work.open_texts(state)
        prediction = await asyncio.to_thread(_predict, work.predictor, state, None, texts)
        await self._publish(work, prediction)
        return prediction.check_payload()


def _predict(
    predictor: ConflictPredictor,
    state: RepositoryState,
    changed: set[Path] | None,
    texts: Mapping[Path, str],
    written: Mapping[Path, set[Path]] | None = None,
) -> Prediction:
    """Blocking: overlays from the buffers that differ from disk, then the prediction.

    Written files are predicted at once only for what editors and agents do file by file: a
    worktree where a git command is rewriting files (its ``index.lock`` is young: a checkout,
    a merge), where files were deleted (``rm -r``, a repository being deleted: a snapshot
    would write objects into it) or where more than :data:`EARLY_FILES` were written is left
    to the run after the re-read, which waits for git to finish.
    """
    if written:
        now = time.time()
        written = {
            root: files
            for root, files in written.items()
            if len(files) <= EARLY_FILES
            and all(os.path.lexists(f) for f in files)
            and (
                (wt := state.find(root)) is None
                or wt.gitdir is None
                or git_writing_until([wt.gitdir / "index.lock"], now) is None
            )
        }
    return predictor.update(
        state, changed=changed, overlays=buffer_overlays(texts), written=written
    )


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
    server.close_hooks.append(feature.on_close)

    @command(server, Command.CHECK, CheckArgs)
    async def check(ls: Server, args: CheckArgs) -> CheckPayload:
        """Predict merge conflicts now; the ``wtls check --json`` object."""
        return await feature.check(ls, args)
