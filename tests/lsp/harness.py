"""Drive the real ``wtls serve`` over stdio with pytest-lsp's client, as an editor would.

Waits look at everything already received first (a notification that arrived earlier counts),
then keep looking as messages arrive, and always give up after a timeout with what was seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

from wtls.server.rpc import to_dict

WORKTREES = "wtls/worktrees"
DEFAULT_TIMEOUT = 20.0


def uri(path: Path) -> str:
    """A file URI for ``path`` (resolved, as the server reports it)."""
    return path.resolve().as_uri()


class Session:
    """A running server plus what it has sent."""

    def __init__(self, client: LanguageClient) -> None:
        self.client = client
        self.states: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        #: Every ``window/showMessageRequest`` the server sent, in order.
        self.message_requests: list[types.ShowMessageRequestParams] = []
        #: How the "person" answers one: the title of the button chosen (None: dismissed);
        #: may be a coroutine, to keep a question unanswered for a while.
        self.answer: Callable[[types.ShowMessageRequestParams], Any] = lambda params: None

    def _record(self, payload: Any) -> None:
        self.states.append(to_dict(payload))
        self._signal()

    def _signal(self) -> None:
        self._changed.set()

    async def wait_until(
        self, check: Callable[[], Any], what: str, timeout: float = DEFAULT_TIMEOUT
    ) -> Any:
        """Wait until ``check()`` returns something truthy; fail with ``what`` on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = check()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            self._changed.clear()
            # Diagnostics land in client.diagnostics without a signal of ours: re-check often.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.05))

    async def wait_for_state(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        what: str,
        timeout: float = DEFAULT_TIMEOUT,
        since: int = 0,
    ) -> dict[str, Any]:
        """The first ``wtls/worktrees`` payload (index ≥ ``since``) matching ``predicate``."""

        def check() -> dict[str, Any] | None:
            return next((s for s in self.states[since:] if predicate(s)), None)

        try:
            return await self.wait_until(check, what, timeout)  # type: ignore[no-any-return]
        except AssertionError as exc:
            last = self.states[-1] if self.states else None
            raise AssertionError(f"{exc}; last state: {last}") from None

    def latest(self) -> dict[str, Any]:
        """The newest ``wtls/worktrees`` payload."""
        assert self.states, "no wtls/worktrees notification received yet"
        return self.states[-1]

    def diagnostics(self, path: Path) -> Sequence[types.Diagnostic]:
        """Diagnostics currently published for ``path``."""
        return self.client.diagnostics.get(uri(path), [])

    async def wait_for_diagnostics(
        self,
        path: Path,
        predicate: Callable[[Sequence[types.Diagnostic]], bool],
        what: str,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Sequence[types.Diagnostic]:
        """Wait until the diagnostics of ``path`` satisfy ``predicate``."""

        def check() -> tuple[Sequence[types.Diagnostic]] | None:
            current = self.diagnostics(path)
            return (current,) if predicate(current) else None  # a tuple: [] must count as found

        try:
            found = await self.wait_until(check, what, timeout)
            return found[0]  # type: ignore[no-any-return]
        except AssertionError as exc:
            raise AssertionError(f"{exc}; current: {list(self.diagnostics(path))}") from None

    async def request_worktrees(self, target: Path | None = None) -> dict[str, Any]:
        """Send the ``wtls/worktrees`` request."""
        params = {"uri": uri(target)} if target is not None else None
        result = await asyncio.wait_for(
            self.client.protocol.send_request_async(WORKTREES, params), DEFAULT_TIMEOUT
        )
        return to_dict(result)  # type: ignore[no-any-return]

    async def command(self, name: str, args: dict[str, Any] | None = None) -> Any:
        """Run ``workspace/executeCommand`` with one argument object."""
        result = await asyncio.wait_for(
            self.client.workspace_execute_command_async(
                types.ExecuteCommandParams(command=name, arguments=[args or {}])
            ),
            timeout=120,
        )
        return to_dict(result)

    def open_document(self, path: Path, text: str | None = None, language: str = "python") -> None:
        """didOpen with the file's text (or ``text``)."""
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri(path),
                    language_id=language,
                    version=1,
                    text=text if text is not None else path.read_text(),
                )
            )
        )

    def change_document(self, path: Path, text: str, version: int = 2) -> None:
        """didChange replacing the whole buffer (unsaved)."""
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri(path), version=version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )


@asynccontextmanager
async def open_session(
    folders: Sequence[Path],
    *,
    settings: dict[str, Any] | None = None,
    trusted: bool = True,
    server_command: Sequence[str] | None = None,
    client_name: str = "visual-studio-code",
) -> AsyncIterator[Session]:
    """Start ``wtls serve``, initialize it on ``folders`` with the capabilities of
    ``client_name`` (a pytest-lsp client spec: VS Code by default), yield, shut down."""
    client = make_test_lsp_client()
    session = Session(client)

    @client.feature(WORKTREES)
    def on_worktrees(params: Any) -> None:
        session._record(params)

    @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
    async def on_message_request(
        params: types.ShowMessageRequestParams,
    ) -> types.MessageActionItem | None:
        session.message_requests.append(params)
        session._signal()
        title = session.answer(params)
        if asyncio.iscoroutine(title):
            title = await title
        return types.MessageActionItem(title=title) if title else None

    command = list(server_command or [sys.executable, "-m", "wtls", "serve"])
    await client.start_io(command[0], *command[1:])
    try:
        await asyncio.wait_for(
            client.initialize_session(
                types.InitializeParams(
                    capabilities=client_capabilities(client_name),
                    workspace_folders=[
                        types.WorkspaceFolder(uri=uri(f), name=f.name) for f in folders
                    ],
                    root_uri=uri(folders[0]) if folders else None,
                    initialization_options={"settings": settings or {}, "trusted": trusted},
                )
            ),
            DEFAULT_TIMEOUT,
        )
        yield session
    finally:
        with contextlib.suppress(Exception):  # a test may have killed the server on purpose
            await asyncio.wait_for(client.shutdown_session(), 10)
        await client.stop()
