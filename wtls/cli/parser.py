"""The ``wtls`` argument parser: every command, flag and --help text.

Each command's handler is named, not imported (:class:`_Lazy`): the parser loads no command
module, and running a command loads its own only."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any, NoReturn

from wtls import __version__
from wtls.agents import STATES
from wtls.cli.render import EXIT_ERROR, Handler
from wtls.cli.serve import SERVE_DESCRIPTION, SERVE_HELP, add_serve_arguments, positive_seconds


class _Lazy:
    """A command's handler, imported when the command runs: reading a command line loads the
    modules of that command only (``wtls check`` never loads the lifecycle commands)."""

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name

    def __call__(self, args: argparse.Namespace) -> int:
        handler: Handler = getattr(importlib.import_module(self.module), self.name)
        return handler(args)


def _command(name: str) -> _Lazy:
    return _Lazy("wtls.cli.commands", name)


def _duration(text: str) -> float:
    from wtls.lifecycle.pruning import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with a one-line hint (its default) and never reads stdin."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1 or value > 64:
        raise argparse.ArgumentTypeError(f"must be between 1 and 64: {text!r}")
    return value


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

    p = sub.add_parser("serve", help=SERVE_HELP, description=SERVE_DESCRIPTION)
    add_serve_arguments(p)
    p.set_defaults(handler=_command("_cmd_serve"))

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
    p.add_argument(
        "--no-daemon",
        action="store_true",
        help="read the repository here, even when its engine runs (default: the running "
        "engine answers, from its live state)",
    )
    p.set_defaults(handler=_command("_cmd_list"))

    p = sub.add_parser(
        "status",
        help="state and problems of the current worktree",
        description="Show the worktree containing PATH (default: the current folder): its "
        "branch, base comparison, changes, and every problem the editor would show "
        "(detached HEAD, operation in progress, locked, merged, stale entries) and the "
        "processes using it (pid, command, what ties it). Exits 1 when "
        "the worktree is broken (see `wtls repair`).",
    )
    p.add_argument(
        "path",
        nargs="?",
        metavar="PATH",
        help="any folder or file in the repository (a path or a file:// URI)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='the protocol object plus "problems" and "processes" (those using the worktree)',
    )
    p.add_argument(
        "--no-daemon",
        action="store_true",
        help="read the repository here, even when its engine runs (default: the running "
        "engine answers, from its live state)",
    )
    p.set_defaults(handler=_command("_cmd_status"))

    p = sub.add_parser(
        "demo",
        help="show wtls on a throwaway demo repository (no network, no editor)",
        description="Build the course's tasks-app in a temporary folder, create the two agent "
        "worktrees of its lab (feature/wipe, feature/remaining), let each agent edit the same "
        "usage line (one committed, one not), and print what each agent's editor window would "
        "show. Everything is removed afterwards.",
    )
    p.add_argument("--keep", action="store_true", help="keep the demo folder and print its path")
    p.set_defaults(handler=_command("_cmd_demo"))

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
        "has a pattern with '..', a `share` entry that git tracks or does not ignore or that "
        "leads outside the worktree, a --sparse path that is absolute or has '..'. Copied "
        "files are copy-on-write clones where the file system allows it (btrfs, XFS, APFS); "
        "`share` entries become links to the source worktree's folders.",
    )
    p.add_argument("name", metavar="NAME", help="task name or branch name")
    p.add_argument("--base", metavar="REF", help="start from REF (default: the base branch)")
    p.add_argument("--path", metavar="DIR", help="folder for the worktree (must not exist)")
    p.add_argument(
        "--sparse",
        metavar="PATH",
        nargs="+",
        action="extend",
        default=[],
        help="check out only these folders (and the files at the top): a sparse cone "
        "checkout for huge repositories; plain relative paths (no '..', not absolute). Put "
        "it after NAME (`wtls spawn NAME --sparse a b`), or give --sparse once per path",
    )
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
    p.add_argument(
        "--agent",
        choices=("claude", "codex"),
        help="the coding agent that will work there: claude gets wtls's hooks in the "
        "worktree's .claude/settings.local.json (kept out of git status); codex needs one "
        "notify line in ~/.codex/config.toml instead (see docs/agents.md)",
    )
    p.add_argument("--json", action="store_true", help="print the result object")
    p.set_defaults(handler=_command("_cmd_spawn"))

    p = sub.add_parser(
        "open",
        help="list worktrees, or open one",
        description="Without WORKTREE: list the worktrees (path and branch). With it: run "
        "$WTLS_OPEN_COMMAND for it ({path}, {uri} and {branch} are filled in, no shell), or "
        'print its path when that is not set (`cd "$(wtls open feature/x)"`).',
    )
    p.add_argument("worktree", nargs="?", metavar="WORKTREE", help=wt_help)
    p.add_argument("--json", action="store_true", help="print the result object")
    p.set_defaults(handler=_command("_cmd_open"))

    p = sub.add_parser(
        "merge",
        help="merge a worktree's branch back into the base branch",
        description="Merge WORKTREE's branch into the base branch, in the worktree that has the "
        "base branch checked out. Refused, with nothing changed: the base worktree has "
        "uncommitted changes or an operation in progress, WORKTREE has uncommitted work. On "
        "conflicts the merge is left in progress (exit 2, the files are listed): resolve and "
        "commit, or run again with --abort. With --remove, processes using WORKTREE make it "
        "refuse before merging unless --kill. Refused too while an editor window of the "
        "repository's engine holds unsaved changes in a file the merge rewrites in the base "
        "worktree, or with --remove in any file of WORKTREE (the files are named): save or "
        "close them.",
    )
    p.add_argument("worktree", metavar="WORKTREE", help=wt_help)
    p.add_argument(
        "--remove", action="store_true", help="after a clean merge, remove it and its branch"
    )
    p.add_argument("--abort", action="store_true", help="abort a merge of it left in progress")
    p.add_argument(
        "--kill",
        action="store_true",
        help="with --remove: end the processes using the worktree (SIGTERM, then SIGKILL)",
    )
    p.add_argument(
        "--trust",
        action="store_true",
        help="with --remove: run the worktree's .wtls.toml teardown commands first",
    )
    p.add_argument("--json", action="store_true", help="print the result object")
    _add_no_daemon_unsaved(p)
    p.set_defaults(handler=_command("_cmd_merge"))

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
        "written meanwhile is never lost (the removal is then refused). Also refused while "
        "processes use the folder (their working directory, an open file or their executable "
        "is inside; listed with pid and command): stop them, or pass --kill. wtls itself and "
        "the shell it runs from do not count (the shell is told to cd out). With --trust, the "
        "worktree's .wtls.toml `teardown` commands run first (without it they are skipped and "
        "it says so); a failing one stops the removal, nothing removed, unless --force. "
        "Also refused, unless --force, while an editor window of the repository's engine "
        "(any window or agent session) holds unsaved changes in its files, named with their "
        "window: save or close them (their unsaved text is in no backup). "
        "Exit 2, with what was done, when a later step (deleting the branch) fails.",
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
    p.add_argument(
        "--kill",
        action="store_true",
        help="end the processes using it first (SIGTERM, 5 s, SIGKILL), then remove it",
    )
    p.add_argument(
        "--trust",
        action="store_true",
        help="run its .wtls.toml teardown commands first (skipped without it)",
    )
    p.add_argument("--dry-run", action="store_true", help="say what would happen, change nothing")
    p.add_argument("--json", action="store_true", help="print the result object")
    _add_no_daemon_unsaved(p)
    p.set_defaults(handler=_command("_cmd_remove"))

    p = sub.add_parser(
        "prune",
        help="forget worktrees whose folders were deleted by hand; --merged: remove merged ones",
        description="List the stale worktree records (folders deleted by hand) and forget "
        "them; --dry-run only lists them. Kept, with the reason: locked records, and folders "
        "that were moved by hand (`wtls repair` reattaches those). A detached HEAD with commits "
        "that no branch reaches is saved under refs/wtls/backup/ before its record goes. "
        "With --merged, instead: remove every clean worktree whose branch is merged into base "
        "(merge, fast-forward, squash or rebase) and delete that branch, each through the same "
        "safe removal as `wtls remove`; kept, each with its reason: the main worktree, "
        "detached, unmerged, never-committed, locked, dirty and busy (processes use it) ones, "
        "those with unsaved changes in an editor window of the repository's engine, "
        "and with --older-than those whose last commit is newer.",
    )
    p.add_argument("--dry-run", action="store_true", help="only list what would be pruned")
    p.add_argument(
        "--merged",
        action="store_true",
        help="remove the clean worktrees whose branch is merged into base, and those branches",
    )
    p.add_argument(
        "--older-than",
        metavar="DURATION",
        type=_duration,
        help="with --merged: only those whose last commit is older (e.g. 2w, 36h, 1d12h)",
    )
    p.add_argument(
        "--trust", action="store_true", help="with --merged: run each one's teardown commands"
    )
    p.add_argument("--json", action="store_true", help="print the result object")
    _add_no_daemon_unsaved(p)
    p.set_defaults(handler=_command("_cmd_prune"))

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
    p.set_defaults(handler=_command("_cmd_restore"))

    p = sub.add_parser(
        "lock",
        help="lock a worktree against prune, move and remove",
        description="`git worktree lock` WORKTREE, with an optional one-line reason.",
    )
    p.add_argument("worktree", metavar="WORKTREE", help=wt_help)
    p.add_argument("--reason", metavar="TEXT", help="why it is locked")
    p.add_argument("--json", action="store_true", help="print the result object")
    p.set_defaults(handler=_command("_cmd_lock"))

    p = sub.add_parser("unlock", help="unlock a worktree", description="`git worktree unlock`.")
    p.add_argument("worktree", metavar="WORKTREE", help=wt_help)
    p.add_argument("--json", action="store_true", help="print the result object")
    p.set_defaults(handler=_command("_cmd_lock"))

    # --- conflict foresight (check): predict helper ---
    p = sub.add_parser(
        "check",
        help="predict merge conflicts between worktrees (uncommitted work included)",
        description="Predict what merging the current working state of every worktree (commits, "
        "uncommitted and untracked files; not ignored ones) with every other worktree and with "
        "the base branch would do, with git's own merge (`git merge-tree`). Nothing in the "
        "repository changes. With --test, the project's tests run on the predicted merges "
        "too (semantic conflicts), in scratch worktrees wtls keeps under the git dir; no "
        "worktree, branch or index of yours changes. Exit 0: no conflict predicted (and "
        "every test run passed); 1: a text or semantic conflict is predicted, or a worktree "
        "fails its tests alone; 2: error.",
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
    p.add_argument(
        "--test",
        metavar="CMD",
        help="also run CMD (split like a shell would; no shell runs it) on each worktree's "
        "working state merged onto base, then on those that pass merged together, in wtls's own "
        "scratch worktrees; report semantic conflicts (sets that pass alone, fail together). "
        "Without it, `test` of .wtls.toml runs when --trust is given",
    )
    p.add_argument(
        "--timeout",
        metavar="S",
        type=positive_seconds,
        default=600.0,
        help="kill a test run's whole process group after S seconds (default 600)",
    )
    p.add_argument(
        "--jobs", metavar="N", type=_positive_int, default=1, help="test runs in parallel (1)"
    )
    p.add_argument(
        "--trust",
        action="store_true",
        help="trust .wtls.toml: run its `test`, and its `setup`/`copy` in the scratch worktrees",
    )
    p.add_argument(
        "--no-daemon",
        action="store_true",
        help="read the repository here, even when its engine runs (default: the running "
        "engine answers, from its live state)",
    )
    p.set_defaults(handler=_command("_cmd_check"))

    p = sub.add_parser(
        "diff",
        help="what merging a worktree would bring: its work against the base branch",
        description="Show the working state of WORKTREE (its commits, uncommitted and untracked "
        "files; not ignored ones) against its merge base with the base branch: exactly the "
        "changes merging it would bring, without what the base branch did meanwhile. Renames "
        "are followed. Nothing in the repository changes.",
    )
    p.add_argument("worktree", metavar="WORKTREE", help="path or branch of the worktree")
    p.add_argument("--stat", action="store_true", help="one line per file instead of the diff")
    p.add_argument(
        "--json",
        action="store_true",
        help="print {worktree, branch, base, mergeBase, snapshot, files: [{path, status, "
        "oldPath, added, deleted}], patch}",
    )
    p.add_argument("--base", metavar="BRANCH", help="base branch (default: the main worktree's)")
    p.set_defaults(handler=_command("_cmd_diff"))

    p = sub.add_parser(
        "take",
        help="apply one file's change of a worktree to the base worktree, uncommitted",
        description="Apply the change WORKTREE makes to PATH (added, modified, deleted or "
        "renamed; against its merge base with the base branch, as `wtls diff` shows it) to the "
        "worktree where the base branch is checked out, as an unstaged change. Refused, with "
        "nothing changed, when the base worktree has any change in that file (staged, "
        "unstaged, untracked, or an ignored file in the way) or the base branch changed it "
        "since the merge base (merge the worktree instead), or an editor window of the "
        "repository's engine holds unsaved changes in that file of the base worktree. No "
        "other file is touched.",
    )
    p.add_argument("worktree", metavar="WORKTREE", help="path or branch of the reviewed worktree")
    p.add_argument("path", metavar="PATH", help="the file, relative to WORKTREE")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--base", metavar="BRANCH", help="base branch (default: the main worktree's)")
    _add_no_daemon_unsaved(p)
    p.set_defaults(handler=_command("_cmd_take"))

    p = sub.add_parser(
        "discard",
        help="put one file of a worktree back to its merge-base version, after a backup",
        description="Put PATH of WORKTREE back to its version at the merge base with the base "
        "branch (remove it when the merge base has no such file; for a rename, the old path "
        "comes back), in the folder and in the index. The whole worktree is saved first in a "
        "verified backup ref (as `wtls remove --force` saves it); the answer names it and the "
        "command that gets the file back. No other file is touched. Refused while an editor "
        "window of the repository's engine holds unsaved changes in that file (save or close "
        "it: the backup cannot hold them).",
    )
    p.add_argument("worktree", metavar="WORKTREE", help="path or branch of the worktree")
    p.add_argument("path", metavar="PATH", help="the file, relative to WORKTREE")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--base", metavar="BRANCH", help="base branch (default: the main worktree's)")
    _add_no_daemon_unsaved(p)
    p.set_defaults(handler=_command("_cmd_discard"))

    p = sub.add_parser(
        "land",
        help="a local merge queue: merge, test, and only then move the base branch",
        description="Land WORKTREEs (default: every worktree with commits not yet in base) "
        "into the base branch in the predicted best order. For each: merge its branch (its "
        "commits; uncommitted work is not landed) with the base tip in a scratch worktree wtls "
        "owns, run the test command there, and only if it passes move the base branch (`git "
        "update-ref` with the old tip as the expected value) and bring a clean base worktree "
        "along. Stops at the first failing or conflicting merge: the base branch always points "
        "at a merge whose tests passed. The agents' worktrees are never touched. Refused, with "
        "nothing changed: the base worktree has uncommitted changes; a given WORKTREE has "
        "uncommitted changes; no test command. An editor window of the repository's engine "
        "holding unsaved changes in a file that moving the base branch rewrites in the base "
        "worktree stops it there (the base branch stays; save or close them), and one in a "
        "landed worktree keeps --remove from removing it. Exit 0: everything given landed; "
        "1: stopped at a failing or conflicting merge; 2: error.",
    )
    p.add_argument("worktrees", nargs="*", metavar="WORKTREE", help=wt_help)
    p.add_argument(
        "--test",
        metavar="CMD",
        help="the test command (default: `test` of .wtls.toml, with --trust)",
    )
    p.add_argument(
        "--timeout",
        metavar="S",
        type=positive_seconds,
        default=600.0,
        help="kill a test run's whole process group after S seconds (default 600)",
    )
    p.add_argument(
        "--remove", action="store_true", help="remove each landed worktree (with remove's safety)"
    )
    p.add_argument(
        "--trust",
        action="store_true",
        help="trust .wtls.toml: run its `test`, and its `setup`/`copy` in the scratch worktrees",
    )
    p.add_argument("--base", metavar="BRANCH", help="base branch (default: the main worktree's)")
    p.add_argument("--json", action="store_true", help="print the result object")
    _add_no_daemon_unsaved(p)
    p.set_defaults(handler=_command("_cmd_land"))

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
    p.set_defaults(handler=_command("_cmd_repair"))

    p = sub.add_parser(
        "move",
        help="move a linked worktree to a new folder (git worktree move, safely)",
        description="Move the linked worktree WORKTREE (a path or a branch name) to NEW_PATH "
        "with `git worktree move`. Refused, with nothing changed: the main worktree, a locked "
        "worktree, one with checked-out submodules (git cannot move those), one with "
        "uncommitted changes (unless --force), an existing NEW_PATH, a NEW_PATH inside any "
        "worktree of the repository or inside a .git folder, and (unless --force) an editor "
        "window of the repository's engine holding unsaved changes in its files. Open editor "
        "sessions are told and offer to reopen the new folder.",
    )
    p.add_argument("worktree", metavar="WORKTREE", help="path or branch of the worktree")
    p.add_argument("new_path", metavar="NEW_PATH", help="where to move it (must not exist)")
    p.add_argument("--force", action="store_true", help="move it even with uncommitted changes")
    p.add_argument("--json", action="store_true", help="print {from, to, branch}")
    _add_no_daemon_unsaved(p)
    p.set_defaults(handler=_command("_cmd_move"))

    # --- coding agents (agent, hook): docs/agents.md ---
    _add_agent_parsers(sub)
    # --- the per-repository engine (engine, daemon): docs/architecture.md ---
    _add_daemon_parsers(sub)
    return parser


def _add_no_daemon_unsaved(p: argparse.ArgumentParser) -> None:
    """``--no-daemon`` of the commands that ask the engine about editors' unsaved buffers."""
    p.add_argument(
        "--no-daemon",
        action="store_true",
        help="do not ask the running engine whether editor windows hold unsaved changes in "
        "the files this changes (default: ask it, at most 5 s; no engine: nothing to ask)",
    )


