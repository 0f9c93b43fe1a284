"""The wtls language server: the wiring. Maps the core's live worktree state to LSP.

:class:`WtlsServer` implements :class:`wtls.server.base.Server` by composing the parts that do
the work: :class:`~wtls.server.sessions.SessionManager` (one session per repository, folders
that could not be opened), :class:`~wtls.server.refresh.RefreshPipeline` (file events →
refresh → notification and diagnostics) and :class:`~wtls.server.progress.Progress`. The
features in :mod:`wtls.server.features` are registered by :func:`create_server`, each by an
explicit call; they see only the :class:`~wtls.server.base.Server` interface.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from lsprotocol import types
from pygls.io_ import StdinAsyncReader, StdoutWriter
from pygls.lsp.server import LanguageServer

from wtls import __version__
from wtls.daemon.hello import SETTLED_METHOD
from wtls.engine import Engine
from wtls.server.base import (
    CloseHook,
    CodeActionProvider,
    DocumentHook,
    RefreshHook,
    RepoSession,
)
from wtls.server.config import Settings
from wtls.server.diagnostics import DiagnosticsStore
from wtls.server.features import (
    agent_exits,
    cleanup,
    conflicts,
    documents,
    links,
    marker_actions,
    marker_diagnostics,
    merge_tests,
    predicted_merge,
    review,
    workspace,
    worktree_commands,
)
from wtls.server.framing import StreamLineReader, read_loop
from wtls.server.progress import Progress
from wtls.server.refresh import RefreshPipeline
from wtls.server.rpc import uri_to_path
from wtls.server.sessions import SessionManager
from wtls.server.shared import SHARED, SharedRepositories
from wtls.server.transport import (
    OWN_METHOD_PREFIX,
    AnsweredOnPurpose,
    StreamWriter,
    WtlsProtocol,
    shared_converter,
)
from wtls.watch import ChangeSet

log = logging.getLogger(__name__)

T = TypeVar("T")


class WtlsServer(LanguageServer):
    """pygls server holding one :class:`RepoSession` per repository."""

    def __init__(self, shared: SharedRepositories | None = None) -> None:
        super().__init__(
            "wtls", __version__, protocol_cls=WtlsProtocol, converter_factory=shared_converter
        )
        #: The repositories of this process, shared with its other servers (sessions).
        self.shared = shared if shared is not None else SHARED
        self.settings = Settings()
        self.trusted = False
        self.pending_problems: list[str] = []
        self.sessions: dict[str, RepoSession] = {}
        self.diagnostics = DiagnosticsStore(self.text_document_publish_diagnostics)
        self.refresh_hooks: list[RefreshHook] = []
        self.agent_hooks: list[RefreshHook] = []
        self.document_hooks: list[DocumentHook] = []
        self.close_hooks: list[CloseHook] = []
        #: LSP allows one codeAction handler per server; features add providers here.
        self.code_action_providers: list[CodeActionProvider] = []
        self.shutting_down = False
        #: Send ``wtls/settled`` after the first picture (an engine session: its forwarder
        #: clears what an engine it replaced had published and this one did not).
        self.announces_settled = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._progress = Progress(self)
        self._pipeline = RefreshPipeline(
            self,
            on_listing_changed=lambda session: self._sessions.recheck_folders(session),
            on_failure=lambda session, exc: self._sessions.refresh_failed(session, exc),
        )
        self._sessions = SessionManager(self, self._pipeline, self._progress, self.shared)

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

    async def announce_settled(self) -> None:
        """``wtls/settled`` once the first picture of every repository of the workspace is
        published: the refresh hooks of each session's first publish (marker scans, repair
        diagnostics) and each repository's foreground work (the conflict prediction)."""
        while not self.shutting_down:
            sessions = list(self.sessions.values())
            pending = [t for s in sessions for t in s.first_work if not t.done()]
            if pending:
                await asyncio.wait(pending)
                continue
            await asyncio.gather(*(s.shared.settled() for s in sessions))
            if all(t.done() for s in self.sessions.values() for t in s.first_work):
                self.notify(SETTLED_METHOD, {})
                return

    # ---------------------------------------------------------------- messages and tasks
    def notify(self, method: str, payload: Any) -> None:
        """Send a notification to the client (wtls's own JSON ones without pygls' cattrs pass)."""
        protocol = self.protocol
        if (
            isinstance(protocol, WtlsProtocol)
            and method.startswith(OWN_METHOD_PREFIX)
            and isinstance(payload, dict)
        ):
            protocol.notify_json(method, payload)
        else:
            protocol.notify(method, payload)

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

    async def with_progress(self, title: str, work: Callable[[Callable[[str], None]], T]) -> T:
        """Run blocking ``work(report)`` in a thread, showing work-done progress meanwhile."""
        return await self._progress.run(title, work)

    async def with_cancellable_progress(
        self, title: str, work: Callable[[Callable[[str], None], threading.Event], T]
    ) -> T:
        """Like :meth:`with_progress` with a Cancel button: ``work(report, cancel)``."""
        return await self._progress.run_cancellable(title, work)

    # ---------------------------------------------------------------- sessions
    def workspace_folders(self) -> list[Path]:
        """Workspace folders as paths, in order (root_uri when the client sent no folders)."""
        folders = [p for f in self.workspace.folders.values() if (p := uri_to_path(f.uri))]
        if not folders and self.workspace.root_uri:
            root = uri_to_path(self.workspace.root_uri)
            folders = [root] if root is not None else []
        return [f.resolve() for f in folders]

    def session_for(self, path: Path | str | None) -> RepoSession | None:
        """The open session whose repository contains ``path`` (None: the first folder's)."""
        return self._sessions.session_for(path)

    async def engine_for(self, path: Path | str | None) -> Engine:
        """The engine of the repository containing ``path``, opening a session if needed."""
        return await self._sessions.engine_for(path)

    async def open_folders(self, folders: Iterable[Path]) -> None:
        """Discover the repositories of ``folders`` and start watching them."""
        await self._sessions.open_folders(folders)

    def forget_folder(self, folder: Path) -> None:
        """A workspace folder was removed: stop retrying it and clear what was said about it."""
        self._sessions.forget_folder(folder)

    def is_open(self, session: RepoSession) -> bool:
        """Whether ``session`` is still the server's session for its repository."""
        return self._sessions.is_open(session)

    def close_session(self, session: RepoSession) -> None:
        """Stop watching a repository and clear what it published."""
        self._sessions.close_session(session)

    async def shutdown_sessions(self) -> None:
        """Stop every watcher and background task."""
        self.shutting_down = True
        await self._sessions.stop()
        for task in list(self._tasks):
            task.cancel()

    # ---------------------------------------------------------------- refreshing
    def queue_change(self, session: RepoSession, change: ChangeSet) -> None:
        """Coalesce ``change`` into the session's pending work and make sure a refresh runs."""
        self._pipeline.queue_change(session, change)

    async def refresh(self, engine: Engine, change: ChangeSet | None = None) -> None:
        """Refresh a repository now (everything when ``change`` is None) and publish."""
        await self._pipeline.refresh(engine, change)

    async def publish_state(self, session: RepoSession) -> None:
        """Send the notification if the payload changed (for features that change state)."""
        await self._pipeline.publish(session)


