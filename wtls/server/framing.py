"""The server's read loop: LSP frames from stdin, back in step after a bad header.

pygls 2.1's loop (``pygls.io_.run_async``) only knows a header line that is exactly
``Content-Length: <digits>``. After ``Content-Length: abc`` it cannot know where the body ends,
reads that body as a header line, and since a body has no line break, the next frame's
``Content-Length`` line is glued to it and missed too: every later message is lost while the
process stays alive, so the editor never restarts it.

This loop recovers instead. A frame without a usable ``Content-Length`` (not a number, 0, or
more than :data:`MAX_BODY_BYTES`) is skipped with one warning on stderr; the lines after it are
read as garbage until one ends with a ``Content-Length: <digits>`` header (JSON text never
holds a raw line break inside a string, so a body glued to the next header ends exactly so),
and the stream is back in step from there. When the skipped body is a request whose id can be
read, it is answered with an InvalidRequest error, so the client does not wait forever.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from pygls.exceptions import JsonRpcException, JsonRpcInvalidRequest
from pygls.protocol import JsonRPCProtocol

log = logging.getLogger(__name__)

#: A body larger than this is refused (skipped) rather than read into memory.
MAX_BODY_BYTES = 256 * 1024 * 1024

_HEADER_RE = re.compile(rb"([A-Za-z][A-Za-z0-9-]*):[ \t]*([^\r\n]*?)[ \t]*\r?\n")
#: A ``Content-Length`` header at the end of a line (after a skipped body glued to it).
_TRAILING_LENGTH_RE = re.compile(rb"Content-Length:[ \t]*(\d+)[ \t]*\r?\n\Z", re.IGNORECASE)


class AsyncLineReader(Protocol):
    """What the loop reads from (pygls' ``StdinAsyncReader``)."""

    def readline(self) -> Awaitable[bytes]: ...

    def readexactly(self, n: int) -> Awaitable[bytes]: ...


class StreamLineReader:
    """:class:`AsyncLineReader` over an asyncio stream (an engine connection): the end of the
    stream reads as ``b""``, and a line longer than the stream's limit comes in pieces (the
    loop reads such a line as garbage anyway) instead of raising."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    async def readline(self) -> bytes:
        try:
            return await self._reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial
        except asyncio.LimitOverrunError as exc:
            return await self._reader.readexactly(max(exc.consumed, 1))

    async def readexactly(self, n: int) -> bytes:
        try:
            return await self._reader.readexactly(n)
        except asyncio.IncompleteReadError:
            return b""


async def read_loop(
    stop_event: threading.Event,
    reader: AsyncLineReader,
    protocol: JsonRPCProtocol,
    error_handler: Callable[[Exception, type[JsonRpcException]], Any] | None = None,
) -> None:
    """Read frames until end of input (or ``stop_event``) and hand each message to
    ``protocol``, skipping frames whose header is unusable (see the module docstring)."""
    length: int | None = None  # the current header block's Content-Length, once read
    bad: bytes | None = None  # an unusable Content-Length value of the current block
    resync = False  # skipping a body of unknown length: lines are garbage up to a header
    while not stop_event.is_set():
        line = await reader.readline()
        if not line:
            break
        if not line.strip():  # the blank line that ends a header block
            if length is None:
                if bad is not None:
                    log.warning(
                        "wtls: skipped a message with an unusable Content-Length header (%r); "
                        "reading on from the next header",
                        bad.decode("ascii", "replace")[:40],
                    )
                    resync, bad = True, None
                continue
            body = await reader.readexactly(length)
            length = None
            if not body:
                break
            _dispatch(protocol, body, error_handler)
            continue
        header = _HEADER_RE.fullmatch(line) if not resync else None
        if header is not None:
            if header.group(1).lower() == b"content-length":
                length, bad = _length(header.group(2))
            continue  # Content-Type and other headers carry nothing we need
        # Not a header line: the body of a skipped message, possibly glued to the next header.
        if not resync and length is None and bad is None:
            log.warning("wtls: skipped bytes that are not an LSP header: %r", line[:80])
        resync = True
        _answer_skipped(protocol, line)
        trailing = _TRAILING_LENGTH_RE.search(line)
        if trailing is not None:
            length, bad = _length(trailing.group(1))
            resync = False


def _length(value: bytes) -> tuple[int | None, bytes | None]:
    """``(length, None)`` for a usable Content-Length value, else ``(None, value)``."""
    if value.isdigit() and 0 < int(value) <= MAX_BODY_BYTES:
        return int(value), None
    return None, value or b"(empty)"


def _dispatch(
    protocol: JsonRPCProtocol,
    body: bytes,
    error_handler: Callable[[Exception, type[JsonRpcException]], Any] | None,
) -> None:
    """Parse one body and hand it to pygls, as its own loop does."""
    try:
        message = json.loads(body, object_hook=protocol.structure_message)
        protocol.handle_message(message)
    except Exception as exc:
        log.exception("Unable to handle message")
        if error_handler is not None:
            error_handler(exc, JsonRpcException)


def _answer_skipped(protocol: JsonRPCProtocol, line: bytes) -> None:
    """If a skipped line starts with a whole JSON request, answer it with InvalidRequest."""
    end = line.rfind(b"}")
    if end < 0 or not line.lstrip().startswith(b"{"):
        return
    try:
        message = json.loads(line[: end + 1])
    except ValueError:
        return
    if not isinstance(message, dict) or "method" not in message:
        return
    msg_id = message.get("id")
    if isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool):
        error = JsonRpcInvalidRequest("the message's Content-Length header was not a valid length")
        protocol._send_response(msg_id, error=error.to_response_error())
