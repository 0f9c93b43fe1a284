"""Helpers for the engine tests: a private runtime folder, engine processes, a socket LSP client.

Every wait is bounded; nothing sleeps to assert.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from wtls.daemon import hello
from wtls.daemon.paths import socket_address

T = TypeVar("T")
TIMEOUT = 30.0
WTLS = (sys.executable, "-m", "wtls")


def wait_until(check: Callable[[], T], what: str, timeout: float = TIMEOUT) -> T:
    """Poll ``check`` until it returns something true (bounded); that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def process_age(pid: int) -> float:
    """Seconds since process ``pid`` started (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            start_ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def engine_pids(runtime: Path) -> list[int]:
    """The pids of running ``wtls engine`` processes whose sockets live in ``runtime`` or a
    folder inside it (from each process's command line and environment, so a test never
    touches another's)."""
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
            if b"engine" not in argv or b"wtls" not in argv:
                continue
            with open(f"/proc/{entry}/environ", "rb") as handle:
                env = handle.read().split(b"\0")
        except OSError:
            continue
        mine = b"WTLS_RUNTIME_DIR=" + os.fsencode(runtime)
        if any(v == mine or v.startswith(mine + b"/") for v in env) and alive(int(entry)):
            found.append(int(entry))
    # An engine's own child caught between its fork and its exec still has the engine's
    # command line: not an engine.
    return [pid for pid in found if _parent_of(pid) not in found]


def _parent_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def kill_engines(runtime: Path) -> None:
    """SIGKILL every engine of ``runtime`` and wait until they are gone (test teardown)."""
    for pid in engine_pids(runtime):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not engine_pids(runtime), "the engines to die", 10)


def run_wtls(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> Any:
    """Run the real CLI; the CompletedProcess (text)."""
    return subprocess.run(
        [*WTLS, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def raw_exchange(sock_path: Path, data: bytes, timeout: float = 10.0) -> bytes:
    """Connect to an engine socket, send ``data`` and end our side, return everything it
    answers until it closes."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        with socket_address(sock_path) as address:
            sock.connect(address)
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)  # all said
        answer = bytearray()
        while chunk := sock.recv(65536):
            answer += chunk
        return bytes(answer)
    finally:
        sock.close()


def frame(message: Mapping[str, Any]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class SocketLsp:
    """A tiny blocking LSP client over an engine connection (after an ok ``lsp`` hello)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(1.0)
        self.messages: list[dict[str, Any]] = []
        self._buffer = b""
        self._next_id = 1
        self.closed = False

    def send(self, message: Mapping[str, Any]) -> None:
        self.sock.sendall(frame(message))

    def request(self, method: str, params: Any) -> int:
        request_id = self._next_id
        self._next_id += 1
        self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        return request_id

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def _read_one(self) -> dict[str, Any] | None:
        """One message if a whole one is buffered or arrives within a second."""
        while True:
            head, sep, rest = self._buffer.partition(b"\r\n\r\n")
            if sep:
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                if len(rest) >= length:
                    self._buffer = rest[length:]
                    message: dict[str, Any] = json.loads(rest[:length])
                    self.messages.append(message)
                    return message
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                self.closed = True
                return None
            self._buffer += chunk

    def wait_for(
        self, match: Callable[[dict[str, Any]], bool], what: str, timeout: float = TIMEOUT
    ) -> dict[str, Any]:
        """The first message (already received or new) that ``match``es, within ``timeout``."""
        for message in self.messages:
            if match(message):
                return message
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.closed:
            message_or_none = self._read_one()
            if message_or_none is not None and match(message_or_none):
                return message_or_none
        raise AssertionError(f"no {what} within {timeout} s (closed: {self.closed})")

    def response(self, request_id: int, timeout: float = TIMEOUT) -> dict[str, Any]:
        return self.wait_for(
            lambda m: m.get("id") == request_id and "method" not in m,
            f"response {request_id}",
            timeout,
        )

    def initialize(self, folder: Path) -> dict[str, Any]:
        """initialize + initialized for one workspace folder; the initialize result."""
        request_id = self.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": folder.resolve().as_uri(),
                "workspaceFolders": [{"uri": folder.resolve().as_uri(), "name": folder.name}],
                "capabilities": {"workspace": {"workspaceFolders": True}},
                "initializationOptions": {"trusted": True},
            },
        )
        result = self.response(request_id)
        self.notify("initialized", {})
        return result

    def wait_closed(self, timeout: float = TIMEOUT) -> None:
        """Read until the engine closes the connection (bounded)."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self._read_one()
        assert self.closed, "the engine did not close the connection"


def hello_line(kind: str, repository: Path | str, **extra: Any) -> bytes:
    return hello.encode(hello.client_hello(kind, repository, extra))
