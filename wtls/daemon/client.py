"""Reach a repository's engine: connect, say hello, start the engine when none runs.

:func:`connect` is what every session and CLI call uses. When nothing listens on the socket
(no file, or a file left by an engine that died), it takes the repository's start lock, looks
again, removes a stale socket, starts ``wtls engine`` detached and waits until it answers, so
that however many sessions start at once, exactly one engine runs. An engine that runs older
code (or the same version with another build: an edit) is asked to stop and replaced; a newer
one is used as it is (:func:`wtls.daemon.hello.should_replace`). Stdlib only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from wtls.daemon import hello as hello_mod
from wtls.daemon.paths import (
    RUNTIME_DIR_ENV,
    EngineFiles,
    engine_files,
    log_tail,
    socket_address,
    trim_log,
)
from wtls.filelock import flock_within

#: How long a started engine gets to answer (its Python start and imports included).
START_TIMEOUT = 15.0
#: How long a hello's answer may take.
REPLY_TIMEOUT = 10.0
#: A query's answer may be larger than a hello line.
MAX_RESULT_BYTES = 64 * 1024 * 1024
_POLL = 0.02


class EngineError(Exception):
    """The engine could not be reached or started (the message says why; it may quote the
    engine log)."""


class NoEngine(EngineError):
    """No engine runs for the repository (``connect(..., start=False)``)."""


class EngineRefused(EngineError):
    """The engine answered the hello with an error."""


def connect(
    common_dir: Path | str,
    kind: str,
    *,
    start: bool = True,
    idle_timeout: float | None = None,
    extra: dict[str, Any] | None = None,
    reply_timeout: float = REPLY_TIMEOUT,
) -> tuple[socket.socket, dict[str, Any]]:
    """Connect to the engine of the repository whose common git dir is ``common_dir`` and say
    hello as ``kind``; the connected socket (blocking) and the engine's reply.

    ``start``: start an engine when none runs, and replace one running outdated code (else
    :class:`NoEngine`, and an outdated engine is used as it is: ``status`` and ``stop`` must
    reach it). ``idle_timeout``: seconds a started engine waits without clients before it
    exits (default: its own, ``WTLS_ENGINE_IDLE_TIMEOUT`` or 600). ``extra``: more hello
    fields (a query's request). ``reply_timeout``: seconds the engine's reply may take (then
    :class:`EngineError`). Raises :class:`EngineError` (or a subclass), or
    :class:`wtls.daemon.paths.RuntimeDirError`.
    """
    files = engine_files(common_dir)
    message = hello_mod.client_hello(kind, files.repository, extra)
    found = _attempt(files, message, timeout=reply_timeout)
    if found is not None and (not start or not hello_mod.should_replace(found[1])):
        return _accepted(found)
    if not start:
        raise NoEngine(f"no wtls engine runs for {files.repository}")
    if found is not None:
        found[0].close()
    with _start_lock(files):
        # Another session may have started (or replaced) it while we waited for the lock.
        found = _attempt(files, message)
        if found is not None and not hello_mod.should_replace(found[1]):
            return _accepted(found)
        if found is not None:
            found[0].close()
            _retire(files, found[1])
        _remove_if_stale(files)
        return _accepted(_start(files, message, idle_timeout))


def engine_status(common_dir: Path | str) -> dict[str, Any] | None:
    """The running engine's ``status`` reply, or None when none runs (never starts one)."""
    try:
        sock, reply = connect(common_dir, "status", start=False)
    except NoEngine:
        return None
    sock.close()
    return reply


def stop_engine(common_dir: Path | str, timeout: float = 5.0) -> dict[str, Any] | None:
    """Ask the running engine to stop and wait (bounded) until it stopped listening; its
    ``stop`` reply, or None when none ran."""
    files = engine_files(common_dir)
    try:
        sock, reply = connect(common_dir, "stop", start=False)
    except NoEngine:
        return None
    sock.close()
    if not _wait_gone(files, timeout):
        raise EngineError(f"the wtls engine (pid {reply.get('pid')}) did not stop in {timeout} s")
    return reply


# ------------------------------------------------------------------------------ internals
def _accepted(found: tuple[socket.socket, dict[str, Any]]) -> tuple[socket.socket, dict[str, Any]]:
    sock, reply = found
    if reply.get("ok") is not True:
        sock.close()
        raise EngineRefused(f"the wtls engine refused: {reply.get('error', 'no reason given')}")
    sock.settimeout(None)
    return sock, reply


def _attempt(
    files: EngineFiles, message: dict[str, Any], tries: int = 3, timeout: float = REPLY_TIMEOUT
) -> tuple[socket.socket, dict[str, Any]] | None:
    """Connect and say hello; None when nothing listens (no socket file, or a stale one)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            with socket_address(files.socket) as address:
                sock.connect(address)
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            return None
        _check_peer(sock, files)
        sock.sendall(hello_mod.encode(message))
        line = _read_reply(sock, big=message["kind"] == "query")
        if not line:
            # An engine on its way out (it stops accepting first, so this is rare), or one
            # that failed on this connection: ask again, never take it for a dead socket.
            sock.close()
            if tries > 1:
                time.sleep(_POLL)
                return _attempt(files, message, tries - 1, timeout)
            raise EngineError(
                f"the wtls engine at {files.socket} closed the connection without answering "
                f"(log {files.log})"
            )
        return sock, hello_mod.decode(line)
    except hello_mod.HelloError as exc:
        sock.close()
        raise EngineError(f"the wtls engine at {files.socket} answered badly: {exc}") from None
    except OSError as exc:
        sock.close()
        if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
            if tries > 1:
                time.sleep(_POLL)
                return _attempt(files, message, tries - 1, timeout)
            raise EngineError(
                f"the wtls engine at {files.socket} closed the connection without answering "
                f"(log {files.log})"
            ) from None
        raise EngineError(f"cannot reach the wtls engine at {files.socket}: {exc}") from None


def _check_peer(sock: socket.socket, files: EngineFiles) -> None:
    """The socket's other end must run as us (the runtime folder is private, but be sure)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    if uid != os.getuid():
        raise EngineError(f"the socket {files.socket} is served by uid {uid}, not by you: refused")


def _read_reply(sock: socket.socket, *, big: bool) -> bytes:
    """One reply line. Byte by byte unless ``big`` (a query's answer, after which the engine
    closes), so that nothing after the line (LSP frames) is taken from the socket."""
    limit = MAX_RESULT_BYTES if big else hello_mod.MAX_LINE_BYTES
    data = bytearray()
    while len(data) <= limit:
        chunk = sock.recv(65536 if big else 1)
        if not chunk:
            return bytes(data) if data.endswith(b"\n") else b""
        data += chunk
        if data.endswith(b"\n") or (big and b"\n" in chunk):
            return bytes(data)
    raise hello_mod.HelloError(f"the reply is longer than {limit} bytes")


def _start_lock(files: EngineFiles) -> contextlib.AbstractContextManager[None]:
    @contextlib.contextmanager
    def held() -> Any:
        fd = os.open(files.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if not flock_within(fd, START_TIMEOUT + 5.0, _POLL):
                raise EngineError(
                    f"another session has been starting the wtls engine for "
                    f"{files.repository} for too long (lock {files.lock})"
                )
            yield
        finally:
            os.close(fd)

    return held()


def _retire(files: EngineFiles, reply: dict[str, Any]) -> None:
    """Stop an engine running outdated code; SIGTERM it when it does not understand ``stop``."""
    try:
        found = _attempt(files, hello_mod.client_hello("stop", files.repository))
    except EngineError:
        found = None
    if found is not None:
        found[0].close()
        if found[1].get("ok") is True and _wait_gone(files, 5.0):
            return
    pid = reply.get("pid")
    if isinstance(pid, int) and pid > 1:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    if not _wait_gone(files, 5.0):
        raise EngineError(f"the outdated wtls engine (pid {pid}) did not stop")


def _remove_if_stale(files: EngineFiles) -> None:
    """Remove the socket file when nothing listens on it (left by an engine that died); one
    that answers a connection is never removed (the new engine then refuses to start)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with socket_address(files.socket) as address:
            probe.connect(address)
    except FileNotFoundError:
        return
    except ConnectionRefusedError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(files.socket)
    except OSError:
        return
    finally:
        probe.close()


def _wait_gone(files: EngineFiles, timeout: float) -> bool:
    """Wait until nothing listens on the socket any more (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with socket_address(files.socket) as address:
                probe.connect(address)
        except (FileNotFoundError, ConnectionRefusedError):
            return True
        except OSError:
            pass
        finally:
            probe.close()
        time.sleep(_POLL)
    return False


def _start(
    files: EngineFiles, message: dict[str, Any], idle_timeout: float | None
) -> tuple[socket.socket, dict[str, Any]]:
    """Start ``wtls engine`` detached (own session, stdin /dev/null, output to the log) and
    connect to it once it listens."""
    trim_log(files.log)
    argv = [
        sys.executable,
        "-m",
        "wtls",
        "engine",
        "--repository",
        os.fspath(files.repository),
        "--detach",
    ]
    if idle_timeout is not None:
        argv += ["--idle-timeout", repr(float(idle_timeout))]
    log_fd = os.open(files.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        launcher = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            cwd="/",
            # The engine runs from /: it must find the same folder whatever the variable said.
            env={**os.environ, RUNTIME_DIR_ENV: os.fspath(files.socket.parent)},
            close_fds=True,
            start_new_session=True,
        )
    except OSError as exc:
        raise EngineError(f"cannot start the wtls engine: {exc}") from None
    finally:
        os.close(log_fd)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        found = _attempt(files, message)
        if found is not None:
            launcher.wait()  # it forked the engine and exited: reap it
            return found
        code = launcher.poll()
        if (code is not None and code != 0) or time.monotonic() >= deadline:
            if code is None:
                launcher.kill()
                launcher.wait()
            why = f"exited with {code}" if code else f"did not answer within {START_TIMEOUT:g} s"
            tail = log_tail(files.log)
            raise EngineError(
                f"the wtls engine for {files.repository} {why} (log {files.log})"
                + (f":\n{tail}" if tail else "")
            )
        time.sleep(_POLL)
