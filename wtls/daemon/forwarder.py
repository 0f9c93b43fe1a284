"""``wtls serve``: a light session that relays the editor's LSP stream to the repository's engine.

Editors and agents start ``wtls serve`` for every window. It reads the first message
(``initialize``) from stdin, finds the repository of ``workspaceFolders[0]`` (else ``rootUri``,
``rootPath``, the current folder) with ``git rev-parse --git-common-dir``, connects to that
repository's engine (:func:`wtls.daemon.client.connect`, which starts one when none runs) and
relays LSP frames both ways. Stdlib only: it never imports pygls, lsprotocol, cattrs or the
server, so a session costs a fraction of a server's start-up.

When there is no repository, no git, a broken worktree link, or the engine cannot start, the
server runs in this process instead (the caller's ``fallback``: :mod:`wtls.cli.serve`, the same
as ``wtls serve --no-daemon``) with the bytes already read replayed: the user sees exactly the
in-process server's answers and errors. So does a first message that is not a well-framed
``initialize``.

Each message is parsed to keep what a new engine needs (:class:`Forwarder`): the initialize
params (with the workspace folders as they change), ``initialized``, the last configuration
and the open documents with their current text (unsaved edits included). Requests the engine
sends get ids of the forwarder's own, so an answer meant for an engine that died is dropped.

When the engine is lost (SIGKILL, crash, ``wtls daemon stop``), the forwarder connects again
(starting a new engine) and replays initialize (its answer swallowed: the editor has one),
``initialized``, the configuration and the open documents. A request the old engine had not
answered is sent again if it only reads; one that may change things (``executeCommand``) is
answered with an error and never run twice. Work-done progress the old engine had begun is
ended. Diagnostics the old engine published and the new one does not publish again are cleared
once the new engine has settled (its first ``wtls/worktrees`` and a quiet moment, or its
``wtls/settled`` notification), so the editor sees neither stale diagnostics nor a flicker.
If no engine can be reached, the session goes on with an in-process server in a child process
(``wtls serve --no-daemon``), replayed the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from wtls.daemon.client import connect as connect_engine
from wtls.daemon.hello import SETTLED_METHOD
from wtls.daemon.paths import common_dir_of
from wtls.frames import SKIPPED_MESSAGE, HeaderScanner, frame, skipped_request_id

log = logging.getLogger(__name__)

#: Test-only: a file the forwarder writes its ``sys.modules`` to once it relays the engine's
#: answer to ``initialize`` (tests prove it stays light).
MODULES_ENV = "WTLS_TEST_FORWARDER_MODULES"

#: JSON-RPC error codes the forwarder answers with (InvalidRequest; LSP's RequestFailed).
INVALID_REQUEST = -32600
REQUEST_FAILED = -32803
ENGINE_STOPPED = (
    "the wtls engine stopped while running this command; check `wtls list` to see whether it "
    "took effect"
)

#: Requests that only read: sent again to a new engine when the old one died before answering.
READ_ONLY_PREFIXES = ("textDocument/", "wtls/", "workspace/symbol")
READ_ONLY_SUFFIXES = ("/resolve",)
#: Client notifications whose effect the replay after a reconnect carries (not queued).
STATE_NOTIFICATIONS = frozenset(
    {
        "textDocument/didOpen",
        "textDocument/didChange",
        "textDocument/didClose",
        "workspace/didChangeConfiguration",
        "workspace/didChangeWorkspaceFolders",
    }
)
#: A quiet moment after the new engine's first ``wtls/worktrees``: it has published what it
#: will publish (no diagnostics, state or progress message for this long; a prediction on a
#: large repository takes a good part of a second).
SETTLE_QUIET = 2.0
#: At most this long after a reconnect, stale diagnostics are cleared whatever happens.
SETTLE_LIMIT = 30.0
#: The replayed initialize must be answered within this.
REPLAY_TIMEOUT = 30.0
#: This many engine losses within :data:`LOSS_WINDOW` seconds: stop trying engines and run
#: the server in a child process.
MAX_LOSSES = 3
LOSS_WINDOW = 20.0
#: The ids of the forwarder's own requests to an engine.
_OWN_ID_PREFIX = "wtls-forwarder-"
#: Reading a frame from the editor: an asyncio line limit well above any header line.
_STREAM_LIMIT = 1 << 28


def forward(*, idle_timeout: float | None, fallback: Callable[[bytes], int]) -> int:
    """Serve one editor session on stdin/stdout through the repository's engine; the exit
    code (LSP: 0 after ``shutdown`` then ``exit``, else 1). ``fallback(consumed)`` runs the
    server in this process, ``consumed`` (what was read from stdin) first, when there is no
    repository or no engine."""
    consumed, end = _read_first_message()
    body = bytes(consumed[end[0] : end[1]]) if end is not None else None
    params = _initialize_params(body)
    common = _common_dir(params) if params is not None else None
    if body is None or end is None or common is None:
        return fallback(bytes(consumed))
    try:
        sock, _reply = connect_engine(common, "lsp", idle_timeout=idle_timeout)
    except Exception as exc:  # an engine that cannot start must not cost the editor its server
        log.warning("wtls: no engine for %s (%s): running the server in this process", common, exc)
        return fallback(bytes(consumed))
    forwarder = Forwarder(common, idle_timeout)
    try:
        return asyncio.run(forwarder.run(body, bytes(consumed[end[1] :]), sock))
    except KeyboardInterrupt:
        return 1


# ---------------------------------------------------------------------------- the first message
def _read_first_message(fd: int = 0) -> tuple[bytearray, tuple[int, int] | None]:
    """Read stdin up to the end of the first frame: ``(every byte read, (start, end) of its
    body)``, None when the stream does not start with a well-framed message (garbage, a header
    without a usable length, end of input): the in-process server then reads it all."""
    consumed = bytearray()
    scanner = HeaderScanner()
    pos = 0
    length: int | None = None
    while True:
        if length is not None:
            if len(consumed) - pos >= length:
                return consumed, (pos, pos + length)
        else:
            end = consumed.find(b"\n", pos)
            if end >= 0:
                line = bytes(consumed[pos : end + 1])
                pos = end + 1
                length, garbage = scanner.line(line)
                if garbage is not None or (length is None and not line.strip()):
                    return consumed, None
                continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return consumed, None
        consumed += chunk


def _initialize_params(body: bytes | None) -> dict[str, Any] | None:
    """The params of an ``initialize`` request, else None."""
    if body is None:
        return None
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("method") != "initialize":
        return None
    if message.get("id") is None:
        return None
    params = message.get("params")
    return params if isinstance(params, dict) else None


def _local_path(uri: Any) -> Path | None:
    """The local folder a ``file:`` URI names, else None."""
    if not isinstance(uri, str) or not uri.lower().startswith("file:"):
        return None
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        return None
    raw = unquote_to_bytes(parts.path)
    if b"\0" in raw or not raw.startswith(b"/"):
        return None
    return Path(os.fsdecode(raw))


def _first_folder(params: dict[str, Any]) -> Path | None:
    """The folder the session is about: ``workspaceFolders[0]``, ``rootUri``, ``rootPath``,
    else the current folder (None: one is named but unreadable)."""
    folders = params.get("workspaceFolders")
    if isinstance(folders, list) and folders:
        first = folders[0]
        return _local_path(first.get("uri")) if isinstance(first, dict) else None
    if params.get("rootUri"):
        return _local_path(params["rootUri"])
    root_path = params.get("rootPath")
    if isinstance(root_path, str) and root_path:
        return Path(root_path) if "\0" not in root_path else None
    return Path.cwd()


def _common_dir(params: dict[str, Any]) -> Path | None:
    """The common git dir of the session's repository, or None (no repository, no git, a
    broken link: the in-process server says what is wrong, as it always did)."""
    try:
        folder = _first_folder(params)
        if folder is None or not folder.is_dir():
            return None
    except (OSError, ValueError):
        return None
    return common_dir_of(folder)


# ---------------------------------------------------------------------------- documents
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _offset(text: str, position: dict[str, Any], encoding: str) -> int:
    """The index in ``text`` of an LSP position (``character`` counted in ``encoding``'s
    code units, clamped to the line)."""
    line, character = int(position.get("line", 0)), int(position.get("character", 0))
    start = 0
    for _ in range(line):
        found = _LINE_BREAK.search(text, start)
        if found is None:
            return len(text)
        start = found.end()
    found = _LINE_BREAK.search(text, start)
    end = found.start() if found is not None else len(text)
    units = 0
    index = start
    while index < end and units < character:
        char = text[index]
        if encoding == "utf-8":
            units += len(char.encode("utf-8", "surrogatepass"))
        elif encoding == "utf-32":
            units += 1
        else:
            units += 2 if ord(char) > 0xFFFF else 1
        index += 1
    return index


def apply_change(text: str, change: dict[str, Any], encoding: str = "utf-16") -> str:
    """``text`` after one ``contentChanges`` entry (a whole text, or a range replaced)."""
    new = change.get("text", "")
    new = new if isinstance(new, str) else ""
    span = change.get("range")
    if not isinstance(span, dict):
        return new
    start = _offset(text, span.get("start", {}), encoding)
    end = max(start, _offset(text, span.get("end", {}), encoding))
    return text[:start] + new + text[end:]


@dataclass
class _Document:
    """An open document as the editor has it (unsaved edits included)."""

    language: str
    version: int
    text: str


@dataclass
class _Pending:
    """A request of the editor that the engine has not answered yet."""

    method: str
    body: bytes
    #: The engine generation it was sent to (None: waiting for a new engine).
    sent_to: int | None


def _reads_only(method: str) -> bool:
    """Whether a request only reads (safe to send again to a new engine)."""
    return method == "initialize" or (
        method.startswith(READ_ONLY_PREFIXES) or method.endswith(READ_ONLY_SUFFIXES)
    )


def _dump(message: dict[str, Any]) -> bytes:
    """A message the forwarder writes or rewrites (ASCII JSON: valid UTF-8 whatever it holds)."""
    return json.dumps(message, separators=(",", ":")).encode("ascii")


# ---------------------------------------------------------------------------- the relay
class Forwarder:
    """Relays one editor session to its repository's engine and rebuilds the session on a new
    engine when the engine is lost (see the module docstring)."""

    def __init__(self, common: Path, idle_timeout: float | None) -> None:
        self.common = common
        self.idle_timeout = idle_timeout
        self.generation = 0
        self.connected = False
        self.init_params: dict[str, Any] | None = None
        self.init_answered = False
        self.initialized = False
        self.shutdown_requested = False
        self.configuration: Any = None
        self.documents: dict[str, _Document] = {}
        self.encoding = "utf-16"
        self.pending: dict[int | str, _Pending] = {}
        self.queued: list[bytes] = []
        #: Ids of the engine's requests as the editor sees them → (generation, engine's id).
        self.server_requests: dict[int, tuple[int, Any]] = {}
        self._next_server_id = 1
        self.progress: dict[str, Any] = {}
        #: URIs with diagnostics showing in the editor; those to clear once the engine settled.
        self.shown: set[str] = set()
        self.stale: set[str] = set()
        self._worktrees_seen = False
        self._settled = False
        self._activity = asyncio.Event()
        self._replay_answer: asyncio.Future[dict[str, Any]] | None = None
        self._replay_id = ""
        self._losses: list[float] = []
        self._rebuilding = False
        self._writer: asyncio.StreamWriter | None = None
        self._child: asyncio.subprocess.Process | None = None
        self._done: asyncio.Future[int] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._modules_written = False

    # ------------------------------------------------------------------ running
    async def run(self, first: bytes, rest: bytes, sock: socket.socket) -> int:
        """Relay until the editor sends ``exit`` or goes away; the exit code."""
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        stdin = asyncio.StreamReader(limit=_STREAM_LIMIT)
        if rest:
            stdin.feed_data(rest)
        threading.Thread(target=_pump_stdin, args=(loop, stdin), daemon=True).start()
        await self._attach_socket(sock)
        self.connected = True
        self._from_client(first)
        self._spawn(self._read_client(stdin))
        code = await self._done
        await self._close_engine()
        return code

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("wtls forwarder: %s", t.exception(), exc_info=t.exception())
                self._finish(1)

        task.add_done_callback(done)
        return task

    def _finish(self, code: int) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(code)

    async def _attach_socket(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=_STREAM_LIMIT)
        self._attach(reader, writer)

    def _attach(self, reader: asyncio.StreamReader, writer: Any) -> None:
        self._writer = writer
        self._spawn(self._read_engine(reader, self.generation))

    async def _close_engine(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.drain(), 5)
            with contextlib.suppress(Exception):
                writer.close()
                await asyncio.wait_for(writer.wait_closed(), 5)
        if self._child is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._child.wait(), 5)

    # ------------------------------------------------------------------ the editor's side
    async def _read_client(self, stdin: asyncio.StreamReader) -> None:
        scanner = HeaderScanner()
        while True:
            line = await stdin.readline()
            if not line:
                break
            length, garbage = scanner.line(line)
            if garbage is not None:
                msg_id = skipped_request_id(garbage)
                if msg_id is not None:
                    self._error_to_client(msg_id, INVALID_REQUEST, SKIPPED_MESSAGE)
            if length is None:
                continue
            try:
                body = await stdin.readexactly(length)
            except asyncio.IncompleteReadError:
                break
            self._from_client(body)
        # The editor is gone (stdin closed) without `exit`: LSP says exit with 1 unless it
        # asked for shutdown first.
        self._finish(0 if self.shutdown_requested else 1)

    def _from_client(self, body: bytes) -> None:
        try:
            message = json.loads(body)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            self._to_engine(body)  # the server answers what it cannot parse, as always
            return
        method = message.get("method")
        msg_id = message.get("id")
        if not isinstance(method, str):
            if msg_id is None:
                self._to_engine(body)
                return
            body = self._client_response(message, msg_id)
            if body:
                # Straight to the engine that asked, even while the session is rebuilt on it:
                # it may wait for this answer before it sends what the rebuild waits for.
                self._write_engine(body)
            return
        if msg_id is not None:
            if isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool):
                sent_to = self.generation if self.connected else None
                self.pending[msg_id] = _Pending(method, body, sent_to)
            if method == "initialize" and self.init_params is None:
                params = message.get("params")
                self.init_params = dict(params) if isinstance(params, dict) else {}
            elif method == "shutdown":
                self.shutdown_requested = True
            self._to_engine(body)
            return
        if method == "exit":
            self._to_engine(body)
            self._finish(0 if self.shutdown_requested else 1)
            return
        try:
            self._track(method, message.get("params"))
        except Exception as exc:  # a malformed message is the server's to answer, as always
            log.warning("wtls: could not follow %s (%s); relayed as it is", method, exc)
        if not self.connected and method in STATE_NOTIFICATIONS:
            return  # the replay after the reconnect carries it
        self._to_engine(body)

    def _client_response(self, message: dict[str, Any], msg_id: Any) -> bytes:
        """The editor's answer to an engine request, with the engine's id back (b"" when it
        answers an engine that is gone)."""
        target = self.server_requests.pop(msg_id, None) if isinstance(msg_id, int) else None
        if target is None:
            return _dump(message)
        generation, engine_id = target
        if generation != self.generation:
            return b""
        return _dump({**message, "id": engine_id})

    def _track(self, method: str, params: Any) -> None:
        """Keep what a new engine must be told (documents, folders, configuration)."""
        if not isinstance(params, dict):
            params = {}
        document = params.get("textDocument")
        uri = document.get("uri") if isinstance(document, dict) else None
        if method == "initialized":
            self.initialized = True
        elif method == "textDocument/didOpen" and isinstance(uri, str):
            assert isinstance(document, dict)
            self.documents[uri] = _Document(
                str(document.get("languageId", "")),
                int(document.get("version", 0) or 0),
                str(document.get("text", "")),
            )
        elif method == "textDocument/didChange" and isinstance(uri, str):
            assert isinstance(document, dict)
            open_doc = self.documents.get(uri)
            if open_doc is not None:
                for change in params.get("contentChanges") or []:
                    if isinstance(change, dict):
                        open_doc.text = apply_change(open_doc.text, change, self.encoding)
                version = document.get("version")
                if isinstance(version, int):
                    open_doc.version = version
        elif method == "textDocument/didClose" and isinstance(uri, str):
            self.documents.pop(uri, None)
        elif method == "workspace/didChangeConfiguration":
            self.configuration = params
        elif method == "workspace/didChangeWorkspaceFolders" and self.init_params is not None:
            event = params.get("event") if isinstance(params.get("event"), dict) else {}
            assert isinstance(event, dict)
            removed = {f.get("uri") for f in event.get("removed") or [] if isinstance(f, dict)}
            folders = [
                f
                for f in self.init_params.get("workspaceFolders") or []
                if isinstance(f, dict) and f.get("uri") not in removed
            ]
            folders += [f for f in event.get("added") or [] if isinstance(f, dict)]
            self.init_params["workspaceFolders"] = folders

    def _to_engine(self, body: bytes) -> None:
        if self.connected:
            self._write_engine(body)
        else:
            self.queued.append(body)

    def _write_engine(self, body: bytes) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):  # a lost engine is noticed by its reader
                self._writer.write(frame(body))

    # ------------------------------------------------------------------ the engine's side
    async def _read_engine(self, reader: asyncio.StreamReader, generation: int) -> None:
        scanner = HeaderScanner()
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                length, _garbage = scanner.line(line)
                if length is None:
                    continue
                body = await reader.readexactly(length)
                if generation != self.generation:
                    return
                try:
                    self._from_engine(body)
                except Exception:
                    log.exception("wtls: could not follow a message of the engine")
                    self._to_client(body)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        if generation == self.generation and self._done is not None and not self._done.done():
            self._lost()

    def _from_engine(self, body: bytes) -> None:
        try:
            message = json.loads(body)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            self._to_client(body)
            return
        method = message.get("method")
        msg_id = message.get("id")
        if not isinstance(method, str):
            if isinstance(msg_id, str) and msg_id.startswith(_OWN_ID_PREFIX):
                # The answer to a replayed initialize (late ones too): the editor has its own.
                answer = self._replay_answer
                if answer is not None and msg_id == self._replay_id and not answer.done():
                    answer.set_result(message)
                return
            answered = self.pending.pop(msg_id, None) if isinstance(msg_id, (int, str)) else None
            if answered is not None and answered.method == "initialize":
                self._initialize_answered(message)
            self._to_client(body)
            if answered is not None and answered.method == "initialize":
                self._write_modules()
            return
        if msg_id is not None:  # the engine asks the editor: an id of ours
            own = self._next_server_id
            self._next_server_id += 1
            self.server_requests[own] = (self.generation, msg_id)
            self._to_client(_dump({**message, "id": own}))
            return
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        if method == SETTLED_METHOD:
            self._settled = True
            self._activity.set()
            return
        if method == "textDocument/publishDiagnostics" and isinstance(params.get("uri"), str):
            uri = params["uri"]
            if params.get("diagnostics"):
                self.shown.add(uri)
            else:
                self.shown.discard(uri)
            self.stale.discard(uri)
            self._activity.set()
        elif method == "$/progress":
            token = json.dumps(params.get("token"))
            value = params.get("value") if isinstance(params.get("value"), dict) else {}
            assert isinstance(value, dict)
            if value.get("kind") == "begin":
                self.progress[token] = params.get("token")
            elif value.get("kind") == "end":
                self.progress.pop(token, None)
            self._activity.set()
        elif method == "wtls/worktrees":
            self._worktrees_seen = True
            self._activity.set()
        self._to_client(body)

    def _initialize_answered(self, message: dict[str, Any]) -> None:
        result = message.get("result")
        if not isinstance(result, dict):
            return
        self.init_answered = True
        capabilities = result.get("capabilities")
        if isinstance(capabilities, dict) and isinstance(capabilities.get("positionEncoding"), str):
            self.encoding = capabilities["positionEncoding"]

    def _write_modules(self) -> None:
        target = os.environ.get(MODULES_ENV)
        if target and not self._modules_written:
            self._modules_written = True
            with contextlib.suppress(OSError):
                Path(target).write_text("\n".join(sorted(sys.modules)) + "\n")

    def _to_client(self, body: bytes) -> None:
        try:
            sys.stdout.buffer.write(frame(body))
            sys.stdout.buffer.flush()
        except (BrokenPipeError, ValueError, OSError):
            self._finish(1)  # the editor is gone

    def _error_to_client(self, msg_id: Any, code: int, text: str) -> None:
        self._to_client(
            _dump({"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": text}})
        )

    # ------------------------------------------------------------------ engine lost
    def _lost(self) -> None:
        """The engine connection ended: stop writing to it and rebuild the session."""
        self.connected = False
        self.generation += 1
        old, self._writer = self._writer, None
        if old is not None:
            with contextlib.suppress(Exception):
                old.close()
        if self._replay_answer is not None and not self._replay_answer.done():
            self._replay_answer.set_result({})  # the rebuild running notices and starts over
        if not self._rebuilding:
            self._spawn(self._rebuild())

    async def _rebuild(self) -> None:
        """Rebuild the session on a new engine until one takes it (see the module docstring)."""
        self._rebuilding = True
        try:
            while not await self._rebuild_once():
                if self._done is None or self._done.done():
                    return  # the editor left meanwhile
        finally:
            self._rebuilding = False

    async def _rebuild_once(self) -> bool:
        """One attempt; False when that engine was lost too before it was ready."""
        loop = asyncio.get_running_loop()
        lost = self.generation
        in_flight = [
            (msg_id, p)
            for msg_id, p in self.pending.items()
            if p.sent_to is not None and p.sent_to < lost
        ]
        if self.shutdown_requested:
            # The editor is leaving: answer its shutdown, start no engine for it.
            for msg_id, pending in in_flight:
                del self.pending[msg_id]
                if pending.method == "shutdown":
                    self._to_client(_dump({"jsonrpc": "2.0", "id": msg_id, "result": None}))
                else:
                    self._error_to_client(msg_id, REQUEST_FAILED, ENGINE_STOPPED)
            return True
        log.warning("wtls: the engine for %s is gone: connecting again", self.common)
        for token in self.progress.values():
            self._to_client(
                _dump(
                    {
                        "jsonrpc": "2.0",
                        "method": "$/progress",
                        "params": {"token": token, "value": {"kind": "end"}},
                    }
                )
            )
        self.progress.clear()
        for msg_id, pending in in_flight:
            if not _reads_only(pending.method):
                del self.pending[msg_id]
                self._error_to_client(msg_id, REQUEST_FAILED, ENGINE_STOPPED)
        now = loop.time()
        self._losses = [t for t in self._losses if now - t < LOSS_WINDOW] + [now]
        self._worktrees_seen = self._settled = False
        await self._reconnect(len(self._losses) >= MAX_LOSSES)
        generation = self.generation
        self.stale = set(self.shown)
        if self.init_answered and not await self._replay_initialize():
            return False
        if generation != self.generation:
            return False
        if self.initialized:
            self._write_engine(_dump({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
        if self.configuration is not None:
            self._write_engine(
                _dump(
                    {
                        "jsonrpc": "2.0",
                        "method": "workspace/didChangeConfiguration",
                        "params": self.configuration,
                    }
                )
            )
        if self.initialized and not await self._wait_ready(generation):
            return False
        for uri, document in self.documents.items():
            self._write_engine(
                _dump(
                    {
                        "jsonrpc": "2.0",
                        "method": "textDocument/didOpen",
                        "params": {
                            "textDocument": {
                                "uri": uri,
                                "languageId": document.language,
                                "version": document.version,
                                "text": document.text,
                            }
                        },
                    }
                )
            )
        # What the old engine never answered (reads only, by now), then what waited.
        for pending in self.pending.values():
            if pending.sent_to is not None:
                self._write_engine(pending.body)
            pending.sent_to = generation
        queued, self.queued = self.queued, []
        for body in queued:
            self._write_engine(body)
        self.connected = True
        if self.stale:
            self._spawn(self._clear_stale(generation))
        return True

    async def _reconnect(self, give_up_on_engines: bool) -> None:
        """Attach a new engine (or, when engines keep failing, a child ``--no-daemon``)."""
        if not give_up_on_engines:
            for attempt in range(2):
                try:
                    sock, _reply = await asyncio.to_thread(
                        connect_engine,
                        self.common,
                        "lsp",
                        idle_timeout=self.idle_timeout,
                    )
                except Exception as exc:
                    log.warning("wtls: cannot reach an engine for %s: %s", self.common, exc)
                    if attempt == 0:
                        await asyncio.sleep(0.2)
                    continue
                await self._attach_socket(sock)
                return
        log.warning("wtls: running the server in a child process for this session")
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "wtls",
            "serve",
            "--no-daemon",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=_STREAM_LIMIT,
        )
        assert child.stdout is not None and child.stdin is not None
        self._child = child
        self._attach(child.stdout, child.stdin)

    async def _wait_ready(self, generation: int) -> bool:
        """Wait (bounded) until the new engine has opened the session's repository (its first
        ``wtls/worktrees``): a read sent before would find no state. False: lost meanwhile."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REPLAY_TIMEOUT
        while generation == self.generation and not self._worktrees_seen:
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.warning("wtls: the new engine sent no state in time")
                break
            self._activity.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._activity.wait(), remaining)
        return generation == self.generation

    async def _replay_initialize(self) -> bool:
        """Send the session's initialize to the new engine and swallow its answer."""
        loop = asyncio.get_running_loop()
        generation = self.generation
        self._replay_id = f"{_OWN_ID_PREFIX}initialize-{generation}"
        self._replay_answer = loop.create_future()
        self._write_engine(
            _dump(
                {
                    "jsonrpc": "2.0",
                    "id": self._replay_id,
                    "method": "initialize",
                    "params": self.init_params or {},
                }
            )
        )
        try:
            await asyncio.wait_for(asyncio.shield(self._replay_answer), REPLAY_TIMEOUT)
        except TimeoutError:
            log.warning("wtls: the new engine did not answer initialize in time")
        finally:
            self._replay_answer = None
        return generation == self.generation

    async def _clear_stale(self, generation: int) -> None:
        """Once the new engine settled, clear the diagnostics it did not publish again."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_LIMIT
        while generation == self.generation and not self._settled:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._activity.clear()
            try:
                await asyncio.wait_for(self._activity.wait(), min(SETTLE_QUIET, remaining))
            except TimeoutError:
                if self._worktrees_seen and not self.progress:
                    break
        if generation != self.generation:
            return
        for uri in sorted(self.stale):
            self.shown.discard(uri)
            self._to_client(
                _dump(
                    {
                        "jsonrpc": "2.0",
                        "method": "textDocument/publishDiagnostics",
                        "params": {"uri": uri, "diagnostics": []},
                    }
                )
            )
        self.stale.clear()


def _pump_stdin(loop: asyncio.AbstractEventLoop, reader: asyncio.StreamReader) -> None:
    """Feed stdin to the event loop (a thread: stdin may be a pipe, a file or a terminal)."""
    while True:
        try:
            chunk = os.read(0, 65536)
        except OSError:
            chunk = b""
        try:
            if not chunk:
                loop.call_soon_threadsafe(reader.feed_eof)
                return
            loop.call_soon_threadsafe(reader.feed_data, chunk)
        except RuntimeError:  # the loop is closed: the session ended
            return
