"""Repository sessions: opening workspace folders, retrying the broken ones, closing.

One :class:`~wtls.server.shared.RepoSession` per repository open in the workspace: this
session's view of the process's :class:`~wtls.server.shared.SharedRepository` (the engine and the
one file watcher over every worktree and the common git dir). A folder that cannot be
opened (no repository, a broken link, a worktree git does not list) gets a message, a
diagnostic, and a poll of its link files that opens it again once they change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lsprotocol import types

from wtls.engine import Engine
from wtls.errors import Refused
from wtls.folders import broken_link_problem, discover_listed, link_signature, unlisted_report
from wtls.git import GitError, require_git
from wtls.problems import Problem
from wtls.repair import is_listed
from wtls.server.base import RepoSession, Server
from wtls.server.features.documents import open_texts
from wtls.server.progress import Progress
from wtls.server.refresh import RefreshPipeline
from wtls.server.shared import SharedRepositories
from wtls.worktrees import BrokenWorktreeLink, Repository, RepositoryError, discover

log = logging.getLogger(__name__)

#: Diagnostics category of folders that could not be opened.
BROKEN_CATEGORY = "broken"
#: How often the link files of a folder that could not be opened are looked at (seconds).
RETRY_INTERVAL = 1.0


class SessionManager:
    """Opens and closes the server's repository sessions (kept in ``ls.sessions``)."""

    def __init__(
        self,
        ls: Server,
        pipeline: RefreshPipeline,
        progress: Progress,
        shared: SharedRepositories,
    ) -> None:
        self._ls = ls
        self._shared = shared
        self._pipeline = pipeline
        self._progress = progress
        #: Workspace folders that could not be opened: the message said about each.
        self._folder_errors: dict[Path, str] = {}
        #: Their link files as read just before the failed attempt (see :meth:`_retry_folder`).
        self._folder_signatures: dict[Path, tuple[Any, ...]] = {}
        self._opening = asyncio.Lock()
        #: Folders with an error whose link files are polled (see :meth:`_retry_folder`).
        self._retrying: set[Path] = set()

    # ---------------------------------------------------------------- finding sessions
    def session_for(self, path: Path | str | None) -> RepoSession | None:
        """The open session whose repository contains ``path`` (None: the first folder's)."""
        if path is None:
            return next(iter(self._ls.sessions.values()), None)
        target = Path(path).resolve()
        for session in self._ls.sessions.values():
            state = session.state
            if state is not None and state.find(target) is not None:
                return session
            common = session.engine.repository.common_dir
            if target == common or common in target.parents:
                return session
        return None

    async def engine_for(self, path: Path | str | None) -> Engine:
        """The engine of the repository containing ``path``, opening a session if needed.

        Raises :class:`Refused` when ``path`` is not in a repository, :class:`GitUnavailable`
        when git is missing or too old (no session is opened with an unusable git).
        """
        session = self.session_for(path)
        if session is not None:
            return session.engine
        if path is None:
            raise Refused("no repository is open in this workspace")
        await asyncio.to_thread(require_git)
        try:
            repo = await asyncio.to_thread(discover, Path(path))
        except RepositoryError as exc:
            raise Refused(str(exc)) from exc
        async with self._opening:
            session = self._ls.sessions.get(repo.key)
            if session is None:
                session = await self._open_session(repo, [])
        return session.engine

    def is_open(self, session: RepoSession) -> bool:
        """Whether ``session`` is still the server's session for its repository (background
        work of a closed session must not publish anything)."""
        return self._ls.sessions.get(session.key) is session

    # ---------------------------------------------------------------- opening folders
    async def open_folders(self, folders: Iterable[Path]) -> None:
        """Discover the repositories of ``folders`` and start watching them.

        A folder that cannot be opened (no repository, a broken link, a worktree git does not
        list) gets a message, a diagnostic, and a poll of its link files
        (:meth:`_retry_folder`) that opens it again once they change.
        """
        for folder in list(folders):
            await self._open_folder(folder)

    async def _open_folder(self, folder: Path) -> None:
        ls = self._ls
        # Read the link files before git does: a change made while git reads shows as a
        # difference to the retry poll and is never missed.
        signature = await asyncio.to_thread(link_signature, folder)
        try:
            repo, missing = await asyncio.to_thread(discover_listed, folder)
        except BrokenWorktreeLink as exc:
            self._report_folder_error(folder, str(exc), signature, [broken_link_problem(exc)])
            return
        except (RepositoryError, GitError, OSError) as exc:
            self._report_folder_error(folder, str(exc), signature)
            return
        if missing is not None:
            message, problems = unlisted_report(folder, missing)
            # Nothing named is mostly a change in progress: a diagnostic, not a pop-up.
            self._report_folder_error(folder, message, signature, problems, popup=bool(missing))
            return
        if folder not in ls.workspace_folders():
            return  # removed from the workspace meanwhile
        # One opener at a time: two folders of one repository opened at once (a retry and a
        # workspace change) must share one session, not start two watchers.
        async with self._opening:
            session = ls.sessions.get(repo.key)
            if session is None:
                try:
                    await self._open_session(repo, [folder])
                except (RepositoryError, GitError, OSError) as exc:
                    self._report_folder_error(folder, str(exc), signature)
                    return
            elif folder not in session.folders:
                session.folders.append(folder)
                await self._pipeline.publish(session, force=True)
        self._folder_signatures.pop(folder, None)
        if self._folder_errors.pop(folder, None) is not None:
            ls.diagnostics.replace(BROKEN_CATEGORY, folder.as_posix(), [])

    def forget_folder(self, folder: Path) -> None:
        """A workspace folder was removed: stop retrying it and clear what was said about it."""
        self._folder_signatures.pop(folder, None)
        if self._folder_errors.pop(folder, None) is not None:
            self._ls.diagnostics.replace(BROKEN_CATEGORY, folder.as_posix(), [])

    def _report_folder_error(
        self,
        folder: Path,
        message: str,
        signature: tuple[Any, ...],
        problems: list[Problem] | None = None,
        *,
        popup: bool = True,
    ) -> None:
        ls = self._ls
        if folder not in ls.workspace_folders():
            return  # removed from the workspace meanwhile
        self._folder_signatures[folder] = signature
        if folder not in self._retrying and not ls.shutting_down:
            self._retrying.add(folder)
            ls.spawn_task(self._retry_folder(folder), "retry folder")
        # The diagnostics always follow the latest attempt (the store sends only changes);
        # the message and pop-up are said once, not on every retry.
        ls.diagnostics.replace(BROKEN_CATEGORY, folder.as_posix(), problems or [])
        if self._folder_errors.get(folder) == message:
            return
        # Several folders of one broken worktree: one pop-up, not one per folder.
        said = message in self._folder_errors.values()
        self._folder_errors[folder] = message
        ls.log_message(f"wtls: {message}", types.MessageType.Warning)
        if problems and popup and not said:
            ls.show_message(message, types.MessageType.Error)

    async def _retry_folder(self, folder: Path) -> None:
        """Open a failed workspace folder again once its link files change.

        A repair, a move back or a ``git init`` made from a terminal is seen by no watcher (the
        folder belongs to no open session); polling a few ``stat`` calls a second is cheap. The
        signature compared against is the one read before the failed attempt, so a change that
        raced with that attempt is retried too.
        """
        try:
            while folder in self._folder_errors and not self._ls.shutting_down:
                await asyncio.sleep(RETRY_INTERVAL)
                if folder not in self._ls.workspace_folders():
                    self.forget_folder(folder)
                    break
                now = await asyncio.to_thread(link_signature, folder)
                if now == self._folder_signatures.get(folder):
                    continue
                try:
                    await self._open_folder(folder)
                except Exception:  # keep polling: the next change may fix it
                    log.exception("wtls: reopening %s failed", folder)
                    self._folder_signatures[folder] = now
        finally:
            self._retrying.discard(folder)

    # ---------------------------------------------------------------- sessions
    async def _open_session(self, repo: Repository, folders: list[Path]) -> RepoSession:
        """Join the process's shared repository (opening it if no session has: read, watch,
        read again) and publish its state to this client."""
        ls = self._ls
        token = await self._progress.begin("wtls: reading worktrees")
        try:
            session = await self._shared.join(
                repo,
                ls.settings.engine_settings(),
                self._pipeline,
                folders,
                debounce_ms=ls.settings.debounceMs,
            )
            session.documents = lambda: open_texts(ls)
            ls.sessions[session.key] = session
            refreshed = session.shared.full_refreshed()
            if refreshed is not None:
                session.first_work = await self._pipeline.after_refresh(
                    session, refreshed, force=True
                )
        finally:
            self._progress.end(token)
        return session

    def close_session(self, session: RepoSession) -> None:
        """This client no longer shows a repository: clear what it published and leave the
        shared repository (the last session out stops its watcher)."""
        if self.is_open(session):
            self._ls.sessions.pop(session.key, None)
        self._leave(session)
        self._ls.diagnostics.clear_owner(session.key)

    async def stop(self) -> None:
        """Leave every shared repository (the server is shutting down)."""
        for session in list(self._ls.sessions.values()):
            self._ls.sessions.pop(session.key, None)
            self._leave(session)

    def _leave(self, session: RepoSession) -> None:
        """Leave the shared repository, then tell the features: what this session added (its
        unsaved buffers) no longer counts for the sessions that still show it."""
        self._shared.leave(session)
        for hook in self._ls.close_hooks:
            hook(self._ls, session)

    # ---------------------------------------------------------------- after a refresh
    async def recheck_folders(self, session: RepoSession) -> None:
        """After a listing change: open again the workspace folders this repository no longer
        lists (git data deleted, folder moved or removed: the error names the case and its
        fix), and retry every folder that could not be opened (a worktree that was still being
        added when its folder was opened is listed now)."""
        state = session.state
        if state is None:
            return
        listed = [w.path for w in state.worktrees]
        repo = session.engine.repository
        lost: list[Path] = []
        for folder in list(session.folders):
            if not await asyncio.to_thread(is_listed, repo, folder, listed):
                lost.append(folder)
                if folder in session.folders:
                    session.folders.remove(folder)
        await self.open_folders([*lost, *(f for f in self._folder_errors if f not in lost)])

    async def refresh_failed(self, session: RepoSession, exc: Exception) -> None:
        """A refresh failed with a new error: say so; a repository that is gone is closed and
        its folders are opened again (the error then names the case)."""
        self._ls.log_message(
            f"wtls: could not read {session.key}: {exc}", types.MessageType.Warning
        )
        # The repository may be gone or broken: re-discover the workspace folders once.
        folders = list(session.folders)
        common = session.engine.repository.common_dir
        if not common.exists():
            self.close_session(session)
            await self.open_folders(folders)
