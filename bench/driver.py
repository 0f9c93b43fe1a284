"""Drive the real ``python -m wtls serve`` over stdio, timestamping what it sends.

The same client as ``tests/lsp/harness.py`` (pytest-lsp's, with VS Code's capabilities), but
every ``wtls/worktrees`` notification and every ``publishDiagnostics`` is recorded with its
arrival time (``time.perf_counter()``), so a latency is "arrival of the first message that
shows the change" minus "just before the write".
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cattrs import Converter
from lsprotocol import types
from pygls.protocol import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
    default_converter,
)
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

from wtls.server.rpc import to_dict

WORKTREES = "wtls/worktrees"
#: How a server is started (the real one, as an editor would).
SERVER_COMMAND: list[str] = [sys.executable, "-m", "wtls", "serve"]
#: Server settings (``initializationOptions.settings``) for every server (``--server-settings``).
SERVER_SETTINGS: dict[str, Any] = {}
T = TypeVar("T")


def plain_converter() -> Converter:
    """pygls' converter, except that messages of methods lsprotocol does not know (our
    ``wtls/worktrees``) keep their params and results as plain JSON values.

    pygls builds a new namedtuple class for every JSON object of such a message (``eval`` of its
    source): 3–5 ms for one 5 KB ``wtls/worktrees``. With eight sessions driven from this one
    process that made the last session's arrival up to 200 ms later than its forwarder wrote
    it, a cost of the benchmark's client, not of wtls (an editor parses in its own process, and
    VS Code's JSON parse takes microseconds).
    """
    converter: Converter = default_converter()

    def keep(obj: dict[str, Any], cls: type[Any]) -> Any:
        return cls(**obj)

    for message in (JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage):
        converter.register_structure_hook(message, keep)
    return converter


@contextmanager
def serving(args: Sequence[str]) -> Iterator[None]:
    """Start servers as ``python -m wtls ARGS...`` inside the block (e.g. ``serve --no-daemon``),
    so the benchmarks that call :func:`start_server` measure another mode unchanged."""
    saved = list(SERVER_COMMAND)
    SERVER_COMMAND[:] = [sys.executable, "-m", "wtls", *args]
    try:
        yield
    finally:
        SERVER_COMMAND[:] = saved


def entry(payload: Mapping[str, Any], path: Path) -> dict[str, Any] | None:
    """The entry for worktree ``path`` in a ``wtls/worktrees`` payload."""
    want = str(path.resolve())
    return next((w for w in payload["worktrees"] if w["path"] == want), None)


def unstaged_is(path: Path, want: int) -> Callable[[dict[str, Any]], bool]:
    """A payload predicate: worktree ``path`` has ``want`` unstaged changes."""

    def check(payload: dict[str, Any]) -> bool:
        found = entry(payload, path)
        return found is not None and found["unstaged"] == want

    return check


def uri(path: Path) -> str:
    """A file URI for ``path`` (resolved, as the server reports it)."""
    return path.resolve().as_uri()


@dataclass(frozen=True)
class Received:
    """One message from the server and when it arrived."""

    at: float
    method: str
    payload: Any
    uri: str | None = None


class Server:
    """A running server process, the client talking to it, and everything it sent."""

    def __init__(self, client: LanguageClient, folder: Path) -> None:
        self.client = client
        self.folder = folder.resolve()
        self.messages: list[Received] = []
        self.commands: list[str] = []
        self._arrived = asyncio.Event()

    @property
    def pid(self) -> int:
        """The server's process id."""
        proc = self.client._server
        assert proc is not None, "server not started"
        return proc.pid

    def record(self, method: str, payload: Any, uri: str | None = None) -> None:
        """Store a message with its arrival time and wake waiters."""
        self.messages.append(Received(time.perf_counter(), method, payload, uri))
        self._arrived.set()

    def states(self, since: float = 0.0) -> list[Received]:
        """``wtls/worktrees`` notifications that arrived at or after ``since``."""
        return [m for m in self.messages if m.method == WORKTREES and m.at >= since]

    def diagnostics(self, path: Path) -> Sequence[types.Diagnostic]:
        """Diagnostics currently published for ``path``."""
        return self.client.diagnostics.get(uri(path), [])

    async def wait(
        self, check: Callable[[], T | None], timeout: float, what: str = "a message"
    ) -> T:
        """The first truthy ``check()``, re-checked on every arrival; TimeoutError after
        ``timeout`` seconds."""
        deadline = time.perf_counter() + timeout
        while True:
            found = check()
            if found:
                return found
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError(f"no {what} within {timeout} s")
            self._arrived.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def wait_state(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        since: float,
        timeout: float,
        what: str = "a wtls/worktrees notification",
    ) -> Received:
        """The first ``wtls/worktrees`` notification at or after ``since`` matching."""

        def check() -> Received | None:
            return next((m for m in self.states(since) if predicate(m.payload)), None)

        return await self.wait(check, timeout, what)

    async def wait_diagnostics(
        self,
        path: Path,
        predicate: Callable[[Sequence[types.Diagnostic]], bool],
        since: float,
        timeout: float,
    ) -> Received:
        """The first ``publishDiagnostics`` for ``path`` at or after ``since`` matching."""
        target = uri(path)

        def check() -> Received | None:
            return next(
                (
                    m
                    for m in self.messages
                    if m.uri == target and m.at >= since and predicate(m.payload)
                ),
                None,
            )

        return await self.wait(check, timeout, f"diagnostics for {path.name}")

    async def request_worktrees(self, timeout: float = 30.0) -> dict[str, Any]:
        """The ``wtls/worktrees`` request for this server's folder."""
        result = await asyncio.wait_for(
            self.client.protocol.send_request_async(  # type: ignore[no-untyped-call]
                WORKTREES, {"uri": uri(self.folder)}
            ),
            timeout,
        )
        return to_dict(result)  # type: ignore[no-any-return]

    async def command(self, name: str, args: dict[str, Any], timeout: float = 120) -> Any:
        """``workspace/executeCommand`` with one argument object."""
        result = await asyncio.wait_for(
            self.client.workspace_execute_command_async(
                types.ExecuteCommandParams(command=name, arguments=[args])
            ),
            timeout,
        )
        return to_dict(result)

    def change_document(self, path: Path, text: str, version: int) -> None:
        """didChange with the whole new text (an unsaved edit: nothing is written)."""
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri(path), version=version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    def open_document(self, path: Path) -> None:
        """didOpen with the file's text on disk."""
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri(path), language_id="plaintext", version=1, text=path.read_text()
                )
            )
        )


