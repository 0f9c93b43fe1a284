"""Unsaved editor buffers as overlays for conflict prediction.

An open document whose text differs from its file on disk is predicted as if it were saved:
:func:`buffer_overlays` keeps the buffers that differ, as the bytes they would write. No LSP.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def buffer_overlays(texts: Mapping[Path, str]) -> dict[Path, bytes]:
    """The buffers of ``texts`` whose content differs from the disk (a missing file differs).

    Blocking (reads every file). Text is encoded as UTF-8 with ``surrogateescape``, the way
    undecodable bytes were read, so a buffer equal to its file is recognised as such.
    """
    overlays: dict[Path, bytes] = {}
    for path, text in texts.items():
        data = text.encode("utf-8", "surrogateescape")
        try:
            on_disk = path.read_bytes()
        except OSError:
            on_disk = None
        if on_disk != data:
            overlays[path] = data
    return overlays
