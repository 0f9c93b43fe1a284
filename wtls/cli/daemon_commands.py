"""``wtls engine`` (the per-repository background process, started by sessions) and ``wtls
daemon status|stop``: their handlers, on :mod:`wtls.daemon` (their flags and --help texts are
in :mod:`wtls.cli.parser`)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from wtls.cli.render import EXIT_ERROR, EXIT_OK, print_json, say_error
from wtls.daemon.client import EngineError, engine_status, stop_engine
from wtls.daemon.paths import RuntimeDirError, engine_files
from wtls.locations import BadLocation, to_path
from wtls.safety import printable
from wtls.worktrees import discover


def _cmd_engine(args: argparse.Namespace) -> int:
    # Imported here: only the engine process needs the language server (pygls), and every
    # other command starts faster without it.
    from wtls.cli.answers import answer_query
    from wtls.daemon import engine
    from wtls.server.server import serve_connection
    from wtls.server.shared import SHARED
    from wtls.server.transport import AnsweredOnPurpose

    # Its own repository stays read and watched while no session is open: the CLI's questions
    # are then answered from memory, until the engine's idle exit.
    SHARED.keep_warm.add(str(Path(args.repository)))

    logging.getLogger("pygls.protocol.json_rpc").addFilter(AnsweredOnPurpose())
    return engine.main(
        args.repository, args.idle_timeout, args.detach, serve_connection, answer_query
    )


def _common_dir(value: str) -> Path:
    return discover(to_path(value, name="-C", base=Path.cwd())).common_dir


def _cmd_daemon_status(args: argparse.Namespace) -> int:
    try:
        common = _common_dir(args.path)
        files = engine_files(common)
        reply = engine_status(common)
    except (BadLocation, RuntimeDirError, EngineError) as exc:
        say_error(f"wtls: error: {printable(str(exc))}")
        return EXIT_ERROR
    status: dict[str, Any] = {
        "running": reply is not None,
        "repository": str(files.repository),
        "socket": str(files.socket),
        "log": str(files.log),
    }
    if reply is not None:
        status.update(
            pid=reply.get("pid"),
            clients=reply.get("clients"),
            uptime=reply.get("uptime"),
            version=reply.get("wtls"),
            build=reply.get("build"),
            idleTimeout=reply.get("idleTimeout"),
        )
    if args.json:
        print_json(status)
    elif reply is None:
        print(f"no wtls engine runs for {printable(status['repository'])}")
    else:
        print(f"wtls engine {status['version']} running, pid {status['pid']}")
        print(f"repository:   {printable(status['repository'])}")
        print(f"socket:       {printable(status['socket'])}")
        print(f"log:          {printable(status['log'])}")
        print(f"sessions:     {status['clients']}")
        print(f"uptime:       {_duration(status['uptime'])}")
        print(f"idle timeout: {_duration(status['idleTimeout'])}")
    return EXIT_OK


def _cmd_daemon_stop(args: argparse.Namespace) -> int:
    try:
        common = _common_dir(args.path)
        files = engine_files(common)
        reply = stop_engine(common)
    except (BadLocation, RuntimeDirError, EngineError) as exc:
        say_error(f"wtls: error: {printable(str(exc))}")
        return EXIT_ERROR
    pid = reply.get("pid") if reply is not None else None
    if args.json:
        print_json({"stopped": reply is not None, "pid": pid, "repository": str(files.repository)})
    elif reply is None:
        print(f"no wtls engine runs for {printable(str(files.repository))}")
    else:
        print(f"stopped the wtls engine (pid {pid}) for {printable(str(files.repository))}")
    return EXIT_OK


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "?"
    whole = int(seconds)
    if whole < 120:
        return f"{whole} s"
    if whole < 7200:
        return f"{whole // 60} min"
    return f"{whole // 3600} h {whole % 3600 // 60} min"
