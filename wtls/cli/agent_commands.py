"""``wtls agent`` (set and clear a worktree's agent state) and ``wtls hook`` (Claude Code's hook
events, Codex CLI's ``notify``): their parsers and handlers, on :mod:`wtls.agents` and
:mod:`wtls.hooks`."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from wtls.agents import STATES, AgentError, clear_agent, locate, set_agent
from wtls.cli.render import EXIT_ERROR, EXIT_OK, print_json, say_error
from wtls.locations import to_path
from wtls.safety import printable
from wtls.wire import to_wire


def add_parsers(sub: Any) -> None:
    """Add ``agent`` and ``hook`` to the ``wtls`` subcommands ``sub``."""
    p = sub.add_parser(
        "agent",
        help="set or clear the coding agent state of a worktree",
        description="Record what the coding agent in a worktree is doing, for every editor "
        "window and `wtls list` to show: working, waiting (it needs you: a permission "
        "prompt, a question) or idle (its turn ended). For any agent, wrapper or script; "
        "Claude Code and Codex CLI have `wtls hook`. The state is stored in the worktree's "
        "private git dir (never in the work tree); one whose --pid is gone is not shown.",
    )
    agent_sub = p.add_subparsers(dest="agent_command", metavar="ACTION", required=True)
    where_help = "the worktree (a folder or file in it; default: the current folder)"
    q = agent_sub.add_parser(
        "set",
        help="record the agent's state",
        description="Record the agent state of the worktree holding --worktree (default: the "
        "current folder). STATE is working, waiting or idle.",
    )
    q.add_argument("state", metavar="STATE", choices=STATES, help=", ".join(STATES))
    q.add_argument("--message", metavar="TEXT", help="what it waits for, or did")
    q.add_argument("--tool", metavar="NAME", help="the agent: claude, codex, or your word")
    q.add_argument("--session", metavar="ID", help="the agent's session id")
    q.add_argument(
        "--pid",
        metavar="N",
        type=int,
        help="the agent's process: when it is gone, the state is no longer shown",
    )
    q.add_argument("--worktree", metavar="PATH", help=where_help)
    q.add_argument("--json", action="store_true", help="print the recorded agent object")
    q.set_defaults(handler=_cmd_agent)
    q = agent_sub.add_parser(
        "clear",
        help="forget the agent's state",
        description="Remove the agent state of the worktree holding --worktree.",
    )
    q.add_argument("--worktree", metavar="PATH", help=where_help)
    q.add_argument("--json", action="store_true", help='print {"cleared": true|false}')
    q.set_defaults(handler=_cmd_agent)

    p = sub.add_parser(
        "hook",
        help="a coding agent's hook: record its state, tell it about conflicts",
        description="Called by a coding agent, not by you; see docs/agents.md. `wtls hook "
        "claude` and `wtls hook codex` always exit 0: bad input changes nothing and says why "
        "in one line on stderr.",
    )
    hook_sub = p.add_subparsers(dest="hook_tool", metavar="AGENT", required=True)
    q = hook_sub.add_parser(
        "claude",
        help="Claude Code: one hook event as JSON on stdin",
        description="Read one Claude Code hook event on stdin and record the agent state of "
        "the worktree holding its cwd: SessionStart, UserPromptSubmit, PreToolUse, "
        "PostToolUse: working; Notification: waiting (with its message); Stop: idle; "
        "SessionEnd: cleared. After an Edit, Write, MultiEdit or NotebookEdit, print the "
        "conflicts and overlaps the changed file will have with other worktrees as "
        "hookSpecificOutput.additionalContext, for Claude to read (at most WTLS_HOOK_TIMEOUT "
        "seconds, default 4; then nothing).",
    )
    q.set_defaults(handler=_cmd_hook)
    q = hook_sub.add_parser(
        "codex",
        help="Codex CLI: its notify program (one JSON argument)",
        description='Codex CLI\'s `notify` program: in ~/.codex/config.toml, notify = ["wtls", '
        '"hook", "codex"]. agent-turn-complete records idle for the worktree holding its cwd.',
    )
    q.add_argument("payload", nargs="?", metavar="JSON", help="the notification (Codex adds it)")
    q.set_defaults(handler=_cmd_hook)


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
