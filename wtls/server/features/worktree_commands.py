"""Lifecycle commands in the editor: ``workspace/executeCommand`` over :mod:`wtls.lifecycle`.

Each handler reads its single argument object, runs the core function in a thread (git never
blocks the event loop), refreshes the repository so the ``wtls/worktrees`` notification goes
out, and returns the core result's ``to_json()``. Refusals become JSON-RPC errors with code
``REFUSED_CODE`` (-32001) through :func:`wtls.server.rpc.command`.

Every command takes an optional ``uri`` (a file URI or path anywhere in the repository); the
default is the first workspace folder. ``worktree`` arguments are a path, a file URI or a
branch name; relative paths are relative to that folder.

* ``wtls.spawn {name, base?, path?, prompt?, open?, trusted?}`` reports ``$/progress`` while
  it works and streams setup output to the output channel. ``trusted`` is the client's word
  (VS Code passes ``vscode.workspace.isTrusted``); when absent, the ``trusted`` initialization
  option counts. ``open`` runs the ``openCommand`` setting (for clients other than VS Code,
  which opens ``uri`` in a new window itself).
* ``wtls.validateName {name, base?, path?}`` never fails on a bad name: it answers ``ok: false``.
* ``wtls.open {worktree?, open?}``,
  ``wtls.merge {worktree, remove?, deleteBranch?, abort?, kill?, trusted?}``,
  ``wtls.remove {worktree, force?, deleteBranch?, dryRun?, kill?, trusted?}`` (``trusted`` as
  for spawn: whether the worktree's ``teardown`` commands may run),
  ``wtls.prune {dryRun?, merged?, olderThan?, trusted?}``,
  ``wtls.lock {worktree, reason?}``, ``wtls.unlock {worktree}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types

from wtls.errors import Refused
from wtls.lifecycle import (
    LifecycleSettings,
    SpawnResult,
    lock,
    merge_back,
    open_worktree,
    parse_duration,
    prune,
    prune_merged,
    remove,
    spawn,
    unlock,
    validate_name,
)
from wtls.locations import is_uri, to_path
from wtls.server.base import Server
from wtls.server.protocol import Command
from wtls.server.rpc import arg_bool, arg_path, arg_required, arg_str, command

T = TypeVar("T")

SPAWN = Command.SPAWN
VALIDATE_NAME = Command.VALIDATE_NAME
OPEN = Command.OPEN
MERGE = Command.MERGE
REMOVE = Command.REMOVE
PRUNE = Command.PRUNE
LOCK = Command.LOCK
UNLOCK = Command.UNLOCK


def lifecycle_settings(ls: Server) -> LifecycleSettings:
    """The lifecycle part of the editor's ``wtls`` settings."""
    s = ls.settings
    return LifecycleSettings(
        branch_template=s.branchTemplate,
        path_template=s.worktreePathTemplate,
        open_command=s.openCommand or None,
        base_branch=s.baseBranch or None,
    )


def _optional_path(args: dict[str, Any], key: str) -> Path | None:
    """A place argument that may be absent or empty (both mean "not given")."""
    return arg_path(args, key) if args.get(key) != "" else None


def start_path(ls: Server, args: dict[str, Any]) -> Path:
    """Where the command runs from: the ``uri`` argument, else the first workspace folder."""
    path = _optional_path(args, "uri")
    if path is not None:
        return path
    folders = ls.workspace_folders()
    if not folders:
        raise Refused("no workspace folder is open: pass a `uri` inside the repository")
    return folders[0]


def _optional_worktree_arg(args: dict[str, Any]) -> str | None:
    value = arg_str(args, "worktree")
    if value is not None and is_uri(value):
        return str(to_path(value, name="worktree"))
    return value


def _worktree_arg(args: dict[str, Any]) -> str:
    """The ``worktree`` argument (a path, a file URI or a branch name); refused when absent."""
    value = arg_required(args, "worktree")
    return str(to_path(value, name="worktree")) if is_uri(value) else value


