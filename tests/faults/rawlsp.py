"""A bare-bones LSP client over the real server's stdio, for fault tests.

pytest-lsp's client hides the byte stream and gives up on a server that dies; fault tests need
the opposite: write arbitrary bytes, kill the process at a chosen moment, read its stderr, and
keep every message it sent. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

DEFAULT_TIMEOUT = 25.0
SERVER = (sys.executable, "-m", "wtls", "serve")
#: The server in the process the test starts (no engine): for tests that kill "the server"
#: mid-operation and then check the repository at once. Through the default path the work
#: goes on in the repository's engine after the session's process died, as it should.
IN_PROCESS = (*SERVER, "--no-daemon")


def uri(path: Path) -> str:
    """A file URI for ``path`` (resolved, as the server reports it)."""
    return path.resolve().as_uri()


def uri_path(file_uri: str) -> str:
    """The path of a file URI, percent-decoding undone (clients may encode differently)."""
    return unquote(urlparse(file_uri).path)


def frame(message: Mapping[str, Any] | bytes) -> bytes:
    """One LSP frame: ``Content-Length`` header and the JSON body."""
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class ServerDied(AssertionError):
    """The server process ended while a test waited for it."""


class RawServer:
    """The server process plus everything it sent (notifications, requests, stderr)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.messages: list[dict[str, Any]] = []
        self.states: list[dict[str, Any]] = []
        #: Published diagnostics by file path (decoded from the URI).
        self.diagnostics: dict[str, list[dict[str, Any]]] = {}
        #: Every URI diagnostics were published for, as sent.
        self.diagnostic_uris: set[str] = set()
        self.shown: list[dict[str, Any]] = []
        self.logs: list[dict[str, Any]] = []
        self.stderr = bytearray()
        #: Every message body as the server sent it (bytes, before decoding).
        self.bodies: list[bytes] = []
        self._responses: dict[int | str, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 1
        self._changed = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_stderr()),
        ]

    # ------------------------------------------------------------------ start and stop
    @classmethod
    async def start(
        cls,
        argv: Sequence[str] = SERVER,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> RawServer:
        """Start the server process (``wtls serve`` by default)."""
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=str(cwd) if cwd is not None else None,
            # Its own process group: a kill reaches git children it started too.
            start_new_session=True,
        )
        return cls(proc)

    @property
    def alive(self) -> bool:
        """Whether the server process is still running."""
        return self.proc.returncode is None

    def stderr_text(self) -> str:
        """What the server wrote on stderr so far."""
        return self.stderr.decode("utf-8", "replace")

    def kill(self) -> None:
        """SIGKILL the server and every process of its group (git children included)."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    async def close(self, timeout: float = 10.0) -> int | None:
        """Shut down politely if alive, else reap; always ends the process."""
        if self.alive:
            with contextlib.suppress(Exception):
                await self.request("shutdown", None, timeout=timeout)
                self.notify("exit", None)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.kill()
        if self.proc.returncode is None:
            self.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.proc.wait(), timeout)
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        return self.proc.returncode

    async def wait_exit(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Wait for the process to end by itself."""
        return await asyncio.wait_for(self.proc.wait(), timeout)

    # ------------------------------------------------------------------ writing
    def send_raw(self, data: bytes) -> None:
        """Write bytes to the server's stdin as they are."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)

    def send(self, message: Mapping[str, Any]) -> None:
        """Write one framed JSON message."""
        self.send_raw(frame(message))

    def notify(self, method: str, params: Any) -> None:
        """Send a notification."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)

    def send_request(self, method: str, params: Any) -> asyncio.Future[dict[str, Any]]:
        """Send a request; the future resolves with the whole response message."""
        request_id = self._next_id
        self._next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._responses[request_id] = future
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return future

    async def request(
        self, method: str, params: Any, *, timeout: float = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """Send a request and wait (bounded) for its response message."""
        future = self.send_request(method, params)
        return await self.wait_response(future, f"the answer to {method}", timeout)

    async def wait_response(
        self, future: asyncio.Future[dict[str, Any]], what: str, timeout: float = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """Wait for a response future; fail clearly if the server died or took too long."""
        waiter = asyncio.ensure_future(self.proc.wait())
        try:
            done, _ = await asyncio.wait(
                {future, waiter}, timeout=timeout, return_when="FIRST_COMPLETED"
            )
        finally:
            waiter.cancel()
        if future in done:
            return future.result()
        if not self.alive:
            raise ServerDied(
                f"server exited ({self.proc.returncode}) before {what}; stderr:\n"
                + self.stderr_text()[-3000:]
            )
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    async def result(self, method: str, params: Any, *, timeout: float = DEFAULT_TIMEOUT) -> Any:
        """Send a request and return its result; fail on an error response."""
        response = await self.request(method, params, timeout=timeout)
        assert "error" not in response, f"{method} failed: {response['error']}"
        return response.get("result")

    async def command(
        self, name: str, args: Mapping[str, Any] | None = None, *, timeout: float = 120
    ) -> dict[str, Any]:
        """``workspace/executeCommand`` with one argument object; the whole response."""
        return await self.request(
            "workspace/executeCommand",
            {"command": name, "arguments": [dict(args or {})]},
            timeout=timeout,
        )

    async def initialize(
        self,
        folders: Sequence[Path],
        *,
        settings: Mapping[str, Any] | None = None,
        trusted: bool = True,
    ) -> dict[str, Any]:
        """``initialize`` + ``initialized`` as an editor would; returns the server's result."""
        result = await self.result(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": uri(folders[0]) if folders else None,
                "workspaceFolders": [{"uri": uri(f), "name": f.name} for f in folders],
                "capabilities": {
                    "workspace": {"configuration": True, "workspaceFolders": True},
                    "window": {"workDoneProgress": True, "showMessage": {}},
                    "textDocument": {"publishDiagnostics": {"relatedInformation": True}},
                },
                "initializationOptions": {"settings": dict(settings or {}), "trusted": trusted},
            },
        )
        self.notify("initialized", {})
        return result  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ waiting
    async def wait_until(
        self, check: Callable[[], Any], what: str, timeout: float = DEFAULT_TIMEOUT
    ) -> Any:
        """Wait until ``check()`` is truthy; fail with ``what`` (and what arrived) otherwise."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = check()
            if found:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                last = self.states[-1] if self.states else None
                logs = [m.get("message") for m in self.logs[-20:]]
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what}; alive={self.alive}; "
                    f"last state: {last}; server log: {logs}; "
                    f"stderr tail: {self.stderr_text()[-2000:]}"
                )
            if not self.alive:
                raise ServerDied(
                    f"server exited ({self.proc.returncode}) while waiting for {what}; "
                    f"stderr:\n{self.stderr_text()[-3000:]}"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.2))

    async def wait_for_state(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        what: str,
        *,
        since: int = 0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> dict[str, Any]:
        """The first ``wtls/worktrees`` payload (index ≥ ``since``) matching ``predicate``."""
        state: dict[str, Any] = await self.wait_until(
            lambda: next((s for s in self.states[since:] if predicate(s)), None), what, timeout
        )
        return state

    async def wait_for_diagnostics(
        self,
        path: Path,
        predicate: Callable[[list[dict[str, Any]]], bool],
        what: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> list[dict[str, Any]]:
        """Wait until the diagnostics published for ``path`` satisfy ``predicate``."""
        key = str(path.resolve())

        def check() -> tuple[list[dict[str, Any]]] | None:
            current = self.diagnostics.get(key, [])
            return (current,) if predicate(current) else None

        try:
            found: tuple[list[dict[str, Any]]] = await self.wait_until(check, what, timeout)
        except AssertionError as exc:
            # Said at the timeout, not when the wait began: what was published last.
            raise AssertionError(
                f"{exc}; diagnostics of {key}: {self.diagnostics.get(key)}"
            ) from None
        return found[0]

    def diagnostics_for(self, path: Path) -> list[dict[str, Any]]:
        """What is published for ``path`` now."""
        return self.diagnostics.get(str(path.resolve()), [])

    # ------------------------------------------------------------------ reading
    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(65536):
            self.stderr.extend(chunk)
            self._changed.set()

    async def _read_stdout(self) -> None:
        reader = self.proc.stdout
        assert reader is not None
        try:
            while True:
                length = None
                while True:
                    line = await reader.readline()
                    if not line:
                        return
                    if line in (b"\r\n", b"\n"):
                        break
                    name, _, value = line.decode("ascii", "replace").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                assert length is not None, "server sent a frame without Content-Length"
                body = await reader.readexactly(length)
                self.bodies.append(body)
                self._dispatch(json.loads(body))
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            self._changed.set()

    def _dispatch(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        method = message.get("method")
        if method is None:
            future = self._responses.pop(message.get("id"), None)  # type: ignore[arg-type]
            if future is not None and not future.done():
                future.set_result(message)
        elif "id" in message:
            self._answer(message)
        elif method == "wtls/worktrees":
            self.states.append(message["params"])
        elif method == "textDocument/publishDiagnostics":
            params = message["params"]
            self.diagnostic_uris.add(params["uri"])
            self.diagnostics[uri_path(params["uri"])] = params["diagnostics"]
        elif method == "window/showMessage":
            self.shown.append(message["params"])
        elif method == "window/logMessage":
            self.logs.append(message["params"])
        self._changed.set()

    def _answer(self, message: dict[str, Any]) -> None:
        """Answer the server's own requests as a plain editor would."""
        method = message["method"]
        result: Any = None
        if method == "workspace/configuration":
            result = [None for _ in message.get("params", {}).get("items", [])]
        elif method == "window/showDocument":
            result = {"success": True}
        elif method == "window/showMessageRequest":
            self.shown.append(message["params"])
        with contextlib.suppress(Exception):
            self.send({"jsonrpc": "2.0", "id": message["id"], "result": result})