@asynccontextmanager
async def start_server(
    folder: Path,
    *,
    env: Mapping[str, str] | None = None,
    settings: dict[str, Any] | None = None,
    timeout: float = 120.0,
) -> AsyncIterator[Server]:
    """Start ``python -m wtls serve`` on ``folder``; yield once its first state arrived."""
    features = dict(DEFAULT_CLIENT_FEATURES)
    client = LanguageClient(converter_factory=plain_converter)
    server = Server(client, folder)
    default_publish = features.pop(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)

    def on_diagnostics(ls: LanguageClient, params: types.PublishDiagnosticsParams) -> None:
        default_publish(ls, params)
        server.record(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS, params.diagnostics, params.uri)

    features[types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS] = on_diagnostics
    register_lsp_features(client, features)

    def on_worktrees(params: Any) -> None:
        server.record(WORKTREES, to_dict(params))

    client.feature(WORKTREES)(on_worktrees)

    await client.start_io(*SERVER_COMMAND, env={**os.environ, **(env or {})})
    try:
        result = await asyncio.wait_for(
            client.initialize_session(
                types.InitializeParams(
                    capabilities=client_capabilities("visual-studio-code"),
                    workspace_folders=[types.WorkspaceFolder(uri=uri(folder), name=folder.name)],
                    root_uri=uri(folder),
                    initialization_options={
                        "settings": settings if settings is not None else SERVER_SETTINGS,
                        "trusted": True,
                    },
                )
            ),
            timeout,
        )
        provider = result.capabilities.execute_command_provider
        server.commands = list(provider.commands) if provider is not None else []
        await server.wait_state(lambda _: True, 0.0, timeout, "the initial wtls/worktrees")
        yield server
    finally:
        try:
            await asyncio.wait_for(client.shutdown_session(), 15)
        except Exception:
            if client._server is not None and client._server.returncode is None:
                client._server.kill()
        await client.stop()  # type: ignore[no-untyped-call]


@asynccontextmanager
async def start_servers(
    folders: Sequence[Path], *, env: Mapping[str, str] | None = None
) -> AsyncIterator[list[Server]]:
    """Several servers (one per folder, as one editor window per worktree), started together."""
    async with AsyncExitStack() as stack:
        servers = await asyncio.gather(
            *(stack.enter_async_context(start_server(f, env=env)) for f in folders)
        )
        yield list(servers)
