"""Every ``wtls`` command but ``serve``: parse, check git, run the handler, map errors to exit
codes (0 success, 1 refused or a problem found, 2 error or usage error)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from wtls.cli.parser import build_parser
from wtls.cli.render import EXIT_ERROR, EXIT_OK, EXIT_REFUSED, Handler, fix_words
from wtls.errors import Refused
from wtls.git import GitError, GitUnavailable, require_git
from wtls.safety import printable
from wtls.worktrees import RepositoryError

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_REFUSED", "build_parser", "run"]


def run(argv: Sequence[str] | None = None) -> int:
    """Run one ``wtls`` command (``serve`` included, for its --help)."""
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_ERROR
    if args.command == "serve":  # the server owns stdin/stdout (LSP)
        return handler(args)
    if args.command == "hook":  # an agent's hook: exits 0 whatever happens, no git check
        return handler(args)
    try:
        code = _run(handler, args)
        sys.stdout.flush()  # here, so that a closed pipe is handled below
        sys.stderr.flush()
        return code
    except BrokenPipeError:
        # The reader went away (`wtls list --json | head`): no traceback, and none at exit
        # when Python flushes the streams again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            os.dup2(devnull, stream.fileno())
        return EXIT_ERROR


def _run(handler: Handler, args: argparse.Namespace) -> int:
    try:
        require_git()
        return handler(args)
    except Refused as exc:
        # Messages quote file names, lock reasons and git's words: never raw escape codes.
        print(f"wtls: refused: {printable(exc.worded(fix_words))}", file=sys.stderr)
        return EXIT_REFUSED
    except (RepositoryError, GitError, GitUnavailable) as exc:
        print(f"wtls: error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_ERROR
