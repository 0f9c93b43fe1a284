"""The wtls language server: maps the core's live worktree state to LSP.

One :class:`RepoSession` per repository open in the workspace: an engine (core), one file
watcher over every worktree and the common git dir, and the diagnostics it published. File
events arrive on the watcher thread, are coalesced per repository, and refreshed off the event
loop; the ``wtls/worktrees`` notification goes out only when something a client shows changed.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from lsprotocol import types
from pygls.exceptions import (
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcServerError,
)
from pygls.io_ import StdinAsyncReader, StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol

from wtls import __version__
from wtls.engine import Engine, Refreshed, git_writing_until
from wtls.errors import ERROR_CODE, REFUSED_CODE, Refused
from wtls.git import GitError, GitUnavailable, require_git
from wtls.jsontext import dumps
from wtls.locations import BadLocation, file_uri, to_path
from wtls.problems import Problem, stale_problems, worktree_problems
from wtls.repair import Breakage, is_listed, unlisted
from wtls.server.config import Settings, parse_settings
from wtls.server.diagnostics import DiagnosticsStore
from wtls.server.framing import read_loop
from wtls.server.markers_scan import MarkerTracker
from wtls.watch import ChangeSet, RepoWatcher
from wtls.worktrees import (
    BrokenWorktreeLink,
    Repository,
    RepositoryError,
    RepositoryState,
    WorktreeState,
    discover,
    read_gitfile,
    worktree_root,
)

log = logging.getLogger(__name__)

WORKTREES_METHOD = "wtls/worktrees"

RefreshHook = Callable[["WtlsServer", "RepoSession", Refreshed], Awaitable[None]]
DocumentHook = Callable[["WtlsServer", str], Awaitable[None]]
CodeActionProvider = Callable[
    ["WtlsServer", types.CodeActionParams], Awaitable[list[types.CodeAction]]
]
CommandHandler = Callable[["WtlsServer", dict[str, Any]], Awaitable[Any]]
T = TypeVar("T")


@dataclass(eq=False)
class RepoSession:
    """Everything the server keeps for one repository of the workspace."""

    engine: Engine
    #: Workspace folders that belong to this repository, in workspace order.
    folders: list[Path] = field(default_factory=list)
    watcher: RepoWatcher | None = None
    pending: ChangeSet | None = None
    refresh_task: asyncio.Task[None] | None = None
    disk_task: asyncio.Task[None] | None = None
    last_payload: dict[str, Any] | None = None
    #: Worktree paths the last notification announced (new ones are re-read once watched).
    announced: frozenset[Path] = frozenset()
    last_error: str | None = None

    @property
    def key(self) -> str:
        """The repository's identity (its common git dir)."""
        return self.engine.repository.key

    @property
    def state(self) -> RepositoryState | None:
        """The latest state read."""
        return self.engine.state

    def this(self) -> WorktreeState | None:
        """The worktree this session is opened on (the first workspace folder's)."""
        state = self.engine.state
        if state is None:
            return None
        for folder in self.folders:
            wt = state.find(folder)
            if wt is not None:
                return wt
        return None

    def own_worktrees(self) -> list[WorktreeState]:
        """Worktrees that contain a workspace folder (whose files this session reports on)."""
        state = self.engine.state
        if state is None:
            return []
        found: dict[Path, WorktreeState] = {}
        for folder in self.folders:
            wt = state.find(folder)
            if wt is not None:
                found[wt.path] = wt
            # A folder that contains worktrees (e.g. a parent of several) owns all of them.
            for other in state.worktrees:
                if folder in other.path.parents:
                    found[other.path] = other
        return list(found.values())

    def payload(self) -> dict[str, Any]:
        """The ``wtls/worktrees`` object for this repository."""
        state = self.engine.state
        this = self.this()
        if state is None:
            return {"repository": self.key, "this": None, "worktrees": []}
        return state.to_json(this.path if this else None)


