"""``wtls serve``: its options, and the server in this process (``--no-daemon``, and the
forwarder's fallback). Light on purpose: the console script reaches it without the parser, the
full parser imports it for serve's options, and only :func:`serve` imports what runs
(:mod:`wtls.daemon.forwarder` by default, the server for the in-process path)."""

from __future__ import annotations

import argparse
import io
import logging
import os
from collections.abc import Sequence
from typing import Any, BinaryIO

SERVE_HELP = "run the language server over stdio (what editors start)"
SERVE_DESCRIPTION = (
    "Run the language server on stdin/stdout; editors start this (see the README's Editors "
    "section). The session connects to the repository's engine (one background process per "
    "repository, shared by every window, agent and command: `wtls daemon status`), starts it "
    "when none runs, and reconnects by itself if it stops. Outside a git repository, or when "
    "no engine can start, the server runs in this process."
)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``wtls serve`` (the full parser lists them too)."""
    parser.add_argument(
        "--no-daemon",
        action="store_true",
        help="run the server in this process, without the repository's engine (the session "
        "then watches the repository on its own)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=positive_seconds,
        metavar="S",
        help="when this session starts the engine: seconds it keeps running after its last "
        "session left (default: $WTLS_ENGINE_IDLE_TIMEOUT, else 600)",
    )


def positive_seconds(text: str) -> float:
    """argparse type: a positive, finite number of seconds (a clear error otherwise)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def serve_main(argv: Sequence[str]) -> int:
    """``wtls serve [--no-daemon] [--idle-timeout S]``: the console script's fast path."""
    parser = argparse.ArgumentParser(prog="wtls serve", description=SERVE_DESCRIPTION)
    add_serve_arguments(parser)
    args = parser.parse_args(list(argv))
    return serve(no_daemon=args.no_daemon, idle_timeout=args.idle_timeout)


def serve(*, no_daemon: bool = False, idle_timeout: float | None = None) -> int:
    """Serve one editor session on stdin/stdout; the process's exit code (LSP: 0 after
    ``shutdown`` then ``exit``, else 1)."""
    logging.basicConfig(level=logging.WARNING)
    if no_daemon:
        return run_in_process(b"")
    # Imported here: the full parser imports this module for serve's options, and the other
    # commands must not pay for the forwarder (asyncio) they never run.
    from wtls.daemon.forwarder import forward

    return forward(idle_timeout=idle_timeout, fallback=run_in_process)


class _Replay(io.RawIOBase):
    """stdin with ``prefix`` (the bytes the forwarder already read) put back in front."""

    def __init__(self, prefix: bytes, fd: int = 0) -> None:
        self._prefix = memoryview(prefix)
        self._fd = fd

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = os.read(self._fd, len(view))
        view[: len(data)] = data
        return len(data)


def run_in_process(consumed: bytes) -> int:
    """Run the language server in this process on stdin/stdout, ``consumed`` read first."""
    # Imported here, not at the top: the server stack is what the forwarder path must not load.
    from wtls.server.server import run_stdio

    stdin: BinaryIO | None = io.BufferedReader(_Replay(consumed)) if consumed else None
    try:
        run_stdio(stdin)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0
