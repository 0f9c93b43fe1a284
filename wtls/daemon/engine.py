"""The engine: ``wtls engine``, one background process per repository that hosts every
session's language server in one asyncio loop.

It listens on the repository's unix socket (:mod:`wtls.daemon.paths`; mode 0600 in a 0700
folder, never a network socket). Each connection: the peer must run as the same uid
(``SO_PEERCRED``), then says hello within :data:`HELLO_TIMEOUT` seconds
(:mod:`wtls.daemon.hello`); anything else (garbage, an oversize line, an unknown kind, another
repository) gets one error line and is closed, and the engine serves on. Then per kind:

- ``lsp``: one wtls language server over the connection until it closes or the client sends
  ``exit`` (that session only). The server is handed in by the ``wtls engine`` command
  (:func:`wtls.server.server.serve_connection`): this module imports no LSP code.
- ``status``: the reply carries ``clients``, ``uptime``, ``socket``, ``idleTimeout``.
- ``stop``: the socket is removed, the reply sent, every session closed, the engine exits.
- ``query``: answered by the function given (:func:`wtls.cli.answers.answer_query`).

The engine exits after ``--idle-timeout`` seconds without a client. When its repository is
deleted or moved it removes its socket at once (no new session joins it), keeps serving the
sessions it has, and exits when they have left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from wtls.daemon import hello as hello_mod
from wtls.daemon.paths import EngineFiles, RuntimeDirError, engine_files, socket_address

log = logging.getLogger(__name__)

#: Seconds without a client before the engine exits, unless --idle-timeout or the variable
#: :data:`IDLE_TIMEOUT_ENV` says otherwise.
DEFAULT_IDLE_TIMEOUT = 600.0
IDLE_TIMEOUT_ENV = "WTLS_ENGINE_IDLE_TIMEOUT"
#: A connection that has not said hello within this many seconds is closed.
HELLO_TIMEOUT = 5.0
#: How often the engine looks whether its repository still exists (and whether it is idle).
_WATCH_PERIOD = 1.0
#: After an error line, what the client still sends is dropped for this long, at most this much.
_DISCARD_SECONDS = 1.0
_DISCARD_BYTES = 1024 * 1024

#: Serves one LSP session over a connection until it ends; its LSP exit code.
SessionServer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[int]]
#: Answers a ``query`` hello (the CLI's list, status, check): the reply's fields.
QueryAnswerer = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class EngineService:
    """The engine's socket, its connections and its lifetime."""

    def __init__(
        self,
        files: EngineFiles,
        idle_timeout: float,
        serve: SessionServer,
        answer: QueryAnswerer,
    ) -> None:
        self.files = files
        self._serve_session = serve
        self._answer_query = answer
        self.idle_timeout = idle_timeout
        #: LSP sessions connected now.
        self.clients = 0
        self._started = time.monotonic()
        self._busy = 0  # connections of any kind being served
        self._last_active = time.monotonic()
        self._orphaned = False
        self._stopping: asyncio.Event | None = None
        self._server: asyncio.Server | None = None
        self._socket_id: tuple[int, int] | None = None
        self._sessions: set[asyncio.StreamWriter] = set()
        self._wake: asyncio.Event | None = None

    # ------------------------------------------------------------------ lifetime
    async def run(self) -> int:
        """Listen until stopped, idle, or orphaned and left; 0, or 1 when another engine
        already serves the repository."""
        self._stopping, self._wake = asyncio.Event(), asyncio.Event()
        sock = self._bind()
        if sock is None:
            return 1
        self._server = await asyncio.start_unix_server(
            self._connection, sock=sock, limit=hello_mod.MAX_LINE_BYTES
        )
        self._write_info()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop, f"signal {signum}")
        log.info(
            "engine %d serves %s on %s (idle timeout %g s)",
            os.getpid(),
            self.files.repository,
            self.files.socket,
            self.idle_timeout,
        )
        watcher = asyncio.create_task(self._watch())
        await self._stopping.wait()
        watcher.cancel()
        self._server.close()
        self._remove_socket()
        self._remove_info()
        for writer in list(self._sessions):
            writer.close()
        deadline = time.monotonic() + 5.0
        while self._busy and time.monotonic() < deadline:
            await asyncio.sleep(0.02)  # sessions stop their watchers as they close
        log.info("engine %d exits", os.getpid())
        return 0

    def stop(self, why: str) -> None:
        """End the engine (its sessions' forwarders start another when they need one)."""
        if self._stopping is not None and not self._stopping.is_set():
            log.info("engine %d stops: %s", os.getpid(), why)
            self._remove_socket()
            self._stopping.set()

    async def _watch(self) -> None:
        """Exit when idle; drop the socket when the repository is gone, exit once alone."""
        assert self._wake is not None
        while True:
            if not self._orphaned and not os.path.isdir(self.files.repository):
                self._orphaned = True
                log.warning(
                    "the repository %s is gone: no new session joins; exiting when the %d "
                    "connected ones leave",
                    self.files.repository,
                    self.clients,
                )
                if self._server is not None:
                    self._server.close()
                self._remove_socket()
            period = _WATCH_PERIOD
            if self._busy == 0:
                if self._orphaned:
                    self.stop("the repository is gone and no session is left")
                    return
                idle = time.monotonic() - self._last_active
                if idle >= self.idle_timeout:
                    self.stop(f"no client for {self.idle_timeout:g} s")
                    return
                period = min(period, self.idle_timeout - idle)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), period)

    def _touch(self) -> None:
        self._last_active = time.monotonic()
        if self._wake is not None:
            self._wake.set()

    # ------------------------------------------------------------------ the socket
    def _bind(self) -> socket.socket | None:
        """Listen on the repository's socket (mode 0600); None if another engine does."""
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with socket_address(self.files.socket) as address:
                probe.connect(address)
            log.error("another wtls engine already serves %s", self.files.repository)
            return None
        except (FileNotFoundError, ConnectionRefusedError):
            pass
        finally:
            probe.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.files.socket)  # nobody listens on it: left by an engine that died
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # born 0600: never a moment when others could connect
        try:
            with socket_address(self.files.socket) as address:
                sock.bind(address)
        finally:
            os.umask(old_umask)
        os.chmod(self.files.socket, 0o600)
        info = os.stat(self.files.socket)
        self._socket_id = (info.st_dev, info.st_ino)
        sock.listen(64)
        sock.setblocking(False)
        return sock

    def _remove_socket(self) -> None:
        """Remove the socket file if it is still ours (a new engine may have bound the path)."""
        if self._socket_id is None:
            return
        with contextlib.suppress(OSError):
            info = os.stat(self.files.socket)
            if (info.st_dev, info.st_ino) == self._socket_id:
                os.unlink(self.files.socket)
        self._socket_id = None

    def _remove_info(self) -> None:
        """Remove ``<key>.json`` if it is still ours (a new engine may have written its own)."""
        with contextlib.suppress(OSError, ValueError):
            with open(self.files.info, encoding="utf-8") as handle:
                pid = json.load(handle).get("pid")
            if pid == os.getpid():
                os.unlink(self.files.info)

    def _write_info(self) -> None:
        info = {
            "pid": os.getpid(),
            "repository": os.fspath(self.files.repository),
            "wtls": hello_mod.identity(engine=True)["wtls"],
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        temp = self.files.info.with_suffix(".json.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(info, handle)
        os.replace(temp, self.files.info)

    # ------------------------------------------------------------------ connections
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._busy += 1
        self._touch()
        try:
            await self._serve(reader, writer)
        except (ConnectionError, OSError) as exc:
            log.info("a connection ended badly: %s", exc)
        except Exception:
            log.exception("a connection failed")  # one connection, never the engine
        finally:
            self._busy -= 1
            self._touch()
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        uid = peer[1] if peer is not None else None
        if uid != os.getuid():
            log.warning("refused a connection from uid %s", uid)
            await self._refuse(
                reader, writer, f"refused: this engine serves uid {os.getuid()} only, not uid {uid}"
            )
            return
        try:
            line = await asyncio.wait_for(reader.readuntil(b"\n"), HELLO_TIMEOUT)
            message = hello_mod.decode(line)
            kind = hello_mod.check_request(message)
        except TimeoutError:
            await self._refuse(reader, writer, f"no hello within {HELLO_TIMEOUT:g} s")
            return
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                await self._refuse(reader, writer, "the hello line has no end")
            return
        except asyncio.LimitOverrunError:
            await self._refuse(
                reader, writer, f"the hello line is longer than {hello_mod.MAX_LINE_BYTES} bytes"
            )
            return
        except hello_mod.HelloError as exc:
            await self._refuse(reader, writer, str(exc))
            return
        if os.path.realpath(str(message["repository"])) != os.fspath(self.files.repository):
            await self._refuse(
                reader,
                writer,
                f"this engine serves {self.files.repository}, not {message['repository']}",
            )
            return
        if kind == "lsp":
            await self._serve_lsp(reader, writer)
        elif kind == "status":
            await self._send(writer, {**self._ok(), **self.status()})
        elif kind == "stop":
            self._remove_socket()  # no new session joins while it stops
            await self._send(writer, self._ok())
            self.stop("asked to stop")
        else:
            try:
                # Who asks (the kernel's word, not the hello's): the CLI's own process and its
                # ancestors are not "processes using the worktree" in its answer.
                asker = {"peerPid": peer[0]} if peer is not None else {}
                answer = await self._answer_query({**message, **asker})
            except Exception as exc:
                log.exception("a query failed: %r", message.get("query"))
                answer = {"ok": False, "error": f"the query failed: {exc}"}
            await self._send(writer, {**self._ok(), **answer}, limit=None)

    async def _serve_lsp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._orphaned or (self._stopping is not None and self._stopping.is_set()):
            await self._refuse(reader, writer, f"the repository {self.files.repository} is gone")
            return
        self.clients += 1  # before the reply: a status right after it counts this session
        self._sessions.add(writer)
        try:
            await self._send(writer, self._ok())
            code = await self._serve_session(reader, writer)
            log.info("a session ended (exit code %d); %d left", code, self.clients - 1)
        finally:
            self.clients -= 1
            self._sessions.discard(writer)

    def status(self) -> dict[str, Any]:
        """What ``status`` answers beyond the identity."""
        return {
            "clients": self.clients,
            "uptime": round(time.monotonic() - self._started, 3),
            "socket": os.fspath(self.files.socket),
            "idleTimeout": self.idle_timeout,
        }

    def _ok(self) -> dict[str, Any]:
        return {
            "ok": True,
            **hello_mod.identity(engine=True),
            "pid": os.getpid(),
            "repository": os.fspath(self.files.repository),
        }

    async def _refuse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, error: str
    ) -> None:
        """One error line (with the engine's identity, so that a client of another protocol
        version knows to replace it), then the end of our side. What the client still sends is
        read and dropped for a moment (bounded): a socket closed with unread data resets the
        connection, and the client would lose the error line."""
        await self._send(writer, {**self._ok(), "ok": False, "error": error})
        if writer.can_write_eof():
            writer.write_eof()
        with contextlib.suppress(TimeoutError, OSError):
            await asyncio.wait_for(_discard(reader), _DISCARD_SECONDS)

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        message: dict[str, Any],
        limit: int | None = hello_mod.MAX_LINE_BYTES,
    ) -> None:
        if limit is None:
            data = json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"
        else:
            data = hello_mod.encode(message)
        writer.write(data)
        await writer.drain()


