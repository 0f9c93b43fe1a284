"""Disk usage of worktree folders, cached."""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from wtls.links import absolute

_DISK_CACHE: dict[Path, tuple[float, int]] = {}
_DISK_LOCK = threading.Lock()


def _measure(root: Path, exclude: frozenset[Path]) -> int:
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    continue
                seen.add(key)
            total += getattr(st, "st_blocks", 0) * 512 or st.st_size
            if stat.S_ISDIR(st.st_mode):
                child = Path(entry.path)
                if child not in exclude:
                    stack.append(child)
    return total


def disk_usage(path: Path, *, max_age: float = 60.0, exclude: Iterable[Path] = ()) -> int:
    """Bytes ``path`` takes on disk (blocks; hard links once; symlinks not followed).

    Blocking and proportional to the number of files: call it off the event loop. Results are
    cached per path for ``max_age`` seconds; ``exclude`` skips folders (e.g. other worktrees
    nested inside this one).
    """
    key = absolute(path)
    now = time.monotonic()
    with _DISK_LOCK:
        hit = _DISK_CACHE.get(key)
    if hit is not None and now - hit[0] <= max_age:
        return hit[1]
    size = _measure(key, frozenset(absolute(p) for p in exclude))
    with _DISK_LOCK:
        _DISK_CACHE[key] = (time.monotonic(), size)
    return size


def size_text(n: int) -> str:
    """Bytes for a sentence: ``512 bytes``, ``3.4 MiB``, ``1.2 GiB``."""
    if n < 1024:
        return f"{n} byte{'s' * (n != 1)}"
    size = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        size /= 1024
        if size < 1024 or unit == "TiB":
            break
    return f"{size:.1f} {unit}"


def cached_disk_usage(path: Path) -> int | None:
    """The last measured size of ``path`` (any age), or None; never touches the disk."""
    with _DISK_LOCK:
        hit = _DISK_CACHE.get(absolute(path))
    return hit[1] if hit is not None else None


def invalidate_disk_usage(path: Path | None = None) -> None:
    """Forget the cached size of ``path`` (of every path when None)."""
    with _DISK_LOCK:
        if path is None:
            _DISK_CACHE.clear()
        else:
            _DISK_CACHE.pop(absolute(path), None)
