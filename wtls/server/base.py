"""What feature modules see of the server: :class:`RepoSession` and the :class:`Server` interface.

Features are written against :class:`Server`, never against the concrete
:class:`wtls.server.server.WtlsServer`, which implements it and imports the features to register
them: the dependency runs one way, from the wiring down to the features and this module.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from lsprotocol import types
from pygls.workspace import Workspace

from wtls.engine import Engine, Refreshed
from wtls.server.config import Settings
from wtls.server.diagnostics import DiagnosticsStore
from wtls.server.shared import RepoSession as RepoSession
from wtls.watch import ChangeSet

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: Called after every refresh of a repository (a feature's own follow-up work).
RefreshHook = Callable[["Server", "RepoSession", Refreshed], Awaitable[None]]
#: Called when an open document changed, opened or closed (its URI).
DocumentHook = Callable[["Server", str], Awaitable[None]]
#: Called when one of this server's sessions stopped showing its repository (the session has
#: left it; other sessions of the engine may still show it).
CloseHook = Callable[["Server", "RepoSession"], None]
#: LSP allows one codeAction handler per server; each feature offers its actions through one.
CodeActionProvider = Callable[["Server", types.CodeActionParams], Awaitable[list[types.CodeAction]]]


class Server(Protocol):
    """The server as features use it (implemented by :class:`wtls.server.server.WtlsServer`)."""

    settings: Settings
    #: The ``trusted`` initialization option (VS Code's workspace trust).
    trusted: bool
    #: Settings problems found in the initialization options, said once the client is ready.
    pending_problems: list[str]
    #: Open sessions by repository key.
    sessions: dict[str, RepoSession]
    diagnostics: DiagnosticsStore
    refresh_hooks: list[RefreshHook]
    #: Run after every refresh, also those that only re-read agent states (refresh hooks are
    #: not: an agent's state file changes no file to scan or predict).
    agent_hooks: list[RefreshHook]
    document_hooks: list[DocumentHook]
    close_hooks: list[CloseHook]
    code_action_providers: list[CodeActionProvider]
    #: Set on ``shutdown``: no new background work starts.
    shutting_down: bool

    # ------------------------------------------------------------------ pygls
    @property
    def workspace(self) -> Workspace:
        """Open documents and workspace folders (pygls)."""
        ...

    @property
    def client_capabilities(self) -> types.ClientCapabilities:
        """What the client said it supports (pygls)."""
        ...

    def feature(self, feature_name: str, options: Any | None = None) -> Callable[[F], F]:
        """Register an LSP method handler (pygls)."""
        ...

    def command(self, command_name: str) -> Callable[[F], F]:
        """Register a ``workspace/executeCommand`` handler (pygls)."""
        ...

    async def window_show_message_request_async(
        self, params: types.ShowMessageRequestParams
    ) -> types.MessageActionItem | None:
        """Ask the person with buttons (pygls)."""
        ...

    async def workspace_configuration_async(
        self, params: types.ConfigurationParams
    ) -> Any:  # pygls: Sequence[Any | None]
        """Ask the client for settings (pygls)."""
        ...

    # ------------------------------------------------------------------ messages and tasks
    def notify(self, method: str, payload: Any) -> None:
        """Send a notification to the client."""
        ...

    def spawn_task(self, coro: Awaitable[T], name: str) -> asyncio.Task[T]:
        """Run ``coro`` in the background; keep a reference and log its failure."""
        ...

    def log_message(self, message: str, kind: types.MessageType = ...) -> None:
        """A line in the client's output channel."""
        ...

    def show_message(self, message: str, kind: types.MessageType = ...) -> None:
        """A notification the user sees."""
        ...

    async def with_progress(self, title: str, work: Callable[[Callable[[str], None]], T]) -> T:
        """Run blocking ``work(report)`` in a thread, showing work-done progress meanwhile."""
        ...

    async def with_cancellable_progress(
        self, title: str, work: Callable[[Callable[[str], None], threading.Event], T]
    ) -> T:
        """Like :meth:`with_progress` with a Cancel button: ``work(report, cancel)``."""
        ...

    # ------------------------------------------------------------------ sessions
    def workspace_folders(self) -> list[Path]:
        """Workspace folders as paths, in order."""
        ...

    def session_for(self, path: Path | str | None) -> RepoSession | None:
        """The open session whose repository contains ``path`` (None: the first folder's)."""
        ...

    async def engine_for(self, path: Path | str | None) -> Engine:
        """The engine of the repository containing ``path``, opening a session if needed."""
        ...

    async def open_folders(self, folders: Iterable[Path]) -> None:
        """Discover the repositories of ``folders`` and start watching them."""
        ...

    def forget_folder(self, folder: Path) -> None:
        """A workspace folder was removed: stop retrying it and clear what was said about it."""
        ...

    def is_open(self, session: RepoSession) -> bool:
        """Whether ``session`` is still the server's session for its repository."""
        ...

    def close_session(self, session: RepoSession) -> None:
        """Stop watching a repository and clear what it published."""
        ...

    # ------------------------------------------------------------------ refreshing
    def queue_change(self, session: RepoSession, change: ChangeSet) -> None:
        """Coalesce ``change`` into the session's pending work and make sure a refresh runs."""
        ...

    async def refresh(self, engine: Engine, change: ChangeSet | None = None) -> None:
        """Refresh a repository now (everything when ``change`` is None) and publish."""
        ...

    async def publish_state(self, session: RepoSession) -> None:
        """Send the ``wtls/worktrees`` notification if the payload changed."""
        ...
