"""LSP frames on a byte stream, back in step after a bad header (stdlib only).

Used by the server's read loop (:mod:`wtls.server.framing`) and by the forwarder
(:mod:`wtls.daemon.forwarder`), which reads the same stream from the editor first: both must
agree on where each message ends.

pygls 2.1's loop (``pygls.io_.run_async``) only knows a header line that is exactly
``Content-Length: <digits>``. After ``Content-Length: abc`` it cannot know where the body ends,
reads that body as a header line, and since a body has no line break, the next frame's
``Content-Length`` line is glued to it and missed too: every later message is lost while the
process stays alive, so the editor never restarts it.

:class:`HeaderScanner` recovers instead. A frame without a usable ``Content-Length`` (not a
number, 0, or more than :data:`MAX_BODY_BYTES`) is skipped with one warning; the lines after it
are read as garbage until one ends with a ``Content-Length: <digits>`` header (JSON text never
holds a raw line break inside a string, so a body glued to the next header ends exactly so),
and the stream is back in step from there. When a skipped body is a request whose id can be
read (:func:`skipped_request_id`), the reader answers it with an InvalidRequest error, so the
client does not wait forever.
"""

from __future__ import annotations

import json
import logging
import re

log = logging.getLogger(__name__)

#: A body larger than this is refused (skipped) rather than read into memory.
MAX_BODY_BYTES = 256 * 1024 * 1024
#: The error message that answers a request whose frame was skipped.
SKIPPED_MESSAGE = "the message's Content-Length header was not a valid length"

_HEADER_RE = re.compile(rb"([A-Za-z][A-Za-z0-9-]*):[ \t]*([^\r\n]*?)[ \t]*\r?\n")
#: A ``Content-Length`` header at the end of a line (after a skipped body glued to it).
_TRAILING_LENGTH_RE = re.compile(rb"Content-Length:[ \t]*(\d+)[ \t]*\r?\n\Z", re.IGNORECASE)


class HeaderScanner:
    """Reads a stream's header lines one at a time (see the module docstring): says when a body
    of a known length follows, and which lines were garbage."""

    def __init__(self) -> None:
        self._length: int | None = None  # the current header block's Content-Length, once read
        self._bad: bytes | None = None  # an unusable Content-Length value of the current block
        self._resync = False  # skipping a body of unknown length: lines are garbage to a header

    def line(self, line: bytes) -> tuple[int | None, bytes | None]:
        """Take one line (with its line break): ``(length, garbage)`` where ``length`` is the
        size of the body to read next (the header block ended) and ``garbage`` the line when it
        was skipped (the caller may answer it: :func:`skipped_request_id`)."""
        if not line.strip():  # the blank line that ends a header block
            length, self._length = self._length, None
            if length is None and self._bad is not None:
                log.warning(
                    "wtls: skipped a message with an unusable Content-Length header (%r); "
                    "reading on from the next header",
                    self._bad.decode("ascii", "replace")[:40],
                )
                self._resync, self._bad = True, None
            return length, None
        header = _HEADER_RE.fullmatch(line) if not self._resync else None
        if header is not None:
            if header.group(1).lower() == b"content-length":
                self._length, self._bad = _length(header.group(2))
            return None, None  # Content-Type and other headers carry nothing we need
        # Not a header line: the body of a skipped message, possibly glued to the next header.
        if not self._resync and self._length is None and self._bad is None:
            log.warning("wtls: skipped bytes that are not an LSP header: %r", line[:80])
        self._resync = True
        trailing = _TRAILING_LENGTH_RE.search(line)
        if trailing is not None:
            self._length, self._bad = _length(trailing.group(1))
            self._resync = False
        return None, line


def _length(value: bytes) -> tuple[int | None, bytes | None]:
    """``(length, None)`` for a usable Content-Length value, else ``(None, value)``."""
    if value.isdigit() and 0 < int(value) <= MAX_BODY_BYTES:
        return int(value), None
    return None, value or b"(empty)"


def skipped_request_id(line: bytes) -> int | str | None:
    """The id of the request a skipped line starts with (a whole JSON request), else None."""
    end = line.rfind(b"}")
    if end < 0 or not line.lstrip().startswith(b"{"):
        return None
    try:
        message = json.loads(line[: end + 1])
    except ValueError:
        return None
    if not isinstance(message, dict) or "method" not in message:
        return None
    msg_id = message.get("id")
    if isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool):
        return msg_id
    return None


def frame(body: bytes) -> bytes:
    """One LSP frame: the ``Content-Length`` header and ``body``."""
    return b"Content-Length: %d\r\n\r\n" % len(body) + body