def _add_agent_parsers(sub: Any) -> None:
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
    q.set_defaults(handler=_Lazy("wtls.cli.agent_commands", "_cmd_agent"))
    q = agent_sub.add_parser(
        "clear",
        help="forget the agent's state",
        description="Remove the agent state of the worktree holding --worktree.",
    )
    q.add_argument("--worktree", metavar="PATH", help=where_help)
    q.add_argument("--json", action="store_true", help='print {"cleared": true|false}')
    q.set_defaults(handler=_Lazy("wtls.cli.agent_commands", "_cmd_agent"))

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
    q.set_defaults(handler=_Lazy("wtls.cli.agent_commands", "_cmd_hook"))
    q = hook_sub.add_parser(
        "codex",
        help="Codex CLI: its notify program (one JSON argument)",
        description='Codex CLI\'s `notify` program: in ~/.codex/config.toml, notify = ["wtls", '
        '"hook", "codex"]. agent-turn-complete records idle for the worktree holding its cwd.',
    )
    q.add_argument("payload", nargs="?", metavar="JSON", help="the notification (Codex adds it)")
    q.set_defaults(handler=_Lazy("wtls.cli.agent_commands", "_cmd_hook"))


def _add_daemon_parsers(sub: Any) -> None:
    """Add ``engine`` and ``daemon`` to the subcommands. ``engine`` has no ``help=``, which
    keeps it out of the command list of ``wtls --help`` (it has its own --help)."""
    p = sub.add_parser(
        "engine",
        description="The background process that serves every editor session, agent and CLI "
        "call of one repository (one per repository, found through a socket in the user's "
        "private runtime folder). `wtls serve` starts it when none runs; you do not need to "
        "run it yourself. It exits after --idle-timeout seconds without a client, and when "
        "its repository is deleted once its sessions have left.",
    )
    p.add_argument(
        "--repository",
        metavar="COMMON_DIR",
        required=True,
        help="the repository's common git dir (absolute), e.g. /src/app/.git",
    )
    p.add_argument(
        "--idle-timeout",
        metavar="SECONDS",
        type=positive_seconds,
        help="exit after this long without a client (default: $WTLS_ENGINE_IDLE_TIMEOUT, else 600)",
    )
    p.add_argument(
        "--detach",
        action="store_true",
        help="fork into the background at once (what a starting session asks for)",
    )
    p.set_defaults(handler=_Lazy("wtls.cli.daemon_commands", "_cmd_engine"))

    p = sub.add_parser(
        "daemon",
        help="status of the repository's background engine, or stop it",
        description="Each repository has at most one background engine, shared by every "
        "editor window and agent session on it. `status` shows it; `stop` ends it (sessions "
        "connected to it start a new one when they need it).",
    )
    daemon_sub = p.add_subparsers(dest="daemon_command", metavar="ACTION", required=True)
    where_help = "a folder of the repository (default: the current folder)"
    q = daemon_sub.add_parser(
        "status",
        help="show the engine: pid, socket, clients, uptime, version",
        description="Show the engine of the repository containing PATH (-C; default: the "
        "current folder): its pid, socket, repository, connected sessions, uptime, version "
        "and idle timeout. Exits 0 also when no engine runs (it says so; --json has "
        '"running": false). Never starts one.',
    )
    q.add_argument("-C", dest="path", metavar="PATH", default=".", help=where_help)
    q.add_argument("--json", action="store_true", help="print the status object")
    q.set_defaults(handler=_Lazy("wtls.cli.daemon_commands", "_cmd_daemon_status"))
    q = daemon_sub.add_parser(
        "stop",
        help="stop the engine",
        description="Stop the engine of the repository containing PATH (-C; default: the "
        "current folder) and wait until it has stopped listening. Connected editor sessions "
        "start a new engine when they need one. Exits 0 also when none ran.",
    )
    q.add_argument("-C", dest="path", metavar="PATH", default=".", help=where_help)
    q.add_argument("--json", action="store_true", help='print {"stopped": true|false, "pid"}')
    q.set_defaults(handler=_Lazy("wtls.cli.daemon_commands", "_cmd_daemon_stop"))
