"""The JSON-RPC layer as wtls needs it: every request answered, every message valid UTF-8.

:class:`WtlsProtocol` is pygls' protocol with the fixes that keep a client from waiting forever
(a request without ``params``, unreadable params, a request after ``shutdown``) and a writer
that sends valid UTF-8 whatever file names a message carries. :class:`AnsweredOnPurpose` keeps
pygls from logging a traceback for errors wtls answers on purpose. Reading frames is
:mod:`wtls.server.framing`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Generator
from typing import Any

from cattrs import Converter
from lsprotocol import types
from pygls.exceptions import (
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcServerError,
)
from pygls.protocol import LanguageServerProtocol, default_converter
from pygls.protocol.language_server import lsp_method

from wtls.errors import ERROR_CODE, REFUSED_CODE
from wtls.jsontext import dumps

log = logging.getLogger(__name__)

#: The methods wtls defines itself (``wtls/worktrees``, ``wtls/predictedMerge``, ...).
OWN_METHOD_PREFIX = "wtls/"


@functools.cache
def shared_converter() -> Converter:
    """One cattrs converter for every session of the process. cattrs builds a structure function
    the first time a converter meets a type, and an editor's ``initialize`` meets hundreds:
    with a converter per session, every window that joined the engine paid ~0.15 CPU-s again."""
    converter: Converter = default_converter()  # type: ignore[no-untyped-call]
    return converter


class WtlsProtocol(LanguageServerProtocol):
    """pygls' protocol, except that every request gets an answer: one without ``params``, one
    whose params cannot be read, and one arriving after ``shutdown``.

    In connection mode (one session among many in the engine's loop) ``on_exit`` is set and
    ``exit`` ends that session only: pygls would ``sys.exit`` the whole process."""

    #: Called with the LSP exit code (0 after ``shutdown``) instead of exiting the process.
    on_exit: Callable[[int], None] | None = None

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args: Any) -> Generator[Any, Any, None]:
        """``exit``: the process ends (stdio), or only this session (connection mode)."""
        if self.on_exit is None:
            yield from super().lsp_exit(*args)
            return
        if (user_handler := self.fm.features.get(types.EXIT)) is not None:
            yield user_handler, args, None
        self.on_exit(0 if self._shutdown else 1)

    def structure_message(self, data: dict[str, Any]) -> Any:
        """JSON-RPC lets a request omit ``params`` (Neovim does for ``request(m, nil)``), which
        pygls cannot structure; and a request pygls cannot read is never answered, so the
        client would wait forever: answer it with an error."""
        if "jsonrpc" in data and "method" in data and "params" not in data:
            data = {**data, "params": None}
        method = data.get("method")
        if isinstance(method, str) and method.startswith(OWN_METHOD_PREFIX):
            # pygls turns the params of a method it does not know into namedtuples, renaming
            # keys that are not identifiers (``with`` became ``_1``): wtls's own methods get
            # their params as the plain JSON that was sent.
            params = data.get("params")
            message = self._structure_or_answer({**data, "params": None})
            if hasattr(message, "params"):
                message.params = params
            return message
        return self._structure_or_answer(data)

    def notify_json(self, method: str, params: dict[str, Any]) -> None:
        """A notification of wtls's own whose params are plain JSON values: written as they
        are. pygls' ``notify`` wraps them in an attrs message that cattrs then walks value by
        value (three times the cost of the JSON text itself), and the engine sends one to every
        session on every change."""
        self._send_data({"jsonrpc": self.VERSION, "method": method, "params": params})

    def _structure_or_answer(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except Exception:
            if "method" in data and data.get("id") is not None:
                error = JsonRpcInvalidParams(f"invalid params for {data['method']!r}")
                self._send_response(data["id"], error=error.to_response_error())
            raise

    def _send_data(self, data: Any) -> None:
        """pygls' writer, except that the body is valid UTF-8 whatever file names it carries
        (:func:`wtls.jsontext.dumps`) and ``Content-Length`` counts its bytes."""
        if not data:
            return
        if self.writer is None:
            log.error("cannot send: no transport")
            return
        try:
            body = dumps(data, default=self._serialize_message).encode("utf-8")
            if self._include_headers:
                body = (
                    f"Content-Length: {len(body)}\r\n"
                    f"Content-Type: {self.CONTENT_TYPE}; charset={self.CHARSET}\r\n\r\n"
                ).encode("ascii") + body
            self.writer.write(body)  # stdio only: pygls' StdoutWriter writes synchronously
        except BrokenPipeError:
            log.error("cannot send: the client closed the connection")
            raise
        except Exception as error:
            log.exception("cannot send a message")
            self._server._report_server_error(error, JsonRpcInternalError)

    def handle_message(self, message: Any) -> None:
        """LSP: requests after shutdown "should error with InvalidRequest"; pygls drops them
        without a word, which leaves the client waiting forever."""
        method = getattr(message, "method", None)
        msg_id = getattr(message, "id", None)
        if self._shutdown and msg_id is not None and method not in (None, types.EXIT):
            error = JsonRpcInvalidRequest("the server is shutting down")
            self._send_response(msg_id, error=error.to_response_error())
            return
        super().handle_message(message)


class StreamWriter:
    """pygls' writer interface over an asyncio stream (an engine connection): writes are
    buffered by asyncio; once the other end is gone they are dropped (the session ends when
    its reader sees the end of the stream)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    def write(self, data: bytes) -> None:
        if not self._writer.is_closing():
            self._writer.write(data)

    def close(self) -> None:
        self._writer.close()


class AnsweredOnPurpose(logging.Filter):
    """pygls logs a traceback for every error response; a refusal or a git failure that wtls
    answers on purpose, or a client's invalid params, is an outcome, not a crash: keep one line,
    drop the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, JsonRpcInvalidParams) or (
            isinstance(exc, JsonRpcServerError) and exc.code in (REFUSED_CODE, ERROR_CODE)
        ):
            record.msg, record.args = "answered with error %s: %s", (exc.code, exc)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True