class WtlsProtocol(LanguageServerProtocol):
    """pygls' protocol, except that every request gets an answer: one without ``params``, one
    whose params cannot be read, and one arriving after ``shutdown``."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        """JSON-RPC lets a request omit ``params`` (Neovim does for ``request(m, nil)``), which
        pygls cannot structure; and a request pygls cannot read is never answered, so the
        client would wait forever: answer it with an error."""
        if "jsonrpc" in data and "method" in data and "params" not in data:
            data = {**data, "params": None}
        try:
            return super().structure_message(data)
        except Exception:
            if "method" in data and data.get("id") is not None:
                error = JsonRpcInvalidParams(f"invalid params for {data['method']!r}")
                self._send_response(data["id"], error=error.to_response_error())
            raise

    def _send_data(self, data: Any) -> None:
        """pygls' writer, except that the body is valid UTF-8 whatever file names it carries
        (:func:`wtls.jsontext.dumps`) and ``Content-Length`` counts its bytes."""
        if not data:
            return
        if self.writer is None:
            log.error("cannot send: no transport")
            return
        try:
            body = dumps(data, default=self._serialize_message).encode("utf-8")
            if self._include_headers:
                body = (
                    f"Content-Length: {len(body)}\r\n"
                    f"Content-Type: {self.CONTENT_TYPE}; charset={self.CHARSET}\r\n\r\n"
                ).encode("ascii") + body
            self.writer.write(body)  # stdio only: pygls' StdoutWriter writes synchronously
        except BrokenPipeError:
            log.error("cannot send: the client closed the connection")
            raise
        except Exception as error:
            log.exception("cannot send a message")
            self._server._report_server_error(error, JsonRpcInternalError)

    def handle_message(self, message: Any) -> None:
        """LSP: requests after shutdown "should error with InvalidRequest"; pygls drops them
        without a word, which leaves the client waiting forever."""
        method = getattr(message, "method", None)
        msg_id = getattr(message, "id", None)
        if self._shutdown and msg_id is not None and method not in (None, types.EXIT):
            error = JsonRpcInvalidRequest("the server is shutting down")
            self._send_response(msg_id, error=error.to_response_error())
            return
        super().handle_message(message)


class WtlsServer(LanguageServer):
    """pygls server holding one :class:`RepoSession` per repository."""

    def __init__(self) -> None:
        super().__init__("wtls", __version__, protocol_cls=WtlsProtocol)
        self.settings = Settings()
        self.trusted = False
        self.sessions: dict[str, RepoSession] = {}
        self.diagnostics = DiagnosticsStore(self)
        self.markers = MarkerTracker(self)
        self.refresh_hooks: list[RefreshHook] = []
        self.document_hooks: list[DocumentHook] = []
        #: LSP allows one codeAction handler per server; features add providers here.
        self.code_action_providers: list[CodeActionProvider] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Workspace folders that could not be opened: the message said about each.
        self._folder_errors: dict[Path, str] = {}
        #: Their link files as read just before the failed attempt (see :meth:`_retry_folder`).
        self._folder_signatures: dict[Path, tuple[Any, ...]] = {}
        self._opening = asyncio.Lock()
        #: Folders with an error whose link files are polled (see :meth:`_retry_folder`).
        self._retrying: set[Path] = set()
        self._shutting_down = False
        self._pending_problems: list[str] = []

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """Serve on stdin/stdout with :func:`wtls.server.framing.read_loop`, which gets back in
        step after a frame with a bad header (pygls' own loop loses every later message)."""
        self._stop_event = threading.Event()
        reader = StdinAsyncReader(stdin or sys.stdin.buffer, self.thread_pool)
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        try:
            asyncio.run(
                read_loop(self._stop_event, reader, self.protocol, self.report_server_error)
            )
        except BrokenPipeError:
            log.error("the connection to the client is lost: shutting down")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.shutdown()  # type: ignore[no-untyped-call]

    # ---------------------------------------------------------------- helpers for features
    def spawn_task(self, coro: Awaitable[T], name: str) -> asyncio.Task[T]:
        """Run ``coro`` in the background; keep a reference and log its failure."""
        task: asyncio.Task[T] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)

        def done(t: asyncio.Task[T]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("task %s failed", name, exc_info=t.exception())
                self.window_log_message(
                    types.LogMessageParams(
                        type=types.MessageType.Error,
                        message=f"wtls: {name} failed: {t.exception()}",
                    )
                )

        task.add_done_callback(done)
        return task

    def log_message(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        """A line in the client's output channel."""
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    def show_message(
        self, message: str, kind: types.MessageType = types.MessageType.Warning
    ) -> None:
        """A notification the user sees."""
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def workspace_folders(self) -> list[Path]:
        """Workspace folders as paths, in order (root_uri when the client sent no folders)."""
        folders = [p for f in self.workspace.folders.values() if (p := uri_to_path(f.uri))]
        if not folders and self.workspace.root_uri:
            root = uri_to_path(self.workspace.root_uri)
            folders = [root] if root is not None else []
        return [f.resolve() for f in folders]

    def session_for(self, path: Path | str | None) -> RepoSession | None:
        """The open session whose repository contains ``path`` (None: the first folder's)."""
        if path is None:
            return next(iter(self.sessions.values()), None)
        target = Path(path).resolve()
        for session in self.sessions.values():
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
            session = self.sessions.get(repo.key)
            if session is None:
                session = await self._open_session(
                    repo.key, Engine(repo, self.settings.engine_settings()), []
                )
        return session.engine

    async def refresh(self, engine: Engine, change: ChangeSet | None = None) -> None:
        """Refresh a repository now (everything when ``change`` is None) and publish."""
        session = self.sessions.get(engine.repository.key)
        if session is None:
            return
        self.queue_change(session, change or ChangeSet(everything=True))
        if session.refresh_task is not None:
            await asyncio.shield(session.refresh_task)

    # ---------------------------------------------------------------- sessions
    async def open_folders(self, folders: Iterable[Path]) -> None:
        """Discover the repositories of ``folders`` and start watching them.

        A folder that cannot be opened (no repository, a broken link, a worktree git does not
        list) gets a message, a diagnostic, and a poll of its link files
        (:meth:`_retry_folder`) that opens it again once they change.
        """
        for folder in list(folders):
            await self._open_folder(folder)

    async def _open_folder(self, folder: Path) -> None:
        # Read the link files before git does: a change made while git reads shows as a
        # difference to the retry poll and is never missed.
        signature = await asyncio.to_thread(_link_signature, folder)
        try:
            repo, missing = await asyncio.to_thread(_discover_listed, folder)
        except BrokenWorktreeLink as exc:
            self._report_folder_error(folder, str(exc), signature, [_broken_link_problem(exc)])
            return
        except (RepositoryError, GitError, OSError) as exc:
            self._report_folder_error(folder, str(exc), signature)
            return
        if missing is not None:
            message, problems = _unlisted_report(folder, missing)
            # Nothing named is mostly a change in progress: a diagnostic, not a pop-up.
            self._report_folder_error(folder, message, signature, problems, popup=bool(missing))
            return
        if folder not in self.workspace_folders():
            return  # removed from the workspace meanwhile
        # One opener at a time: two folders of one repository opened at once (a retry and a
        # workspace change) must share one session, not start two watchers.
        async with self._opening:
            session = self.sessions.get(repo.key)
            if session is None:
                engine = Engine(repo, self.settings.engine_settings())
                try:
                    await self._open_session(repo.key, engine, [folder])
                except (RepositoryError, GitError, OSError) as exc:
                    self._report_folder_error(folder, str(exc), signature)
                    return
            elif folder not in session.folders:
                session.folders.append(folder)
                await self._publish(session, force=True)
        self._folder_signatures.pop(folder, None)
        if self._folder_errors.pop(folder, None) is not None:
            self.diagnostics.replace("broken", folder.as_posix(), [])

    def forget_folder(self, folder: Path) -> None:
        """A workspace folder was removed: stop retrying it and clear what was said about it."""
        self._folder_signatures.pop(folder, None)
        if self._folder_errors.pop(folder, None) is not None:
            self.diagnostics.replace("broken", folder.as_posix(), [])

    def _report_folder_error(
        self,
        folder: Path,
        message: str,
        signature: tuple[Any, ...],
        problems: list[Problem] | None = None,
        *,
        popup: bool = True,
    ) -> None:
        if folder not in self.workspace_folders():
            return  # removed from the workspace meanwhile
        self._folder_signatures[folder] = signature
        if folder not in self._retrying and not self._shutting_down:
            self._retrying.add(folder)
            self.spawn_task(self._retry_folder(folder), "retry folder")
        # The diagnostics always follow the latest attempt (the store sends only changes);
        # the message and pop-up are said once, not on every retry.
        self.diagnostics.replace("broken", folder.as_posix(), problems or [])
        if self._folder_errors.get(folder) == message:
            return
        # Several folders of one broken worktree: one pop-up, not one per folder.
        said = message in self._folder_errors.values()
        self._folder_errors[folder] = message
        self.log_message(f"wtls: {message}", types.MessageType.Warning)
        if problems and popup and not said:
            self.show_message(message, types.MessageType.Error)

    async def _retry_folder(self, folder: Path) -> None:
        """Open a failed workspace folder again once its link files change.

        A repair, a move back or a ``git init`` made from a terminal is seen by no watcher (the
        folder belongs to no open session); polling a few ``stat`` calls a second is cheap. The
        signature compared against is the one read before the failed attempt, so a change that
        raced with that attempt is retried too.
        """
        try:
            while folder in self._folder_errors and not self._shutting_down:
                await asyncio.sleep(1.0)
                if folder not in self.workspace_folders():
                    self.forget_folder(folder)
                    break
                now = await asyncio.to_thread(_link_signature, folder)
                if now == self._folder_signatures.get(folder):
                    continue
                try:
                    await self._open_folder(folder)
                except Exception:  # keep polling: the next change may fix it
                    log.exception("wtls: reopening %s failed", folder)
                    self._folder_signatures[folder] = now
        finally:
            self._retrying.discard(folder)

    async def _open_session(self, key: str, engine: Engine, folders: list[Path]) -> RepoSession:
        session = RepoSession(engine=engine, folders=folders)
        self.sessions[key] = session
        token = await self._progress_begin("wtls: reading worktrees")
        try:
            # Watch first, then read: a change made while reading is never missed.
            refreshed = await asyncio.to_thread(engine.refresh)
            loop = asyncio.get_running_loop()

            def on_changes(change: ChangeSet) -> None:
                loop.call_soon_threadsafe(self.queue_change, session, change)

            watcher = RepoWatcher(engine.watch_targets(), on_changes)
            await asyncio.to_thread(watcher.start)
            session.watcher = watcher
            refreshed = await asyncio.to_thread(engine.refresh)
            await self._after_refresh(session, refreshed, force=True)
            self.spawn_task(self.markers.scan_session(session, full=True), "marker scan")
        except BaseException:
            self.close_session(session)  # no half-open session for later folders to join
            raise
        finally:
            self._progress_end(token)
        return session

    def is_open(self, session: RepoSession) -> bool:
        """Whether ``session`` is still the server's session for its repository (background
        work of a closed session must not publish anything)."""
        return self.sessions.get(session.key) is session

    def close_session(self, session: RepoSession) -> None:
        """Stop watching a repository and clear what it published."""
        if session.watcher is not None:
            session.watcher.stop()
        if session.disk_task is not None:
            session.disk_task.cancel()
        if self.is_open(session):
            self.sessions.pop(session.key, None)
        self.diagnostics.clear_owner(session.key)

    # ---------------------------------------------------------------- refresh pipeline
    def queue_change(self, session: RepoSession, change: ChangeSet) -> None:
        """Coalesce ``change`` into the session's pending work and make sure a refresh runs."""
        if self._shutting_down or session.key not in self.sessions:
            return
        if session.pending is None:
            session.pending = change
        else:
            session.pending.merge(change)
        if session.refresh_task is None or session.refresh_task.done():
            session.refresh_task = self.spawn_task(self._refresh_loop(session), "refresh")

    async def _refresh_loop(self, session: RepoSession) -> None:
        while session.pending is not None and not self._shutting_down and self.is_open(session):
            if self.settings.debounceMs:
                await asyncio.sleep(self.settings.debounceMs / 1000)
            await self._wait_for_git_writes(session)
            change, session.pending = session.pending, None
            if change is None:
                break
            try:
                refreshed = await asyncio.to_thread(session.engine.refresh, change)
            except (GitError, RepositoryError, OSError) as exc:
                await self._refresh_failed(session, exc)
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
            if not self.is_open(session):
                return
            await self._after_refresh(session, refreshed)
            if listing_changed:
                await self._recheck_folders(session)

    async def _wait_for_git_writes(self, session: RepoSession) -> None:
        """Let a git command that is rewriting a worktree of this change finish first (at most
        :data:`GIT_WRITE_GRACE` after it started); events arriving meanwhile join the change.
        Its release of ``index.lock`` is itself an event, so nothing is missed."""
        engine = session.engine
        while (change := session.pending) is not None and not self._shutting_down:
            until = await asyncio.to_thread(
                lambda: git_writing_until(engine.index_locks(change), time.time())
            )
            if until is None:
                return
            await asyncio.sleep(min(0.05, max(until - time.time(), 0.0)))

    async def _recheck_folders(self, session: RepoSession) -> None:
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

    async def _refresh_failed(self, session: RepoSession, exc: Exception) -> None:
        message = str(exc)
        if session.last_error == message:
            return
        session.last_error = message
        self.log_message(
            f"wtls: could not read {session.key}: {message}", types.MessageType.Warning
        )
        # The repository may be gone or broken: re-discover the workspace folders once.
        folders = list(session.folders)
        common = session.engine.repository.common_dir
        if not common.exists():
            self.close_session(session)
            await self.open_folders(folders)

    async def _after_refresh(
        self, session: RepoSession, refreshed: Refreshed, *, force: bool = False
    ) -> None:
        await self._publish(session, force=force)
        self._publish_worktree_problems(session)
        if refreshed.files or refreshed.touched:
            self.spawn_task(self.markers.on_refreshed(session, refreshed), "marker scan")
        for hook in self.refresh_hooks:
            self.spawn_task(hook(self, session, refreshed), f"refresh hook {hook.__name__}")
        if session.disk_task is None or session.disk_task.done():
            session.disk_task = self.spawn_task(self._measure_disk(session), "disk usage")

    async def _measure_disk(self, session: RepoSession) -> None:
        """Sizes on disk, off the loop; cached a minute by the core, so bursts cost one walk."""
        if await asyncio.to_thread(session.engine.measure_disk):
            await self._publish(session)

    async def _publish(self, session: RepoSession, *, force: bool = False) -> None:
        if session.engine.state is None or not self.is_open(session):
            return  # not read yet (the first refresh publishes), or closed
        payload = session.payload()
        if not force and payload == session.last_payload:
            return
        session.last_payload = payload
        session.announced = frozenset(Path(w["path"]) for w in payload["worktrees"])
        self.protocol.notify(WORKTREES_METHOD, payload)

    async def publish_state(self, session: RepoSession) -> None:
        """Send the notification if the payload changed (for features that change state)."""
        await self._publish(session)

    def _publish_worktree_problems(self, session: RepoSession) -> None:
        state = session.state
        if state is None:
            return
        problems: list[Problem] = list(stale_problems(state))
        for wt in session.own_worktrees():
            problems.extend(worktree_problems(state, wt, far_behind=self.settings.farBehind))
        self.diagnostics.replace("worktree", session.key, problems)

    # ---------------------------------------------------------------- progress
    async def _progress_begin(self, title: str) -> str | None:
        caps = self.client_capabilities.window
        if caps is None or not caps.work_done_progress:
            return None
        token = str(uuid.uuid4())
        try:
            await asyncio.wait_for(self.work_done_progress.create_async(token), timeout=5)
        except Exception:  # the client may refuse or never answer: progress is optional
            return None
        self.work_done_progress.begin(token, types.WorkDoneProgressBegin(title=title))
        return token

    def _progress_end(self, token: str | None) -> None:
        if token is not None:
            self.work_done_progress.end(token, types.WorkDoneProgressEnd())

    async def with_progress(self, title: str, work: Callable[[Callable[[str], None]], T]) -> T:
        """Run blocking ``work(report)`` in a thread, showing work-done progress meanwhile."""
        token = await self._progress_begin(title)
        loop = asyncio.get_running_loop()

        def report(message: str) -> None:
            if token is not None:
                loop.call_soon_threadsafe(
                    self.work_done_progress.report,
                    token,
                    types.WorkDoneProgressReport(message=message[-200:]),
                )

        try:
            return await asyncio.to_thread(work, report)
        finally:
            self._progress_end(token)

    # ---------------------------------------------------------------- configuration
    async def load_settings(self, raw: Any | None = None) -> None:
        """Read settings (from ``raw``, or ask the client) and apply them everywhere."""
        if raw is None:
            caps = self.client_capabilities.workspace
            if caps is not None and caps.configuration:
                try:
                    result = await asyncio.wait_for(
                        self.workspace_configuration_async(
                            types.ConfigurationParams(
                                items=[types.ConfigurationItem(section="wtls")]
                            )
                        ),
                        timeout=5,
                    )
                    raw = result[0] if result else None
                except Exception as exc:  # a client that cannot answer keeps the defaults
                    log.info("workspace/configuration failed: %s", exc)
        if raw is None:
            return
        settings, problems = parse_settings(raw)
        for problem in problems:
            self.show_message(f"wtls: {problem}")
        if settings == self.settings:
            return
        self.settings = settings
        for session in list(self.sessions.values()):
            session.engine.configure(settings.engine_settings())
            if session.watcher is not None:  # new ignore globs
                await asyncio.to_thread(session.watcher.retarget, session.engine.watch_targets())
            self.queue_change(session, ChangeSet(everything=True))

    async def shutdown_sessions(self) -> None:
        """Stop every watcher and background task."""
        self._shutting_down = True
        for session in list(self.sessions.values()):
            if session.watcher is not None:
                await asyncio.to_thread(session.watcher.stop)
        for task in list(self._tasks):
            task.cancel()


def _link_signature(folder: Path) -> tuple[Any, ...]:
    """What changes when a folder is repaired, moved back or made a repository, or when the
    git data its worktree's ``.git`` file points at is deleted or restored. Only link files:
    ordinary git work in the worktree (an index write, a commit) does not change it."""
    root = worktree_root(folder) or folder
    gitdir = read_gitfile(root)
    out: list[Any] = []
    for path, contents in (
        (folder, False),
        (root / ".git", True),
        *(((gitdir / "gitdir", True), (gitdir / "commondir", False)) if gitdir else ()),
    ):
        try:
            st = path.stat()
        except OSError:
            out.append(None)
            continue
        out.append((st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size) if contents else st.st_ino)
    return tuple(out)


def _discover_listed(folder: Path) -> tuple[Repository, list[Breakage] | None]:
    """The repository of ``folder`` and, when git does not list its worktree, why (see
    :func:`wtls.repair.unlisted`). Raises :class:`BrokenWorktreeLink` when the worktree's git
    data is gone, also when it went while this looked. Blocking."""
    repo = discover(folder)
    missing = unlisted(repo, folder)
    if missing and any(b.kind in ("gitdir-missing", "main-deleted") for b in missing):
        repo = discover(folder)  # deleted meanwhile: say it the way a broken link is said
        missing = unlisted(repo, folder)
    return repo, missing


def _unlisted_report(folder: Path, breakages: list[Breakage]) -> tuple[str, list[Problem]]:
    """The message and diagnostics for a folder whose worktree git does not list."""
    if breakages:
        problems = [b.to_problem() for b in breakages]
        return " ".join(p.message for p in problems), problems
    # Mostly a moment in the middle of a change (git data being removed or written); the
    # retry poll opens the folder again when it settles.
    where = worktree_root(folder) or folder
    message = (
        f"{where} is not one of the worktrees `git worktree list` shows (its git data may be "
        "changing right now; if this stays, `wtls repair` says what is wrong)"
    )
    problem = Problem(path=where / ".git", severity="warning", code="unlisted", message=message)
    return message, [problem]


def _broken_link_problem(broken: BrokenWorktreeLink) -> Problem:
    return Problem(
        path=broken.worktree / ".git",
        severity="error",
        code="broken-link",
        message=str(broken),
        data={"worktree": str(broken.worktree), "gitdir": str(broken.gitdir)},
    )


def command(server: WtlsServer, name: str) -> Callable[[CommandHandler], CommandHandler]:
    """Register ``handler(ls, args)`` as the server command ``name``.

    The single argument object arrives as a dict (``{}`` when omitted). :class:`Refused` becomes
    a JSON-RPC error with code ``REFUSED_CODE``; git and repository errors ``ERROR_CODE``.
    """

    def decorator(handler: CommandHandler) -> CommandHandler:
        # Not functools.wraps: pygls validates arguments against the visible signature, and
        # the handler's (ls, args) would reject a wrong argument before our clear message.
        async def run(ls: WtlsServer, *arguments: Any) -> Any:
            args = to_dict(arguments[0]) if arguments else {}
            if not isinstance(args, dict):
                raise rpc_error(
                    f"{name} takes one object argument, got {type(args).__name__}", ERROR_CODE
                )
            try:
                return await handler(ls, args)
            except Refused as exc:
                raise rpc_error(str(exc), REFUSED_CODE, {"kind": "refused"}) from exc
            except (GitError, RepositoryError, GitUnavailable, OSError) as exc:
                raise rpc_error(str(exc), ERROR_CODE, {"kind": "error"}) from exc

        run.__doc__ = handler.__doc__
        run.__name__ = handler.__name__
        server.command(name)(run)
        return handler

    return decorator


def rpc_error(message: str, code: int, data: Any = None) -> JsonRpcServerError:
    """A JSON-RPC error response carrying ``code`` (pygls' constructor is untyped)."""
    return JsonRpcServerError(message, code, data)  # type: ignore[no-untyped-call]


def to_dict(value: Any) -> Any:
    """Turn pygls' namedtuples (how unknown JSON objects arrive) back into plain JSON values."""
    if hasattr(value, "_asdict"):
        return {k: to_dict(v) for k, v in value._asdict().items()}
    if isinstance(value, Mapping):
        return {k: to_dict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_dict(v) for v in value]
    return value


def arg_str(args: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    """A string argument of a command, with a clear refusal for a wrong type."""
    value = args.get(key)
    if value is None:
        if required:
            raise Refused(f"missing argument {key!r}")
        return None
    if not isinstance(value, str):
        raise Refused(f"argument {key!r} must be a string, got {type(value).__name__}")
    return value


def arg_bool(args: Mapping[str, Any], key: str) -> bool:
    """A boolean argument of a command (absent = False)."""
    value = args.get(key, False)
    if not isinstance(value, bool):
        raise Refused(f"argument {key!r} must be true or false, got {value!r}")
    return value


def arg_path(args: Mapping[str, Any], key: str, *, required: bool = False) -> Path | None:
    """A command argument that names a place (a file URI or a path), checked by
    :func:`wtls.locations.to_path`: a clear refusal naming ``key`` when it does not."""
    value = arg_str(args, key, required=required)
    return to_path(value, name=key) if value is not None else None


def uri_to_path(uri: str) -> Path | None:
    """A document's local file URI as a path (None for other schemes, remote hosts, NULs)."""
    if not uri.lower().startswith("file:"):
        return None
    try:
        return to_path(uri, name="uri")
    except BadLocation:
        return None


def path_to_uri(path: Path) -> str:
    """A path as a file URI (byte-exact for names that are not UTF-8)."""
    return file_uri(path)


def create_server() -> WtlsServer:
    """Build the server with every feature registered (capabilities are computed from them)."""
    server = WtlsServer()
    _register_core(server)
    from wtls.server import features

    features.register_all(server)
    return server


def _register_core(server: WtlsServer) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: WtlsServer, params: types.InitializeParams) -> None:
        """Read initialization options: settings and workspace trust."""
        options = to_dict(params.initialization_options) or {}
        if isinstance(options, dict):
            ls.trusted = bool(options.get("trusted", False))
            raw = options.get("settings", options.get("wtls"))
            if raw is not None:
                settings, problems = parse_settings(raw)
                ls.settings = settings
                ls._pending_problems = problems

    @server.feature(types.INITIALIZED)
    async def initialized(ls: WtlsServer, params: types.InitializedParams) -> None:
        """Discover the repositories of the workspace, watch them, announce their state."""
        for problem in getattr(ls, "_pending_problems", []):
            ls.show_message(f"wtls: {problem}")
        try:
            require_git()
        except GitUnavailable as exc:
            ls.show_message(f"wtls: {exc}", types.MessageType.Error)
            return
        await ls.load_settings()
        await ls.open_folders(ls.workspace_folders())

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: WtlsServer, params: types.DidChangeConfigurationParams
    ) -> None:
        """Apply new settings without a restart."""
        raw = to_dict(params.settings)
        if isinstance(raw, dict) and raw.get("wtls") is not None:
            await ls.load_settings(raw["wtls"])
        else:
            await ls.load_settings()

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    async def did_change_folders(
        ls: WtlsServer, params: types.DidChangeWorkspaceFoldersParams
    ) -> None:
        """Open sessions for added folders; drop folders (and idle sessions) that were removed."""
        for removed in params.event.removed:
            path = uri_to_path(removed.uri)
            for session in list(ls.sessions.values()):
                if path is not None and path.resolve() in session.folders:
                    session.folders.remove(path.resolve())
                    if not session.folders:
                        ls.close_session(session)
            if path is not None:
                ls.forget_folder(path.resolve())
        added = [p.resolve() for f in params.event.added if (p := uri_to_path(f.uri))]
        await ls.open_folders(added)

    @server.feature(WORKTREES_METHOD)
    async def worktrees_request(ls: WtlsServer, params: Any) -> dict[str, Any]:
        """Return the ``wtls/worktrees`` object for the repository of ``params.uri``."""
        args = to_dict(params) if params is not None else {}
        uri = args.get("uri") if isinstance(args, dict) else None
        if uri is not None and not isinstance(uri, str):
            raise rpc_error(f"uri must be a string, got {type(uri).__name__}", ERROR_CODE)
        try:
            path = to_path(uri, name="uri") if uri is not None else None
        except BadLocation as exc:
            raise rpc_error(str(exc), ERROR_CODE) from exc
        try:
            engine = await ls.engine_for(path)
        except Refused as exc:
            raise rpc_error(str(exc), REFUSED_CODE) from exc
        except GitUnavailable as exc:
            raise rpc_error(str(exc), ERROR_CODE) from exc
        session = ls.sessions[engine.repository.key]
        if engine.state is None:
            await ls.refresh(engine)
        return session.payload()

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
    )
    async def code_action(
        ls: WtlsServer, params: types.CodeActionParams
    ) -> list[types.CodeAction] | None:
        """Quick fixes from every feature that offers some."""
        found: list[types.CodeAction] = []
        for provider in list(ls.code_action_providers):
            found.extend(await provider(ls, params))
        return found or None

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: WtlsServer, *args: Any) -> None:
        """Stop watchers before the process ends."""
        await ls.shutdown_sessions()

    @command(server, "wtls.refresh")
    async def refresh_command(ls: WtlsServer, args: dict[str, Any]) -> dict[str, Any]:
        """Re-read every repository now."""
        for session in list(ls.sessions.values()):
            await ls.refresh(session.engine)
        return {"repositories": [s.key for s in ls.sessions.values()]}


class _AnsweredOnPurpose(logging.Filter):
    """pygls logs a traceback for every error response; a refusal or a git failure that wtls
    answers on purpose, or a client's invalid params, is an outcome, not a crash: keep one line,
    drop the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, JsonRpcInvalidParams) or (
            isinstance(exc, JsonRpcServerError) and exc.code in (REFUSED_CODE, ERROR_CODE)
        ):
            record.msg, record.args = "answered with error %s: %s", (exc.code, exc)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def run_stdio() -> None:
    """Start the server on stdin/stdout (``wtls serve``)."""
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("pygls.protocol.json_rpc").addFilter(_AnsweredOnPurpose())
    server = create_server()
    server.start_io()
    if not server._shutting_down:
        # LSP: `exit` without `shutdown` first (or a client that vanished) exits with 1;
        # pygls' own sys.exit(1) is swallowed by its event loop.
        raise SystemExit(1)
