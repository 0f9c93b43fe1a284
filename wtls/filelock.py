"""Waiting for an advisory file lock (``flock``) for a bounded time. No LSP."""

from __future__ import annotations

import fcntl
import time


def flock_within(fd: int, timeout: float, poll: float) -> bool:
    """Take an exclusive ``flock`` on ``fd``, trying every ``poll`` seconds for at most
    ``timeout`` seconds; whether it was taken (the caller decides what a miss means)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)
