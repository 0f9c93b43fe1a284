"""The ``wtls`` command line: a thin layer over the core, the same as the server's commands.

Exit codes: 0 success, 1 refused or a problem found (the reason on stderr; nothing changed),
2 error or usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from wtls import __version__
from wtls.errors import Refused
from wtls.git import GitError, GitUnavailable, require_git
from wtls.worktrees import RepositoryError, RepositoryState, WorktreeState

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_ERROR = 2

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with a one-line hint (its default) and never reads stdin."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def print_json(obj: Any) -> None:
    """Print a result object as stable, indented JSON."""
    print(json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False))


def _state_for(path: str | None) -> tuple[RepositoryState, Path]:
    """The repository state for ``path`` (default: the current folder) and that folder."""
    from wtls.engine import Engine
    from wtls.worktrees import discover

    folder = Path(path or ".").resolve()
    engine = Engine(discover(folder))
    return engine.refresh().state, folder


# ----------------------------------------------------------------------------- serve
def _cmd_serve(args: argparse.Namespace) -> int:
    from wtls.server.server import run_stdio

    run_stdio()
    return EXIT_OK


# ----------------------------------------------------------------------------- list
def _changes_text(wt: WorktreeState) -> str:
    s = wt.status
    parts = []
    if s.staged:
        parts.append(f"+{s.staged} staged")
    if s.unstaged:
        parts.append(f"~{s.unstaged} modified")
    if s.untracked:
        parts.append(f"?{s.untracked} untracked")
    if s.conflicted:
        parts.append(f"!{s.conflicted} conflicted")
    return ", ".join(parts) or "clean"


def _flags_text(wt: WorktreeState) -> str:
    flags = []
    if wt.is_main:
        flags.append("main")
    if wt.broken:
        flags.append("BROKEN")
    if wt.prunable:
        flags.append("prunable (folder gone)")
    if wt.locked:
        flags.append(f"locked: {wt.lock_reason}" if wt.lock_reason else "locked")
    if wt.operation:
        flags.append(f"{wt.operation} in progress")
    if wt.base is not None and wt.base.merged:
        flags.append(f"merged into {wt.base.branch}")
    if wt.conflicts:
        n = sum(len(c.get("files", ())) for c in wt.conflicts)
        flags.append(f"⚠ {n} predicted conflict{'s' * (n != 1)}")
    return "; ".join(flags)


def human_size(n: int | None) -> str:
    """Bytes as a short human string."""
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "K", "M", "G"):
        if size < 1024 or unit == "G":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}T"


def format_table(state: RepositoryState, this: Path | None) -> str:
    """The human table of ``wtls list``."""
    rows = [("", "BRANCH", "HEAD", "VS BASE", "CHANGES", "SIZE", "PATH", "NOTES")]
    for wt in state.worktrees:
        branch = wt.branch or ("(bare)" if wt.bare else f"(detached {(wt.head or '')[:7]})")
        vs_base = f"↑{wt.base.ahead} ↓{wt.base.behind}" if wt.base else "-"
        notes = _flags_text(wt)
        if wt.ports:
            notes = "; ".join(filter(None, [notes, " ".join(f"{k}={v}" for k, v in wt.ports)]))
        rows.append(
            (
                "*" if this is not None and wt.path == this else "",
                branch,
                (wt.head or "-")[:7],
                vs_base,
                "-" if wt.prunable or wt.bare else _changes_text(wt),
                human_size(wt.disk_bytes),
                str(wt.path),
                notes,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r[:-1])) + "  " + r[-1]
        for r in rows
    ]
    total = sum(w.disk_bytes or 0 for w in state.worktrees)
    footer = f"{len(state.worktrees)} worktrees; base branch: {state.base_branch or '(none)'}"
    if any(w.disk_bytes is not None for w in state.worktrees):
        footer += f"; total size {human_size(total)}"
    return "\n".join([*(line.rstrip() for line in lines), footer])


def _cmd_list(args: argparse.Namespace) -> int:
    state, folder = _state_for(args.path)
    this_wt = state.find(folder)
    this = this_wt.path if this_wt else None
    if args.json:
        print_json(state.to_json(this))
    else:
        print(format_table(state, this))
    return EXIT_OK


# ----------------------------------------------------------------------------- status
def _cmd_status(args: argparse.Namespace) -> int:
    from wtls.problems import stale_problems, worktree_problems

    state, folder = _state_for(args.path)
    wt = state.find(folder)
    problems = stale_problems(state)
    if wt is not None:
        problems = worktree_problems(state, wt) + problems
    if args.json:
        payload = state.to_json(wt.path if wt else None)
        payload["problems"] = [
            {
                "path": str(p.path),
                "line": p.line + 1,
                "severity": p.severity,
                "code": p.code,
                "message": p.message,
            }
            for p in problems
        ]
        print_json(payload)
    else:
        if wt is None:
            print(f"{folder} is not inside a worktree of {state.repository.common_dir}")
        else:
            print(describe_worktree(wt))
        for p in problems:
            print(f"  {p.severity}: {p.message}")
    broken = wt is not None and wt.broken is not None
    return EXIT_REFUSED if broken else EXIT_OK


def describe_worktree(wt: WorktreeState) -> str:
    """A few readable lines about one worktree (for ``wtls status`` and the demo)."""
    branch = wt.branch or f"detached at {(wt.head or '')[:7]}"
    lines = [
        f"worktree {wt.path}",
        f"  branch:   {branch}" + (" (main worktree)" if wt.is_main else ""),
    ]
    if wt.base is not None:
        merged = ", merged" if wt.base.merged else ""
        lines.append(
            f"  vs {wt.base.branch}: ↑{wt.base.ahead} ahead, ↓{wt.base.behind} behind{merged}"
        )
    if wt.status.upstream:
        lines.append(f"  upstream: {wt.status.upstream} ↑{wt.status.ahead} ↓{wt.status.behind}")
    lines.append(f"  changes:  {_changes_text(wt)}")
    notes = _flags_text(wt)
    if notes:
        lines.append(f"  notes:    {notes}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- demo
def _cmd_demo(args: argparse.Namespace) -> int:
    from wtls.demo import run_demo

    return run_demo(keep=args.keep)


# ----------------------------------------------------------------------------- repair, move
def _cmd_repair(args: argparse.Namespace) -> int:
    from wtls.repair import describe, repair

    result = repair(Path.cwd(), [Path(p) for p in args.paths], apply=args.apply, branch=args.branch)
    if args.json:
        print_json(result.to_json())
    elif not result.applied:
        print(describe(result.breakages))
        if result.commands:
            print("Would run (add --apply to do it):")
            for command in result.commands:
                print(f"  {command}")
    else:
        for change in result.changed:
            print(f"changed {change.file}:\n  before: {change.before}\n  after:  {change.after}")
        for message in result.messages:
            print(message)
        print(
            "verified: both directions of every link work"
            if result.verified
            else "NOT verified: something is still broken (see above)"
        )
    ok = result.verified if result.applied else not result.breakages
    return EXIT_OK if ok else EXIT_REFUSED


def _cmd_move(args: argparse.Namespace) -> int:
    from wtls.repair import move

    # Read before the move: afterwards getcwd() already follows the renamed folder.
    cwd = Path.cwd()
    result = move(cwd, args.worktree, Path(args.new_path), force=args.force)
    if args.json:
        print_json(result.to_json())
    else:
        print(f"moved {result.source} -> {result.destination}")
        if cwd == result.source or result.source in cwd.parents:
            print(f"your shell is still in the old folder: cd {result.destination}")
    return EXIT_OK


# ----------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The full ``wtls`` argument parser."""
    parser = _Parser(
        prog="wtls",
        description="wtls, the worktree language server: live state, conflict foresight and "
        "safe lifecycle commands for every git worktree of a repository.",
        epilog="Exit codes: 0 success; 1 refused or a problem found (reason on stderr, nothing "
        "changed); 2 error or usage error. Run `wtls COMMAND --help` for each command.",
    )
    parser.add_argument("--version", action="version", version=f"wtls {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "serve",
        help="run the language server over stdio (what editors start)",
        description="Run the language server on stdin/stdout. Editors start this; see the "
        "README's Editors section.",
    )
    p.set_defaults(handler=_cmd_serve)

    p = sub.add_parser(
        "list",
        help="list every worktree of the repository and its state",
        description="List every worktree of the repository containing PATH (default: the "
        "current folder): branch, HEAD, ahead/behind the base branch, changes, size, notes. "
        "The current worktree is marked with *.",
    )
    p.add_argument("path", nargs="?", metavar="PATH", help="any folder or file in the repository")
    p.add_argument("--json", action="store_true", help="print the wtls/worktrees protocol object")
    p.set_defaults(handler=_cmd_list)

    p = sub.add_parser(
        "status",
        help="state and problems of the current worktree",
        description="Show the worktree containing PATH (default: the current folder): its "
        "branch, base comparison, changes, and every problem the editor would show "
        "(detached HEAD, operation in progress, locked, merged, stale entries). Exits 1 when "
        "the worktree is broken (see `wtls repair`).",
    )
    p.add_argument("path", nargs="?", metavar="PATH", help="any folder or file in the repository")
    p.add_argument("--json", action="store_true", help='the protocol object plus "problems"')
    p.set_defaults(handler=_cmd_status)

    p = sub.add_parser(
        "demo",
        help="show wtls on a throwaway demo repository (no network, no editor)",
        description="Build the course's tasks-app in a temporary folder, create the two agent "
        "worktrees of its lab (feature/wipe, feature/remaining), let each agent edit the same "
        "usage line (one committed, one not), and print what each agent's editor window would "
        "show. Everything is removed afterwards.",
    )
    p.add_argument("--keep", action="store_true", help="keep the demo folder and print its path")
    p.set_defaults(handler=_cmd_demo)

    # --- lifecycle (spawn, open, merge, remove, prune, lock, unlock): lifecycle helper ---
    # --- conflict foresight (check): predict helper ---
    p = sub.add_parser(
        "repair",
        help="find and repair broken worktree links (moved or deleted folders)",
        description="Find broken links between the worktrees of the repository around the "
        "current folder and PATHs (the new places of moved worktrees or of a moved main "
        "worktree), and repair them with `git worktree repair` run from the side that still "
        "works; then check both directions of every link. A dry run by default: it shows what "
        "is broken and the commands it would run, and exits 1 when something needs repair, 0 "
        "when all is fine. With --apply it repairs and exits 0 only when everything verified. "
        "Only the link files (.git files and git's gitdir records) are rewritten; nothing is "
        "deleted.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="where moved worktrees are now")
    p.add_argument("--apply", action="store_true", help="do the repair (default: dry run)")
    p.add_argument(
        "--branch",
        metavar="BRANCH",
        help="re-attach a worktree whose git data (.git/worktrees/<id>) was deleted to BRANCH, "
        "keeping its files",
    )
    p.add_argument("--json", action="store_true", help="print the result object")
    p.set_defaults(handler=_cmd_repair)

    p = sub.add_parser(
        "move",
        help="move a linked worktree to a new folder (git worktree move, safely)",
        description="Move the linked worktree WORKTREE (a path or a branch name) to NEW_PATH "
        "with `git worktree move`. Refused, with nothing changed: the main worktree, a locked "
        "worktree, one with checked-out submodules (git cannot move those), one with "
        "uncommitted changes (unless --force), an existing NEW_PATH. Open editor sessions are "
        "told and offer to reopen the new folder.",
    )
    p.add_argument("worktree", metavar="WORKTREE", help="path or branch of the worktree")
    p.add_argument("new_path", metavar="NEW_PATH", help="where to move it (must not exist)")
    p.add_argument("--force", action="store_true", help="move it even with uncommitted changes")
    p.add_argument("--json", action="store_true", help="print {from, to, branch}")
    p.set_defaults(handler=_cmd_move)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wtls`` console script."""
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_ERROR
    try:
        if args.command != "serve":
            require_git()
        return handler(args)
    except Refused as exc:
        print(f"wtls: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except (RepositoryError, GitError, GitUnavailable) as exc:
        print(f"wtls: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_ERROR