def create_server(shared: SharedRepositories | None = None) -> WtlsServer:
    """Build the server with every feature registered (capabilities are computed from them).

    ``shared``: the repositories it shares with the process's other servers (default: the
    process's one registry)."""
    server = WtlsServer(shared)
    _register_lifecycle(server)
    workspace.register(server)
    documents.register(server)
    marker_diagnostics.register(server)
    marker_actions.register(server)
    links.register(server)
    worktree_commands.register(server)
    conflicts.register(server)
    predicted_merge.register(server)
    agent_exits.register(server)
    review.register(server)
    merge_tests.register(server)
    cleanup.register(server)
    return server


def _register_lifecycle(server: WtlsServer) -> None:
    """The LSP lifecycle: initialize, initialized, shutdown; and the one codeAction handler."""

    @server.feature(types.INITIALIZE)
    def initialize(ls: WtlsServer, params: types.InitializeParams) -> None:
        """Read initialization options: settings and workspace trust."""
        workspace.read_initialization_options(ls, params.initialization_options)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: WtlsServer, params: types.InitializedParams) -> None:
        """Discover the repositories of the workspace, watch them, announce their state."""
        await workspace.start(ls)
        if ls.announces_settled:
            ls.spawn_task(ls.announce_settled(), "settled")

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


def run_stdio(stdin: BinaryIO | None = None) -> None:
    """Run the server in this process on stdin/stdout (``wtls serve --no-daemon``, and the
    forwarder's fallback, which passes a ``stdin`` that first replays what it read)."""
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("pygls.protocol.json_rpc").addFilter(AnsweredOnPurpose())
    server = create_server()
    server.start_io(stdin)
    if not server.shutting_down:
        # LSP: `exit` without `shutdown` first (or a client that vanished) exits with 1;
        # pygls' own sys.exit(1) is swallowed by its event loop.
        raise SystemExit(1)


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
    """Serve one LSP session over an asyncio stream inside the running loop (the engine, where
    many run side by side): a fresh :func:`create_server`; ``exit`` or the end of the stream
    ends this session only, stopping its watchers if the client left without ``shutdown``.
    The LSP exit code: 0 after ``shutdown``, else 1."""
    server = create_server()
    stop = threading.Event()
    server._stop_event = stop

    def on_exit(code: int) -> None:
        stop.set()
        writer.close()  # flushes what is queued, then the reader sees the end

    server.announces_settled = True
    server.protocol.set_writer(StreamWriter(writer))
    assert isinstance(server.protocol, WtlsProtocol)
    server.protocol.on_exit = on_exit
    try:
        await read_loop(stop, StreamLineReader(reader), server.protocol, server.report_server_error)
    finally:
        if not server.shutting_down:
            await server.shutdown_sessions()
        if server._thread_pool is not None:
            server._thread_pool.shutdown(wait=False, cancel_futures=True)
        writer.close()
    return 0 if server.protocol._shutdown else 1
