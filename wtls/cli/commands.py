"""One handler per ``wtls`` command: parse nothing, call the core, render the result."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wtls.cli.render import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_REFUSED,
    format_tests,
    human_size,
    print_json,
    say_error,
)
from wtls.cli.reports import Report, check_report, list_report, status_report
from wtls.cli.serve import serve
from wtls.errors import Refused
from wtls.locations import to_path
from wtls.processes import describe as describe_process
from wtls.safety import printable
from wtls.wire import to_wire, wire_object
from wtls.worktrees import BrokenWorktreeLink, RepositoryState

if TYPE_CHECKING:
    from wtls.engine import Engine
    from wtls.review_actions import FileAction
    from wtls.semantic import TestsReport
    from wtls.testplan import TestPlan
    from wtls.unsaved import UnsavedFinder


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


def _cmd_serve(args: argparse.Namespace) -> int:
    # `wtls serve` normally never gets here: the console script hands it to the forwarder
    # before building this parser (wtls.cli.main).
    return serve(no_daemon=args.no_daemon, idle_timeout=args.idle_timeout)


def _cmd_list(args: argparse.Namespace) -> int:
    engine, folder = _engine_for(args.path)
    if not args.no_size:
        engine.measure_disk()
    assert engine.state is not None  # refreshed by _engine_for
    return emit(list_report(engine.state, folder, as_json=args.json))


def _cmd_status(args: argparse.Namespace) -> int:
    from wtls.repair import describe, diagnose, unlisted

    try:
        state, folder = _state_for(args.path)
    except BrokenWorktreeLink as exc:
        # git cannot even open this worktree: explain which case it is and the fix.
        breakages = diagnose(exc.worktree)
        if args.json:
            print_json({"broken": to_wire(breakages)})
        else:
            print(describe(breakages))
        return EXIT_REFUSED
    missing = unlisted(state.repository, folder)
    if missing:
        # git works here but does not list this worktree (its record is damaged).
        if args.json:
            print_json({"broken": to_wire(missing)})
        else:
            print(describe(missing))
        return EXIT_REFUSED
    return emit(status_report(state, folder, as_json=args.json))


def emit(report: Report) -> int:
    """Print a report (as UTF-8 bytes, whatever the terminal's encoding) and return its code."""
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a text-only stream (tests redirecting stdout)
        sys.stdout.write(report.stdout)
    else:
        sys.stdout.flush()
        buffer.write(report.stdout.encode("utf-8"))
        buffer.flush()
    return report.code


def _cmd_demo(args: argparse.Namespace) -> int:
    from wtls.demo import run_demo

    return run_demo(keep=args.keep)


def _cmd_check(args: argparse.Namespace) -> int:
    from wtls.git import require_git
    from wtls.predict import ConflictPredictor, format_prediction
    from wtls.predict.predictor import unreadable
    from wtls.testplan import plan_tests
    from wtls.worktrees import discover, repository_state

    folder = to_path(args.path or ".", name="PATH").resolve()
    require_git()
    repo = discover(folder)
    # The snapshots read every worktree's files: no `git status` before them. Test runs, or a
    # worktree git could not snapshot, need the full state (which says which one is broken).
    state = repository_state(repo, args.base, statuses=False)
    plan = plan_tests(state, args.test, trusted=args.trust)
    runs_tests = plan.not_run is None and bool(plan.commands)
    prediction = None
    if not runs_tests:
        prediction = ConflictPredictor(repo).update(state)
        if unreadable(prediction):
            prediction = None
    if prediction is None:
        state = repository_state(repo, args.base)
        prediction = ConflictPredictor(repo).update(state)
    if plan.not_run is None and not runs_tests:
        return emit(check_report(prediction, as_json=args.json, order=args.order, cwd=Path.cwd()))
    tests = _run_check_tests(args, state, plan)
    if args.json:
        payload = wire_object(prediction.check_payload())
        payload["tests"] = to_wire(tests)
        print_json(payload)
    else:
        print(format_prediction(prediction, cwd=Path.cwd(), order=args.order))
        print(format_tests(tests, cwd=Path.cwd()))
    if tests.not_run:
        say_error(f"wtls: {printable(tests.not_run)}")
    if tests.has_errors:
        return EXIT_ERROR
    problems = prediction.has_conflicts or tests.has_problems
    return EXIT_REFUSED if problems else EXIT_OK


def _run_check_tests(
    args: argparse.Namespace, state: RepositoryState, plan: TestPlan
) -> TestsReport:
    from wtls.predict.commits import commit_info
    from wtls.semantic import Tester, TestsReport, test_merges

    if plan.not_run is not None:
        return TestsReport(command="", not_run=plan.not_run)
    tip = (
        commit_info(state.repository.common_dir, f"refs/heads/{state.base_branch}")
        if state.base_branch
        else None
    )
    if tip is None:
        raise Refused("wtls check --test needs a base branch with commits (use --base BRANCH)")
    tester = Tester.for_plan(
        plan,
        state.repository,
        timeout=args.timeout,
        on_progress=None if args.json else lambda text: say_error(f"wtls: {text}"),
    )
    return test_merges(state, tester, base_tip=tip, jobs=args.jobs)


def _cmd_diff(args: argparse.Namespace) -> int:
    from wtls.review import worktree_diff
    from wtls.wire import wire_object

    diff = worktree_diff(args.worktree, cwd=Path.cwd(), base_branch=args.base, patch=not args.stat)
    if args.json:
        print_json(wire_object(diff))
    elif args.stat:
        for f in diff.files:
            counts = "binary" if f.added is None else f"+{f.added} -{f.deleted}"
            name = f"{f.old_path} -> {f.path}" if f.old_path else f.path
            print(f"{f.status:<12} {counts:<14} {printable(name)}")
        label = diff.branch or str(diff.worktree)
        count = len(diff.files)
        print(f"{count} file{'' if count == 1 else 's'} changed by {label} against {diff.base}")
    else:
        sys.stdout.write(diff.patch or "")
    return EXIT_OK


def _cmd_take(args: argparse.Namespace) -> int:
    from wtls.review_actions import take_into_base

    return _file_action(args, take_into_base)


def _cmd_discard(args: argparse.Namespace) -> int:
    from wtls.review_actions import discard_in_worktree

    return _file_action(args, discard_in_worktree)


def _file_action(args: argparse.Namespace, action: Callable[..., FileAction]) -> int:
    from wtls.wire import wire_object

    done = action(
        args.worktree, args.path, cwd=Path.cwd(), base_branch=args.base, unsaved=_unsaved(args)
    )
    if args.json:
        print_json(wire_object(done))
    else:
        print(printable(done.message))
    return EXIT_OK


def _cmd_repair(args: argparse.Namespace) -> int:
    from wtls.repair import describe, repair

    paths = [to_path(p, name="PATH") for p in args.paths]
    result = repair(Path.cwd(), paths, apply=args.apply, branch=args.branch)
    if args.json:
        print_json(wire_object(result))
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
    result = move(
        cwd,
        args.worktree,
        to_path(args.new_path, name="NEW_PATH"),
        force=args.force,
        unsaved=_unsaved(args),
    )
    if args.json:
        print_json(wire_object(result))
    else:
        print(f"moved {result.source} -> {result.destination}")
        if cwd == result.source or result.source in cwd.parents:
            print(f"your shell is still in the old folder: cd {result.destination}")
    return EXIT_OK


def _unsaved(args: argparse.Namespace) -> UnsavedFinder | None:
    """What a command that deletes or rewrites files asks before it does: the running engine's
    editors' unsaved buffers there (:func:`wtls.daemon.ask.engine_unsaved`); None with
    ``--no-daemon`` (nothing asked)."""
    if args.no_daemon:
        return None
    from wtls.daemon.ask import engine_unsaved

    return engine_unsaved(Path.cwd(), warn=say_error)


def _lifecycle_settings() -> Any:
    """Lifecycle settings for the CLI: the open command comes from ``$WTLS_OPEN_COMMAND``."""

    from wtls.lifecycle import LifecycleSettings

    return LifecycleSettings(open_command=os.environ.get("WTLS_OPEN_COMMAND") or None)


def _ask_trust(commands: Sequence[Sequence[str]]) -> bool:
    """Ask on the terminal whether to run the setup commands (only when stdin is a terminal).

    The question goes to stderr, so ``--json`` output on stdout stays valid JSON; control
    characters in the commands are shown escaped, so a command cannot repaint the prompt.
    """
    import shlex

    if not sys.stdin.isatty():
        return False
    say_error("This repository's .wtls.toml asks to run in the new worktree:")
    for argv in commands:
        say_error(f"  {printable(shlex.join(argv), keep_newlines=False)}")
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
            say_error(f"wtls: error: cannot read the prompt file {args.prompt_file}: {exc}")
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
        on_output=say_error,
        on_progress=lambda text: say_error(f"wtls: {text}"),
        agent=args.agent,
        sparse=args.sparse,
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
            say_error("wtls: --open: set WTLS_OPEN_COMMAND (e.g. 'code -n {path}') to open it")
    if args.json:
        print_json(wire_object(result))
    else:
        print(f"created {result.path} on branch {result.branch} (from {result.base})")
        if result.prompt_file:
            print(f"  task prompt: {result.prompt_file}")
        if result.ports:
            print("  ports:       " + " ".join(f"{k}={v}" for k, v in result.ports.items()))
        if result.sparse:
            print("  sparse:      " + printable(", ".join(result.sparse), keep_newlines=False))
        if result.copied:
            plain = len(result.copied) - result.cloned
            how = f" ({result.cloned} copy-on-write clone(s), {plain} plain copy(ies))"
            if len(result.copied) > 10:
                print(f"  copied:      {len(result.copied)} files{how}")
            else:
                shown = printable(", ".join(result.copied), keep_newlines=False)
                print(f"  copied:      {shown}{how}")
        if result.shared:
            print("  shared:      " + printable(", ".join(result.shared), keep_newlines=False))
        if result.setup.ran and result.setup.ok:
            print(f"  setup:       {len(result.setup.commands)} command(s) ran")
        if result.agent_hooks:
            print(f"  agent hooks: {result.agent_hooks}")
    if args.agent == "codex":
        say_error(
            "wtls: Codex reads its notify program only from ~/.codex/config.toml: add notify = "
            '["wtls", "hook", "codex"] there once (docs/agents.md)'
        )
    if result.setup.skipped and trusted:
        # Approved, yet not run (the commands changed after the prompt): an error.
        problems.append(printable(result.setup.skipped))
    elif result.setup.skipped:
        say_error(f"wtls: {printable(result.setup.skipped)}; pass --trust to run them")
    if result.setup.message:
        problems.append(result.setup.message)
    for note in result.notes:
        say_error(f"wtls: {printable(note)}")
    for problem in problems:
        say_error(f"wtls: error: {printable(problem)}")
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
        print_json(wire_object(result))
    elif result.path is None:
        for wt in result.worktrees or ():
            label = wt.branch or "(detached)"
            print(f"{wt.path}\t{label}{' (main)' if wt.is_main else ''}")
    elif not result.opened:
        print(result.path)
    if result.exit_status:
        say_error(f"wtls: error: the open command exited with status {result.exit_status}")
        return EXIT_ERROR
    return EXIT_OK


def _cmd_merge(args: argparse.Namespace) -> int:
    from wtls.lifecycle import merge_back

    result = merge_back(
        Path.cwd(),
        args.worktree,
        remove=args.remove,
        abort=args.abort,
        kill=args.kill,
        trusted=args.trust,
        on_output=say_error,
        settings=_lifecycle_settings(),
        unsaved=_unsaved(args),
    )
    if args.json:
        print_json(wire_object(result))
    elif result.merged or result.aborted:
        print(result.message)
    if result.conflicts:
        say_error(f"wtls: {result.message}")
        for path in result.conflicts:
            say_error(f"  conflict: {result.base_worktree / path}")
        return EXIT_ERROR
    for problem in result.problems:
        say_error(f"wtls: error: {problem}")
    return EXIT_ERROR if result.problems else EXIT_OK


def _cmd_remove(args: argparse.Namespace) -> int:
    from wtls.lifecycle import remove

    result = remove(
        Path.cwd(),
        args.worktree,
        force=args.force,
        delete_branch=args.delete_branch,
        dry_run=args.dry_run,
        kill=args.kill,
        trusted=args.trust,
        on_output=say_error,
        settings=_lifecycle_settings(),
        unsaved=_unsaved(args),
    )
    if args.json:
        print_json(wire_object(result))
    else:
        print(result.message)
        if result.dry_run and result.would_back_up:
            print("would back up: " + ", ".join(result.would_back_up))
        if result.unsaved:
            print("unsaved in an editor (these edits would be lost):")
            for buffer in result.unsaved:
                print(f"  {printable(buffer.describe())}")
        if result.dry_run and result.teardown.skipped:
            print(printable(result.teardown.skipped))
        if result.dry_run and result.processes:
            print("processes using it (--kill ends them):")
            for use in result.processes:
                print(f"  {describe_process(use)}")
        if result.restore_command:
            print(f"restore with:\n  {result.restore_command}")
    for problem in result.problems:
        say_error(f"wtls: error: {problem}")
    return EXIT_ERROR if result.problems else EXIT_OK


def _cmd_restore(args: argparse.Namespace) -> int:
    from wtls.backup import restore_backup
    from wtls.worktrees import discover

    cwd = Path.cwd()
    discover(cwd)  # a clear error outside a repository
    path = to_path(args.path, name="--path", base=cwd) if args.path else None
    result = restore_backup(cwd, args.ref, path)
    if args.json:
        print_json(wire_object(result))
    else:
        print(result.message)
    for problem in result.problems:
        say_error(f"wtls: error: {problem}")
    return EXIT_ERROR if result.problems else EXIT_OK


def _cmd_prune_merged(args: argparse.Namespace) -> int:
    from wtls.lifecycle import prune_merged

    result = prune_merged(
        Path.cwd(),
        older_than=args.older_than,
        dry_run=args.dry_run,
        trusted=args.trust,
        on_output=say_error,
        settings=_lifecycle_settings(),
        unsaved=_unsaved(args),
    )
    if args.json:
        print_json(wire_object(result))
    else:
        verb = "would remove" if result.dry_run else "removed"
        for item in result.removed:
            branch = f" and branch {item.branch}" if item.branch else ""
            print(f"{verb} {item.path}{branch} ({human_size(item.bytes)})")
        for kept in result.kept:
            print(f"kept {kept.path}: {printable(kept.reason, keep_newlines=False)}")
        total = sum(item.bytes for item in result.removed)
        if result.removed:
            print(f"{'would reclaim' if result.dry_run else 'reclaimed'} {human_size(total)}")
        else:
            print("no merged worktree to remove")
    for problem in result.problems:
        say_error(f"wtls: error: {printable(problem)}")
    return EXIT_ERROR if result.problems else EXIT_OK


def _cmd_prune(args: argparse.Namespace) -> int:
    from wtls.lifecycle import prune

    if args.merged:
        return _cmd_prune_merged(args)
    if args.older_than is not None or args.trust:
        say_error("wtls prune: error: --older-than and --trust go with --merged")
        return EXIT_ERROR
    result = prune(Path.cwd(), dry_run=args.dry_run)
    if args.json:
        print_json(wire_object(result))
        return EXIT_OK
    for note in result.recovered:
        print(note)
    verb = "would prune" if result.dry_run else "pruned"
    for item in result.pruned:
        saved = f"; its detached commits are saved in {item.backup_ref}" if item.backup_ref else ""
        print(f"{verb} {item.path} ({item.reason or 'folder gone'}){saved}")
    for kept in result.kept:
        print(f"kept {kept.path} ({kept.reason})")
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
        print_json(wire_object(result))
    else:
        state = "locked" if result.locked else "unlocked"
        reason = printable(result.reason or "", keep_newlines=False)
        print(f"{state} {result.path}" + (f" ({reason})" if reason else ""))
    return EXIT_OK


def _cmd_land(args: argparse.Namespace) -> int:
    from wtls.land import land
    from wtls.semantic import Tester
    from wtls.testplan import plan_tests
    from wtls.wire import to_wire
    from wtls.worktrees import discover, repository_state

    cwd = Path.cwd()
    state = repository_state(discover(cwd), args.base)
    plan = plan_tests(state, args.test, trusted=args.trust)
    if plan.not_run is not None:
        raise Refused(plan.not_run)
    if not plan.commands:
        raise Refused(
            "wtls land needs a test command: --test CMD, or `test` in .wtls.toml with --trust"
        )
    tester = Tester.for_plan(
        plan,
        state.repository,
        timeout=args.timeout,
        on_progress=None if args.json else lambda text: say_error(f"wtls: {text}"),
    )
    result = land(
        cwd,
        args.worktrees,
        tester,
        base_branch=args.base,
        remove=args.remove,
        unsaved=_unsaved(args),
    )
    if args.json:
        print_json(to_wire(result))
    else:
        for step in result.steps:
            line = f"{step.status:8} {step.branch} ({step.worktree})"
            if step.status in ("landed", "fail", "timeout"):
                line += f" {step.seconds:.1f} s" + (", cached" if step.cached else "")
            if step.removed:
                line += ", removed"
            print(line)
            for f in step.failures:
                at = f" ({f.path}:{f.line})" if f.path and f.line else ""
                print(f"  failing: {printable(f.name, keep_newlines=False)}{at}")
            for path in step.conflicts:
                print(f"  conflict: {printable(path, keep_newlines=False)}")
            if step.status in ("fail", "timeout", "error") and not step.failures:
                tail = step.output.rstrip().splitlines()[-15:]
                print("\n".join(f"  | {printable(x, keep_newlines=False)}" for x in tail))
        for path, reason in result.skipped:
            print(f"not taken {path}: {reason}")
        print(result.message)
    for note in tester.notes:
        say_error(f"wtls: note: {printable(note)}")
    for problem in result.problems:
        say_error(f"wtls: error: {printable(problem)}")
    stop = result.stopped
    if result.problems or (stop is not None and stop.status == "error"):
        return EXIT_ERROR
    return EXIT_REFUSED if stop is not None else EXIT_OK
