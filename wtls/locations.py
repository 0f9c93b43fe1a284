"""One reading of "a file URI or a path", for every argument that names a place.

Editors send ``file://`` URIs, terminals send paths; both arrive in the same arguments (the
server's ``uri``/``worktree``/``paths`` command arguments, the CLI's PATH, a worktree spec).
:func:`to_path` turns either into a :class:`~pathlib.Path`, or raises :class:`BadLocation` (a
:class:`Refused`: nothing was done) naming the argument. Refused: a NUL byte (raw or ``%00``),
a scheme other than ``file``, a ``file://host/`` URI whose host is not this machine (only an
empty host and ``localhost`` are), a relative ``file:`` path, a query or fragment.

Percent-decoding is byte-exact: ``%FF`` is the byte 0xFF of a file name that is not UTF-8
(kept as a surrogate escape, as :func:`os.fsdecode` does), and :func:`file_uri` encodes such a
path back to the same URI.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes, urlsplit

from wtls.errors import Refused

#: ``scheme:`` at the start of a URI (RFC 3986); one letter is a Windows drive, not a scheme.
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):")
#: Hosts that mean this machine in a ``file:`` URI (RFC 8089).
LOCAL_HOSTS = frozenset({"", "localhost"})


class BadLocation(Refused):
    """An argument that should name a local file or folder does not.

    ``name`` is the argument, ``reason`` what is wrong with its value (the message has both).
    """

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"argument {name!r} {reason}")
        self.name = name
        self.reason = reason


def is_uri(value: str) -> bool:
    """Does ``value`` start with a URI scheme (``file:``, ``https:``, …)?"""
    return _SCHEME_RE.match(value) is not None


def to_path(value: str, *, name: str = "path", base: Path | None = None) -> Path:
    """The local path a ``file:`` URI or a path names; raises :class:`BadLocation`.

    A path has ``~`` expanded; a relative one is taken from ``base`` when given (else left
    relative). ``name`` is the argument's name, used in the error message.
    """
    if "\0" in value:
        raise BadLocation(name, f"contains a NUL character: {value!r}")
    if not value:
        raise BadLocation(name, "is empty: give a path or a file:// URI")
    match = _SCHEME_RE.match(value)
    if match is None:
        path = Path(value).expanduser()
        return base / path if base is not None and not path.is_absolute() else path
    scheme = match.group(1).lower()
    if scheme != "file":
        raise BadLocation(name, f"is not a file URI or a path (a {scheme}: URI): {value!r}")
    parts = urlsplit(value)
    host = (parts.hostname or "") if parts.netloc else ""
    if parts.netloc and (host.lower() not in LOCAL_HOSTS or parts.port or "@" in parts.netloc):
        raise BadLocation(
            name,
            f"names a file on another machine ({parts.netloc!r}): {value!r}; "
            "only file:///path and file://localhost/path are local",
        )
    if parts.query or parts.fragment or value.rstrip().endswith(("?", "#")):
        raise BadLocation(
            name,
            f"has a query or fragment ('?' or '#' must be encoded as %3F, "
            f"%23 in a file URI): {value!r}",
        )
    raw = unquote_to_bytes(parts.path)
    if b"\0" in raw:
        raise BadLocation(name, f"encodes a NUL byte (%00): {value!r}")
    if not raw.startswith(b"/"):
        raise BadLocation(name, f"is not an absolute file URI: {value!r}")
    return Path(os.fsdecode(raw))


def file_uri(path: Path | str) -> str:
    """The ``file://`` URI of an absolute path, its bytes percent-encoded (exact for names that
    are not UTF-8; the same text as pygls' ``from_fs_path`` for those that are)."""
    return "file://" + quote(os.fsencode(str(path)), safe="/")
