"""``wtls agent`` (set and clear a worktree's agent state) and ``wtls hook`` (Claude Code's hook
events, Codex CLI's ``notify``): their handlers, on :mod:`wtls.agents` and :mod:`wtls.hooks`
(their flags and --help texts are in :mod:`wtls.cli.parser`)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from wtls.agents import AgentError, clear_agent, locate, set_agent
from wtls.cli.render import EXIT_ERROR, EXIT_OK, print_json, say_error
from wtls.locations import to_path
from wtls.safety import printable
from wtls.wire import to_wire


def _place(path: str | None) -> Any:
    folder = to_path(path or ".", name="--worktree").resolve()
    return locate(folder if folder.is_dir() else folder.parent)


def _cmd_agent(args: argparse.Namespace) -> int:
    try:
        place = _place(args.worktree)
        if args.agent_command == "set":
            agent = set_agent(
                place.gitdir,
                args.state,
                message=args.message,
                tool=args.tool,
                session=args.session,
                pid=args.pid,
            )
            if args.json:
                print_json(to_wire(agent))
            else:
                print(f"{printable(str(place.worktree))}: {agent.state} since {agent.since}")
            return EXIT_OK
        cleared = clear_agent(place.gitdir)
    except AgentError as exc:
        say_error(f"wtls: error: {printable(str(exc))}")
        return EXIT_ERROR
    if args.json:
        print_json({"cleared": cleared})
    else:
        print(f"{printable(str(place.worktree))}: " + ("cleared" if cleared else "no agent state"))
    return EXIT_OK


def _cmd_hook(args: argparse.Namespace) -> int:
    """Exit 0 whatever happens: a hook that fails would get in the agent's way."""
    from wtls.hooks import MAX_EVENT_BYTES, agent_pid, claude_hook, codex_hook

    try:
        if args.hook_tool == "claude":
            data = sys.stdin.buffer.read(MAX_EVENT_BYTES + 1)
            outcome = claude_hook(data, pid=agent_pid())
        else:
            outcome = codex_hook(args.payload, cwd=Path(os.getcwd()), pid=agent_pid())
        if outcome.stdout:
            sys.stdout.write(outcome.stdout + "\n")
            sys.stdout.flush()
        if outcome.note:
            say_error(f"wtls hook {args.hook_tool}: {printable(outcome.note, keep_newlines=False)}")
    except Exception as exc:  # never fail the agent's hook
        with contextlib.suppress(Exception):  # stderr closed
            say_error(f"wtls hook {args.hook_tool}: {printable(str(exc), keep_newlines=False)}")
    return EXIT_OK
