"""The ``wtls`` command line: a thin layer over the core, the same as the server's commands.

Exit codes: 0 success, 1 refused or a problem found (the reason on stderr; nothing changed),
2 error or usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from wtls import __version__
from wtls.errors import Refused
from wtls.git import GitError, GitUnavailable, require_git
from wtls.jsontext import dumps
from wtls.locations import to_path
from wtls.safety import printable
from wtls.worktrees import BrokenWorktreeLink, RepositoryError, RepositoryState, WorktreeState

if TYPE_CHECKING:
    from wtls.engine import Engine

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
    """Print a result object as stable, indented JSON, always valid UTF-8 (see
    :mod:`wtls.jsontext`), written as bytes so the terminal's encoding does not matter."""
    text = dumps(obj, indent=2) + "\n"
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a text-only stream (tests redirecting stdout)
        sys.stdout.write(text)
        return
    sys.stdout.flush()
    buffer.write(text.encode("utf-8"))


def _engine_for(path: str | None) -> tuple[Engine, Path]:
    """A refreshed engine for the repository of ``path`` (default: the current folder) and
    that folder."""
    from wtls.engine import Engine
    from wtls.worktrees import discover

    folder = to_path(path or ".", name="PATH").resolve()
    engine = Engine(discover(folder))
    engine.refresh()
    return engine, folder


def _state_for(path: str | None) -> tuple[RepositoryState, Path]:
    """The repository state for ``path`` (default: the current folder) and that folder."""
    engine, folder = _engine_for(path)
    assert engine.state is not None  # refreshed above
    return engine.state, folder


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
        reason = printable(wt.lock_reason or "", keep_newlines=False)
        flags.append(f"locked: {reason}" if reason else "locked")
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
    n = len(state.worktrees)
    footer = f"{n} worktree{'' if n == 1 else 's'}; base branch: {state.base_branch or '(none)'}"
    if any(w.disk_bytes is not None for w in state.worktrees):
        footer += f"; total size {human_size(total)}"
    return "\n".join([*(line.rstrip() for line in lines), footer])


def _cmd_list(args: argparse.Namespace) -> int:
    engine, folder = _engine_for(args.path)
    if not args.no_size:
        engine.measure_disk()
    state = engine.state
    assert state is not None  # refreshed by _engine_for
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
    from wtls.repair import describe, diagnose, unlisted

    try:
        state, folder = _state_for(args.path)
    except BrokenWorktreeLink as exc:
        # git cannot even open this worktree: explain which case it is and the fix.
        breakages = diagnose(exc.worktree)
        if args.json:
            print_json({"broken": [b.to_json() for b in breakages]})
        else:
            print(describe(breakages))
        return EXIT_REFUSED
    missing = unlisted(state.repository, folder)
    if missing:
        # git works here but does not list this worktree (its record is damaged).
        if args.json:
            print_json({"broken": [b.to_json() for b in missing]})
        else:
            print(describe(missing))
        return EXIT_REFUSED
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
            print(f"  {p.severity}: {printable(p.message)}")
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


# ----------------------------------------------------------------------------- check
def _cmd_check(args: argparse.Namespace) -> int:
    from wtls.predict import format_prediction, predict

    folder = to_path(args.path or ".", name="PATH").resolve()
    prediction = predict(folder, args.base)
    if args.json:
        print_json(prediction.to_check_json())
    else:
        print(format_prediction(prediction, cwd=Path.cwd(), order=args.order))
    return EXIT_REFUSED if prediction.has_conflicts else EXIT_OK


# ----------------------------------------------------------------------------- repair, move
def _cmd_repair(args: argparse.Namespace) -> int:
    from wtls.repair import describe, repair

    paths = [to_path(p, name="PATH") for p in args.paths]
    result = repair(Path.cwd(), paths, apply=args.apply, branch=args.branch)
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
    result = move(cwd, args.worktree, to_path(args.new_path, name="NEW_PATH"), force=args.force)
    if args.json:
        print_json(result.to_json())
    else:
        print(f"moved {result.source} -> {result.destination}")
        if cwd == result.source or result.source in cwd.parents:
            print(f"your shell is still in the old folder: cd {result.destination}")
    return EXIT_OK


