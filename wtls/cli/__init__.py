"""The ``wtls`` command line: a thin layer over the core, the same as the server's commands.

Exit codes: 0 success, 1 refused or a problem found (the reason on stderr; nothing changed),
2 error or usage error.

Modules: ``app`` (parse, run, map errors to exit codes), ``parser`` (every command, flag and
--help text), ``commands`` (one handler per command, calling the core), ``render`` (exit
codes, JSON, tables and descriptions), ``serve`` (``wtls serve``: the forwarder or the server),
``reports`` (what list, status and check print), ``answers`` (the engine answering them).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wtls`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    # Imported here, each only on its path: editors start `wtls serve` for every window, and
    # the forwarder must not pay for the parser and the core behind it (nor the CLI for it).
    if args[:1] == ["serve"]:
        from wtls.cli.serve import serve_main

        return serve_main(args[1:])
    if args[:1] in (["list"], ["status"], ["check"]):
        # Answered by the repository's running engine when there is one (from its live state
        # and caches); None: no engine, or a command line it leaves to the CLI.
        from wtls.daemon.ask import ask_engine

        answered = ask_engine(args)
        if answered is not None:
            return answered
    from wtls.cli.app import run

    return run(args)
