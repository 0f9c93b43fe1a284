"""Reading files and showing text that came from a repository, which may be hostile.

A committed ``.wtls.toml`` can be a symbolic link to ``/dev/zero`` (reads forever), a local one
a FIFO (an ``open`` blocks forever); lock reasons and file names can hold terminal escape
sequences that repaint the screen. Everything wtls reads from a repository goes through
:func:`read_small_file`, and everything it prints through :func:`printable`.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

#: The most wtls reads of a config-like file (``.wtls.toml``, ``.worktreeinclude``, a prompt...).
MAX_CONFIG_BYTES = 1 << 20

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_ALL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class UnsafeFile(OSError):
    """A file wtls will not read: not a regular file, too large, or a link leaving its folder.

    The message is a complete sentence fragment starting with the file's path.
    """


_SHORT = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, keep_newlines: bool = True) -> str:
    """``text`` with control characters (ESC, CR, bidi overrides...) shown escaped (``\\x1b``).

    Newlines and tabs are kept unless ``keep_newlines`` is False (for one-line fields).
    """
    return (_CONTROL if keep_newlines else _CONTROL_ALL).sub(_escape, text)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _size_text(limit: int) -> str:
    return f"{limit // (1 << 20)} MiB" if limit % (1 << 20) == 0 else f"{limit} bytes"


def read_small_file(
    path: Path, *, limit: int = MAX_CONFIG_BYTES, inside: Path | None = None
) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    Raises :class:`FileNotFoundError` when nothing is there, and :class:`UnsafeFile` (with a
    clear message) when ``path`` is a FIFO, device, folder or socket, larger than ``limit``, a
    dangling link, or (with ``inside``) a symbolic link whose target is outside ``inside``.
    Never blocks on a FIFO; other :class:`OSError` pass through.
    """
    lst = os.lstat(path)
    if stat.S_ISLNK(lst.st_mode):
        target = os.path.realpath(path)
        if not os.path.exists(path):
            raise UnsafeFile(f"{path} is a symbolic link to {target}, which does not exist")
        if inside is not None:
            root = os.path.realpath(inside)
            if os.path.commonpath([root, target]) != root:
                raise UnsafeFile(
                    f"{path} is a symbolic link to {target}, outside {inside}: wtls only reads "
                    "it when it is a file of the worktree itself"
                )
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFile(f"{path} is {_kind(st.st_mode)}, not a regular file")
    if st.st_size > limit:
        raise UnsafeFile(f"{path} is larger than {_size_text(limit)} ({st.st_size} bytes)")
    # O_NONBLOCK: if the file was swapped for a FIFO since the stat, open must not wait for a
    # writer; fstat below then refuses it.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile(f"{path} is {_kind(st.st_mode)}, not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise UnsafeFile(f"{path} is larger than {_size_text(limit)}")
    return b"".join(chunks)


def read_limited_stream(path: Path, *, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """Up to ``limit`` bytes of a file the user named (a pipe such as ``<(cmd)`` is fine).

    Raises :class:`UnsafeFile` when it holds more (``/dev/zero`` stops there, no memory blow-up)
    or is a folder; other :class:`OSError` pass through.
    """
    if os.path.isdir(path):
        raise UnsafeFile(f"{path} is a folder, not a file")
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UnsafeFile(f"{path} is larger than {_size_text(limit)}")
    return data