async def _discard(reader: asyncio.StreamReader) -> None:
    """Read and drop until the end of the stream, at most :data:`_DISCARD_BYTES`."""
    left = _DISCARD_BYTES
    while left > 0 and (chunk := await reader.read(min(left, 65536))):
        left -= len(chunk)


def _peer(writer: asyncio.StreamWriter) -> tuple[int, int] | None:
    """The connected process's pid and uid (``SO_PEERCRED``)."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", creds)
    return int(pid), int(uid)


def idle_timeout_default() -> float:
    """:data:`IDLE_TIMEOUT_ENV` when it holds a positive number of seconds, else 600."""
    text = os.environ.get(IDLE_TIMEOUT_ENV, "")
    try:
        value = float(text)
    except ValueError:
        return DEFAULT_IDLE_TIMEOUT
    return value if 0 < value < float("inf") else DEFAULT_IDLE_TIMEOUT


def main(
    repository: str,
    idle_timeout: float | None,
    detach: bool,
    serve: SessionServer,
    answer: QueryAnswerer,
) -> int:
    """``wtls engine``: serve the repository whose common git dir is ``repository``, each LSP
    session by ``serve``, each query by ``answer``."""
    common = Path(repository)
    if not common.is_absolute() or not common.is_dir():
        print(
            f"wtls engine: error: --repository must be an existing common git dir (absolute): "
            f"{repository}",
            file=sys.stderr,
        )
        return 2
    try:
        files = engine_files(common)
    except RuntimeDirError as exc:
        print(f"wtls engine: error: {exc}", file=sys.stderr)
        return 2
    hello_mod.build_id()  # the code this process runs: hashed now, before anyone edits it
    if detach:
        _detach()
    logging.Formatter.converter = time.gmtime
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)sZ %(process)d %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
        stream=sys.stderr,
    )
    log.setLevel(logging.INFO)
    timeout = idle_timeout if idle_timeout is not None else idle_timeout_default()
    return asyncio.run(EngineService(files, timeout, serve, answer).run())


def _detach() -> None:
    """Fork: the parent (what the session started and waits for) exits at once; the engine
    goes on in a new session, a child of init, so no session has a zombie to reap."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
