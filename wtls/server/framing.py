"""The server's read loop: LSP frames from stdin, back in step after a bad header.

Where each frame ends, and how the stream gets back in step after a frame with an unusable
``Content-Length``, is :class:`wtls.frames.HeaderScanner` (shared with the forwarder, which
reads the editor's stream first). This loop hands each body to pygls and answers a skipped
request with an InvalidRequest error, so the client does not wait forever.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from pygls.exceptions import JsonRpcException, JsonRpcInvalidRequest
from pygls.protocol import JsonRPCProtocol

from wtls.frames import SKIPPED_MESSAGE, HeaderScanner, skipped_request_id

log = logging.getLogger(__name__)


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
    ``protocol``, skipping frames whose header is unusable (:mod:`wtls.frames`)."""
    scanner = HeaderScanner()
    while not stop_event.is_set():
        line = await reader.readline()
        if not line:
            break
        length, garbage = scanner.line(line)
        if garbage is not None:
            _answer_skipped(protocol, garbage)
        if length is None:
            continue
        body = await reader.readexactly(length)
        if not body:
            break
        _dispatch(protocol, body, error_handler)


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
    msg_id = skipped_request_id(line)
    if msg_id is not None:
        error = JsonRpcInvalidRequest(SKIPPED_MESSAGE)
        protocol._send_response(msg_id, error=error.to_response_error())
