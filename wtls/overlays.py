"""Unsaved editor buffers as overlays for conflict prediction.

An open document whose text differs from its file on disk is predicted as if it were saved:
:func:`buffer_overlays` keeps the buffers that differ, as the bytes they would write. No LSP.
:func:`differs_from_disk` is the one test of "unsaved" (also used by :mod:`wtls.unsaved`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def buffer_bytes(text: str) -> bytes:
    """The bytes a buffer's ``text`` would write: UTF-8 with ``surrogateescape``, the way
    undecodable bytes were read, so a buffer equal to its file is recognised as such."""
    return text.encode("utf-8", "surrogateescape")


def differs_from_disk(path: Path, text: str) -> bool:
    """Whether a buffer's ``text`` differs from the file at ``path`` (a missing or unreadable
    file differs). Blocking (reads the file)."""
    try:
        on_disk = path.read_bytes()
    except OSError:
        return True
    return on_disk != buffer_bytes(text)


def buffer_overlays(texts: Mapping[Path, str]) -> dict[Path, bytes]:
    """The buffers of ``texts`` whose content differs from the disk (a missing file differs).

    Blocking (reads every file).
    """
    return {
        path: buffer_bytes(text) for path, text in texts.items() if differs_from_disk(path, text)
    }