# ----------------------------------------------------------------------------- lifecycle
def _lifecycle_settings() -> Any:
    """Lifecycle settings for the CLI: the open command comes from ``$WTLS_OPEN_COMMAND``."""
    import os

    from wtls.lifecycle import LifecycleSettings

    return LifecycleSettings(open_command=os.environ.get("WTLS_OPEN_COMMAND") or None)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _ask_trust(commands: Sequence[Sequence[str]]) -> bool:
    """Ask on the terminal whether to run the setup commands (only when stdin is a terminal).

    The question goes to stderr, so ``--json`` output on stdout stays valid JSON; control
    characters in the commands are shown escaped, so a command cannot repaint the prompt.
    """
    import shlex

    if not sys.stdin.isatty():
        return False
    _err("This repository's .wtls.toml asks to run in the new worktree:")
    for argv in commands:
        _err(f"  {printable(shlex.join(argv), keep_newlines=False)}")
    print("Run them? [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def _cmd_spawn(args: argparse.Namespace) -> int:
    from wtls.lifecycle import run_open_command, spawn, spawn_recipe
    from wtls.safety import read_limited_stream

    settings = _lifecycle_settings()
    prompt = args.prompt
    if args.prompt_file is not None:
        try:
            prompt = read_limited_stream(Path(args.prompt_file)).decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            _err(f"wtls: error: cannot read the prompt file {args.prompt_file}: {exc}")
            return EXIT_ERROR
    cwd = Path.cwd()
    trusted = bool(args.trust)
    # What the person approves is what may run: spawn() re-reads the recipe under its lock and
    # runs nothing if the commands changed since this prompt.
    approved = None
    if not trusted:
        recipe = spawn_recipe(cwd)
        if recipe.setup:
            trusted = _ask_trust(recipe.setup)
            approved = recipe.setup
    result = spawn(
        cwd,
        args.name,
        base=args.base,
        path=args.path,
        prompt=prompt,
        trusted=trusted,
        approved_setup=approved,
        settings=settings,
        on_output=_err,
        on_progress=lambda text: _err(f"wtls: {text}"),
    )
    problems = list(result.problems)
    if args.open:
        if settings.open_command:
            code = run_open_command(
                settings.open_command, result.path, branch=result.branch, wait=True
            )
            if code != 0:
                problems.append(f"the open command exited with status {code}")
        else:
            _err("wtls: --open: set WTLS_OPEN_COMMAND (e.g. 'code -n {path}') to open it")
    if args.json:
        print_json(result.to_json())
    else:
        print(f"created {result.path} on branch {result.branch} (from {result.base})")
        if result.prompt_file:
            print(f"  task prompt: {result.prompt_file}")
        if result.ports:
            print("  ports:       " + " ".join(f"{k}={v}" for k, v in result.ports.items()))
        if result.copied:
            print("  copied:      " + printable(", ".join(result.copied), keep_newlines=False))
        if result.setup.ran and result.setup.ok:
            print(f"  setup:       {len(result.setup.commands)} command(s) ran")
    if result.setup.skipped and trusted:
        # Approved, yet not run (the commands changed after the prompt): an error.
        problems.append(printable(result.setup.skipped))
    elif result.setup.skipped:
        _err(f"wtls: {printable(result.setup.skipped)}; pass --trust to run them")
    if result.setup.message:
        problems.append(result.setup.message)
    for problem in problems:
        _err(f"wtls: error: {printable(problem)}")
    return EXIT_ERROR if problems else EXIT_OK


def _cmd_open(args: argparse.Namespace) -> int:
    from wtls.lifecycle import open_worktree

    settings = _lifecycle_settings()
    result = open_worktree(
        Path.cwd(),
        args.worktree,
        open_window=args.worktree is not None,
        wait=True,
        settings=settings,
    )
    if args.json:
        print_json(result.to_json())
    elif result.path is None:
        for wt in result.worktrees or ():
            label = wt["branch"] or "(detached)"
            print(f"{wt['path']}\t{label}{' (main)' if wt['isMain'] else ''}")
    elif not result.opened:
        print(result.path)
    if result.exit_status:
        _err(f"wtls: error: the open command exited with status {result.exit_status}")
        return EXIT_ERROR
    return EXIT_OK


def _cmd_merge(args: argparse.Namespace) -> int:
    from wtls.lifecycle import merge_back

    result = merge_back(
        Path.cwd(),
        args.worktree,
        remove=args.remove,
        abort=args.abort,
        settings=_lifecycle_settings(),
    )
    if args.json:
        print_json(result.to_json())
    elif result.merged or result.aborted:
        print(result.message)
    if result.conflicts:
        _err(f"wtls: {result.message}")
        for path in result.conflicts:
            _err(f"  conflict: {result.base_worktree / path}")
        return EXIT_ERROR
    for problem in result.problems:
        _err(f"wtls: error: {problem}")
    return EXIT_ERROR if result.problems else EXIT_OK


def _cmd_remove(args: argparse.Namespace) -> int:
    from wtls.lifecycle import remove

    result = remove(
        Path.cwd(),
        args.worktree,
        force=args.force,
        delete_branch=args.delete_branch,
        dry_run=args.dry_run,
        settings=_lifecycle_settings(),
    )
    if args.json:
        print_json(result.to_json())
    else:
        print(result.message)
        if result.dry_run and result.would_back_up:
            print("would back up: " + ", ".join(result.would_back_up))
        if result.restore_command:
            print(f"restore with:\n  {result.restore_command}")
    for problem in result.problems:
        _err(f"wtls: error: {problem}")
    return EXIT_ERROR if result.problems else EXIT_OK


def _cmd_restore(args: argparse.Namespace) -> int:
    from wtls.backup import restore_backup
    from wtls.worktrees import discover

    cwd = Path.cwd()
    discover(cwd)  # a clear error outside a repository
    path = to_path(args.path, name="--path", base=cwd) if args.path else None
    result = restore_backup(cwd, args.ref, path)
    if args.json:
        print_json(result.to_json())
    else:
        print(result.message)
    for problem in result.problems:
        _err(f"wtls: error: {problem}")
    return EXIT_ERROR if result.problems else EXIT_OK


def _cmd_prune(args: argparse.Namespace) -> int:
    from wtls.lifecycle import prune

    result = prune(Path.cwd(), dry_run=args.dry_run)
    if args.json:
        print_json(result.to_json())
        return EXIT_OK
    for note in result.recovered:
        print(note)
    verb = "would prune" if result.dry_run else "pruned"
    for item in result.pruned:
        saved = (
            f"; its detached commits are saved in {item['backupRef']}"
            if item.get("backupRef")
            else ""
        )
        print(f"{verb} {item['path']} ({item['reason'] or 'folder gone'}){saved}")
    for item in result.kept:
        print(f"kept {item['path']} ({item['reason']})")
    if not result.pruned:
        print("no stale worktree records")
    return EXIT_OK


def _cmd_lock(args: argparse.Namespace) -> int:
    from wtls.lifecycle import lock, unlock

    if args.command == "lock":
        result = lock(Path.cwd(), args.worktree, args.reason)
    else:
        result = unlock(Path.cwd(), args.worktree)
    if args.json:
        print_json(result.to_json())
    else:
        state = "locked" if result.locked else "unlocked"
        reason = printable(result.reason or "", keep_newlines=False)
        print(f"{state} {result.path}" + (f" ({reason})" if reason else ""))
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
    p.add_argument(
        "path",
        nargs="?",
        metavar="PATH",
        help="any folder or file in the repository (a path or a file:// URI)",
    )
    p.add_argument("--json", action="store_true", help="print the wtls/worktrees protocol object")
    p.add_argument(
        "--no-size", action="store_true", help="skip measuring each worktree's size on disk"
    )
    p.set_defaults(handler=_cmd_list)

    p = sub.add_parser(
        "status",
        help="state and problems of the current worktree",
        description="Show the worktree containing PATH (default: the current folder): its "
        "branch, base comparison, changes, and every problem the editor would show "
        "(detached HEAD, operation in progress, locked, merged, stale entries). Exits 1 when "
        "the worktree is broken (see `wtls repair`).",
    )
    p.add_argument(
        "path",
        nargs="?",
        metavar="PATH",
        help="any folder or file in the repository (a path or a file:// URI)",
    )
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
    wt_help = "the worktree: its path (or a path inside it), its branch, or its folder name"
    p = sub.add_parser(
        "spawn",
        help="create a worktree for a fresh AI session",
        description="Create a worktree on a new branch for an AI session: `git worktree add "
        "PATH -b BRANCH BASE`, then copy the ignored files .wtls.toml `copy` and "
        ".worktreeinclude name, assign its `ports` (.wtls/ports.env), write the task prompt "
        "to .wtls/task.md, and run the `setup` commands if you trust them (asked on the "
        "terminal; if .wtls.toml changes after you answer, nothing is run). NAME is a task "
        "name (branch agent/<slug>, folder <repo>-<slug> beside the main worktree) or a "
        "branch name with a '/' (used as-is). A NAME starting with '-' must come after `--` "
        "(and is then refused). Refused, with nothing changed: an invalid branch name, an "
        "existing branch or path, a base that does not exist, a .wtls.toml or "
        ".worktreeinclude that is not a regular file of the worktree (at most 1 MiB) or "
        "has a pattern with '..'.",
    )
    p.add_argument("name", metavar="NAME", help="task name or branch name")
    p.add_argument("--base", metavar="REF", help="start from REF (default: the base branch)")
    p.add_argument("--path", metavar="DIR", help="folder for the worktree (must not exist)")
    prompt = p.add_mutually_exclusive_group()
    prompt.add_argument("--prompt", metavar="TEXT", help="task prompt for the agent")
    prompt.add_argument(
        "--prompt-file", metavar="FILE", help="read the task prompt from FILE (at most 1 MiB)"
    )
    p.add_argument(
        "--open",
        action="store_true",
        help="open it with $WTLS_OPEN_COMMAND (e.g. 'code -n {path}')",
    )
    p.add_argument(
        "--trust", action="store_true", help="run .wtls.toml's setup commands without asking"
    )
    p.add_argument("--json", action="store_true", help="print the result object")
    p.set_defaults(handler=_cmd_spawn)

    p = sub.add_parser(
        "open",
        help="list worktrees, or open one",
        description="Without WORKTREE: list the worktrees (path and branch). With it: run "
        "$WTLS_OPEN_COMMAND for it ({path}, {uri} and {branch} are filled in, no shell), or "
        'print its path when that is not set (`cd "$(wtls open feature/x)"`).',
    )
    p.add_argument("worktree", nargs="?", metavar="WORKTREE", help=wt_help)
    p.add_argument("--json", action="store_true", help="print the result object")
    p.set_defaults(handler=_cmd_open)

    p = sub.add_parser(
        "merge",
        help="merge a worktree's branch back into the base branch",
        description="Merge WORKTREE's branch into the base branch, in the worktree that has the "
        "base branch checked out. Refused, with nothing changed: the base worktree has "
        "uncommitted changes or an operation in progress, WORKTREE has uncommitted work. On "
        "conflicts the merge is left in progress (exit 2, the files are listed): resolve and "
        "commit, or run again with --abort.",
    )
    p.add_argument("worktree", metavar="WORKTREE", help=wt_help)
    p.add_argument(
        "--remove", action="store_true", help="after a clean merge, remove it and its branch"
    )
    p.add_argument("--abort", action="store_true", help="abort a merge of it left in progress")
    p.add_argument("--json", action="store_true", help="print the result object")
    p.set_defaults(handler=_cmd_merge)

    p = sub.add_parser(
        "remove",
        help="remove a worktree safely",
        description="Remove WORKTREE and delete its branch when it is merged into base (squash "
        "and rebase merges count). Refused, with nothing changed: the main worktree; a locked "
        "one; one holding work that is not committed (changed, staged, untracked or deleted "
        "files, compared byte for byte; nested git repositories, even in ignored folders; "
        "submodules), all listed; and always one with another worktree inside it. --force "
        "removes it anyway after saving all of that (raw bytes, the index, nested repositories "
        "with their refs and objects) in one verified backup ref (refs/wtls/backup/...) and "
        "prints the command that restores it (`wtls restore REF`). Ignored files are not kept. "
        "A detached HEAD whose commits no branch reaches is saved in a backup ref first. The "
        "folder is renamed aside and checked once more before git deletes it, so a file "
        "written meanwhile is never lost (the removal is then refused). Exit 2, with what was "
        "done, when a later step (deleting the branch) fails.",
    )
    p.add_argument("worktree", metavar="WORKTREE", help=wt_help)
    p.add_argument(
        "--force", action="store_true", help="remove even if dirty or locked (changes backed up)"
    )
    p.add_argument(
        "--delete-branch",
        action="store_true",
        help="delete the branch even if not merged (its tip is kept in a backup ref)",
    )
    p.add_argument("--dry-run", action="store_true", help="say what would happen, change nothing")
    p.add_argument("--json", action="store_true", help="print the result object")
    p.set_defaults(handler=_cmd_remove)

    p = sub.add_parser(
        "prune",
        help="forget worktrees whose folders were deleted by hand",
        description="List the stale worktree records (folders deleted by hand) and forget "
        "them; --dry-run only lists them. Kept, with the reason: locked records, and folders "
        "that were moved by hand (`wtls repair` reattaches those). A detached HEAD with commits "
        "that no branch reaches is saved under refs/wtls/backup/ before its record goes.",
    )
    p.add_argument("--dry-run", action="store_true", help="only list what would be pruned")
    p.add_argument("--json", action="store_true", help="print the result object")
    p.set_defaults(handler=_cmd_prune)

    p = sub.add_parser(
        "restore",
        help="recreate a removed worktree from its backup ref",
        description="Recreate the worktree saved in REF (a ref under refs/wtls/backup/, as "
        "`wtls remove --force` prints it; the part after refs/wtls/backup/ is enough) at its "
        "old path or at --path: its files byte for byte, its index, its nested repositories "
        "and submodules with their refs. It gets its branch back when the branch is free and "
        "still at the saved commit (a deleted branch is created again); otherwise it is "
        "detached there. Refused when the path exists and is not empty. List backups with "
        "`git for-each-ref refs/wtls/backup/`.",
    )
    p.add_argument("ref", metavar="REF", help="the backup ref")
    p.add_argument("--path", metavar="PATH", help="where to recreate it (default: where it was)")
    p.add_argument("--json", action="store_true", help="print the result object")
    p.set_defaults(handler=_cmd_restore)

    p = sub.add_parser(
        "lock",
        help="lock a worktree against prune, move and remove",
        description="`git worktree lock` WORKTREE, with an optional one-line reason.",
    )
    p.add_argument("worktree", metavar="WORKTREE", help=wt_help)
    p.add_argument("--reason", metavar="TEXT", help="why it is locked")
    p.add_argument("--json", action="store_true", help="print the result object")
    p.set_defaults(handler=_cmd_lock)

    p = sub.add_parser("unlock", help="unlock a worktree", description="`git worktree unlock`.")
    p.add_argument("worktree", metavar="WORKTREE", help=wt_help)
    p.add_argument("--json", action="store_true", help="print the result object")
    p.set_defaults(handler=_cmd_lock)

    # --- conflict foresight (check): predict helper ---
    p = sub.add_parser(
        "check",
        help="predict merge conflicts between worktrees (uncommitted work included)",
        description="Predict what merging the current working state of every worktree (commits, "
        "uncommitted and untracked files; not ignored ones) with every other worktree and with "
        "the base branch would do, with git's own merge (`git merge-tree`). Nothing in the "
        "repository changes. Exit 0: no conflict predicted; 1: a conflict is predicted; "
        "2: error.",
    )
    p.add_argument(
        "path",
        nargs="?",
        metavar="PATH",
        help="any folder or file in the repository (a path or a file:// URI)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "--order", action="store_true", help="also suggest the merge order that conflicts least"
    )
    p.add_argument("--base", metavar="BRANCH", help="base branch (default: the main worktree's)")
    p.set_defaults(handler=_cmd_check)

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
        "uncommitted changes (unless --force), an existing NEW_PATH, a NEW_PATH inside any "
        "worktree of the repository or inside a .git folder. Open editor sessions are "
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
    if args.command == "serve":  # the server owns stdin/stdout (LSP)
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
        print(f"wtls: refused: {printable(str(exc))}", file=sys.stderr)
        return EXIT_REFUSED
    except (RepositoryError, GitError, GitUnavailable) as exc:
        print(f"wtls: error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_ERROR