def _announce(args: dict[str, Any]) -> bool:
    """Whether the server shows a command's problems itself (``announce``, default true).

    A client that shows each result in its own words (the VS Code extension) passes
    ``announce: false``, so a person sees one message per action, not two.
    """
    return _optional_bool(args, "announce") is not False


def _optional_bool(args: dict[str, Any], key: str) -> bool | None:
    return arg_bool(args, key) if key in args and args[key] is not None else None


async def _changing(ls: Server, start: Path, work: Callable[[], T]) -> T:
    """Run ``work`` in a thread, then refresh the repository so clients see the change."""
    engine = await ls.engine_for(start)
    try:
        return await asyncio.to_thread(work)
    finally:
        await ls.refresh(engine)


def _trusted(ls: Server, args: dict[str, Any]) -> bool:
    """The command's own ``trusted`` argument, else the client's workspace trust."""
    given = _optional_bool(args, "trusted")
    return ls.trusted if given is None else given


def _teardown_output(ls: Server, worktree: str) -> Callable[[str], None]:
    """Teardown output goes to the output channel (from the worker thread, safely)."""
    loop = asyncio.get_running_loop()

    def output(line: str) -> None:
        loop.call_soon_threadsafe(ls.log_message, f"wtls teardown {worktree}: {line}")

    return output


async def _prune_merged(
    ls: Server, args: dict[str, Any], start: Path, dry_run: bool
) -> dict[str, Any]:
    """``wtls.prune {merged: true, olderThan?, dryRun?, trusted?}``."""
    text = arg_str(args, "olderThan")
    try:
        older_than = parse_duration(text) if text is not None else None
    except ValueError as exc:
        raise Refused(f"olderThan: {exc}") from exc
    trusted = _trusted(ls, args)
    output = _teardown_output(ls, "prune --merged")
    result = await _changing(
        ls,
        start,
        lambda: prune_merged(
            start,
            older_than=older_than,
            dry_run=dry_run,
            trusted=trusted,
            on_output=output,
            settings=lifecycle_settings(ls),
        ),
    )
    return result.to_json()


def register(server: Server) -> None:
    """Register the lifecycle commands."""

    @command(server, SPAWN)
    async def spawn_command(ls: Server, args: dict[str, Any]) -> dict[str, Any]:
        """Create a worktree for a fresh AI session."""
        name = arg_required(args, "name")
        base = arg_str(args, "base")
        path = _optional_path(args, "path")
        prompt = arg_str(args, "prompt")
        open_window = arg_bool(args, "open")
        given = _optional_bool(args, "trusted")
        trusted = ls.trusted if given is None else given
        start = start_path(ls, args)
        settings = lifecycle_settings(ls)
        engine = await ls.engine_for(start)
        loop = asyncio.get_running_loop()

        def work(report: Callable[[str], None]) -> SpawnResult:
            def output(line: str) -> None:
                loop.call_soon_threadsafe(ls.log_message, f"wtls spawn {name}: {line}")
                report(line)

            return spawn(
                start,
                name,
                base=base,
                path=path,
                prompt=prompt,
                trusted=trusted,
                open_window=open_window,
                settings=settings,
                on_output=output,
                on_progress=report,
            )

        try:
            result = await ls.with_progress(f"wtls: spawning {name}", work)
        finally:
            await ls.refresh(engine)
        if result.ports:
            engine.set_extra(result.path, "ports", tuple(result.ports.items()))
            await ls.refresh(engine)
        if result.setup.skipped:
            ls.log_message(f"wtls: {result.setup.skipped}")
        if _announce(args):
            for problem in [*result.problems, *filter(None, [result.setup.message])]:
                ls.show_message(f"wtls: {problem}", types.MessageType.Error)
        return result.to_json()

    @command(server, VALIDATE_NAME)
    async def validate_name_command(ls: Server, args: dict[str, Any]) -> dict[str, Any]:
        """Check a spawn name as the user types it."""
        name = arg_str(args, "name") or ""
        base = arg_str(args, "base")
        path = _optional_path(args, "path")
        start = start_path(ls, args)
        check = await asyncio.to_thread(
            validate_name,
            start,
            name,
            lifecycle_settings(ls),
            base=base,
            path=path,
        )
        return check.to_json()

    @command(server, OPEN)
    async def open_command(ls: Server, args: dict[str, Any]) -> dict[str, Any]:
        """List the worktrees to pick from, or resolve (and with ``open``, open) one."""
        worktree = _optional_worktree_arg(args)
        open_window = arg_bool(args, "open")
        start = start_path(ls, args)
        result = await asyncio.to_thread(
            open_worktree,
            start,
            worktree,
            open_window=open_window,
            wait=False,
            settings=lifecycle_settings(ls),
        )
        return result.to_json()

    @command(server, MERGE)
    async def merge_command(ls: Server, args: dict[str, Any]) -> dict[str, Any]:
        """Merge a worktree's branch back into the base branch."""
        worktree = _worktree_arg(args)
        start = start_path(ls, args)
        trusted = _trusted(ls, args)
        output = _teardown_output(ls, worktree)
        result = await _changing(
            ls,
            start,
            lambda: merge_back(
                start,
                worktree,
                remove=arg_bool(args, "remove"),
                delete_branch=_optional_bool(args, "deleteBranch"),
                abort=arg_bool(args, "abort"),
                kill=arg_bool(args, "kill"),
                trusted=trusted,
                on_output=output,
                settings=lifecycle_settings(ls),
            ),
        )
        if _announce(args):
            if result.conflicts:
                ls.show_message(f"wtls: {result.message}", types.MessageType.Warning)
            for problem in result.problems:
                ls.show_message(f"wtls: {problem}", types.MessageType.Warning)
        return result.to_json()

    @command(server, REMOVE)
    async def remove_command(ls: Server, args: dict[str, Any]) -> dict[str, Any]:
        """Remove a worktree safely (forced: after backing up every change)."""
        worktree = _worktree_arg(args)
        start = start_path(ls, args)
        trusted = _trusted(ls, args)
        output = _teardown_output(ls, worktree)
        result = await _changing(
            ls,
            start,
            lambda: remove(
                start,
                worktree,
                force=arg_bool(args, "force"),
                delete_branch=arg_bool(args, "deleteBranch"),
                dry_run=arg_bool(args, "dryRun"),
                kill=arg_bool(args, "kill"),
                trusted=trusted,
                on_output=output,
                settings=lifecycle_settings(ls),
            ),
        )
        if result.restore_command:
            ls.log_message(f"wtls: {result.message}; restore with: {result.restore_command}")
        if _announce(args):
            for problem in result.problems:
                text = f"{result.message}; but {problem}" if result.removed else problem
                ls.show_message(f"wtls: {text}", types.MessageType.Warning)
        return result.to_json()

    @command(server, PRUNE)
    async def prune_command(ls: Server, args: dict[str, Any]) -> dict[str, Any]:
        """Forget worktrees whose folders were deleted by hand."""
        start = start_path(ls, args)
        dry_run = arg_bool(args, "dryRun")
        if arg_bool(args, "merged"):
            return await _prune_merged(ls, args, start, dry_run)
        result = await _changing(ls, start, lambda: prune(start, dry_run=dry_run))
        return result.to_json()

    @command(server, LOCK)
    async def lock_command(ls: Server, args: dict[str, Any]) -> dict[str, Any]:
        """Lock a worktree, with an optional reason."""
        worktree = _worktree_arg(args)
        reason = arg_str(args, "reason")
        start = start_path(ls, args)
        result = await _changing(ls, start, lambda: lock(start, worktree, reason))
        return result.to_json()

    @command(server, UNLOCK)
    async def unlock_command(ls: Server, args: dict[str, Any]) -> dict[str, Any]:
        """Unlock a worktree."""
        worktree = _worktree_arg(args)
        start = start_path(ls, args)
        result = await _changing(ls, start, lambda: unlock(start, worktree))
        return result.to_json()
