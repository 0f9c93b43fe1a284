"""Lifecycle commands in the editor: ``workspace/executeCommand`` over :mod:`wtls.lifecycle`.

Each handler gets its argument object typed (:mod:`wtls.arguments`), runs the core function in
a thread (git never blocks the event loop), refreshes the repository so the ``wtls/worktrees``
notification goes out, and returns the core result (sent in its wire form). Refusals become
JSON-RPC errors with code ``REFUSED_CODE`` (-32001) through :func:`wtls.server.rpc.command`.

The commands that delete or rewrite files (merge, remove, prune with ``merged``) refuse while
ANY session of the process (every window of the engine) holds unsaved buffers of those files:
:func:`wtls.server.features.documents.unsaved_finder` hands the core what it asks
(:mod:`wtls.unsaved`).

Every command takes an optional ``uri`` (a file URI or path anywhere in the repository); the
default is the first workspace folder. ``worktree`` arguments are a path, a file URI or a
branch name; relative paths are relative to that folder.

* ``wtls.spawn {name, base?, path?, prompt?, open?, trusted?, agent?}`` reports ``$/progress`` while
  it works and streams setup output to the output channel. ``trusted`` is the client's word
  (VS Code passes ``vscode.workspace.isTrusted``); when absent, the ``trusted`` initialization
  option counts. ``open`` runs the ``openCommand`` setting (for clients other than VS Code,
  which opens ``uri`` in a new window itself). ``agent: "claude"`` writes wtls's hooks into
  the new worktree's ``.claude/settings.local.json``.
* ``wtls.validateName {name, base?, path?}`` never fails on a bad name: it answers ``ok: false``.
* ``wtls.open {worktree?, open?}``, ``wtls.merge {worktree, remove?, deleteBranch?, abort?}``,
  ``wtls.remove {worktree, force?, deleteBranch?, dryRun?}``, ``wtls.prune {dryRun?}``,
  ``wtls.lock {worktree, reason?}``, ``wtls.unlock {worktree}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from lsprotocol import types

from wtls.arguments import (
    LockArgs,
    MergeArgs,
    OpenArgs,
    PruneArgs,
    RemoveArgs,
    RepositoryArgs,
    SpawnArgs,
    UnlockArgs,
    ValidateNameArgs,
)
from wtls.errors import Refused
from wtls.lifecycle import (
    LifecycleSettings,
    LockResult,
    MergeResult,
    NameCheck,
    OpenResult,
    PruneMergedResult,
    PruneResult,
    RemoveResult,
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
from wtls.server.base import Server
from wtls.server.features.documents import unsaved_finder
from wtls.server.protocol import Command
from wtls.server.rpc import command

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


def start_path(ls: Server, args: RepositoryArgs) -> Path:
    """Where the command runs from: the ``uri`` argument, else the first workspace folder."""
    if args.uri is not None:
        return args.uri
    folders = ls.workspace_folders()
    if not folders:
        raise Refused("no workspace folder is open: pass a `uri` inside the repository")
    return folders[0]


async def _changing(ls: Server, start: Path, work: Callable[[], T]) -> T:
    """Run ``work`` in a thread, then refresh the repository so clients see the change."""
    engine = await ls.engine_for(start)
    try:
        return await asyncio.to_thread(work)
    finally:
        await ls.refresh(engine)


def _trusted(ls: Server, given: bool | None) -> bool:
    """The command's own ``trusted`` argument, else the client's workspace trust."""
    return ls.trusted if given is None else given


def _teardown_output(ls: Server, worktree: str) -> Callable[[str], None]:
    """Teardown output goes to the output channel (from the worker thread, safely)."""
    loop = asyncio.get_running_loop()

    def output(line: str) -> None:
        loop.call_soon_threadsafe(ls.log_message, f"wtls teardown {worktree}: {line}")

    return output


async def run_prune_merged(ls: Server, args: PruneArgs, start: Path) -> PruneMergedResult:
    """``wtls.prune {merged: true, olderThan?, dryRun?, trusted?}``."""
    try:
        older_than = parse_duration(args.older_than) if args.older_than is not None else None
    except ValueError as exc:
        raise Refused(f"olderThan: {exc}") from exc
    trusted = _trusted(ls, args.trusted)
    output = _teardown_output(ls, "prune --merged")
    unsaved = await unsaved_finder(ls, start)
    return await _changing(
        ls,
        start,
        lambda: prune_merged(
            start,
            older_than=older_than,
            dry_run=args.dry_run,
            trusted=trusted,
            on_output=output,
            settings=lifecycle_settings(ls),
            unsaved=unsaved,
        ),
    )


def register(server: Server) -> None:
    """Register the lifecycle commands."""

    @command(server, SPAWN, SpawnArgs)
    async def spawn_command(ls: Server, args: SpawnArgs) -> SpawnResult:
        """Create a worktree for a fresh AI session."""
        name = args.name
        trusted = ls.trusted if args.trusted is None else args.trusted
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
                base=args.base,
                path=args.path,
                prompt=args.prompt,
                trusted=trusted,
                open_window=args.open,
                settings=settings,
                on_output=output,
                on_progress=report,
                agent=args.agent,
                sparse=args.sparse,
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
        for note in result.notes:
            ls.log_message(f"wtls spawn {name}: {note}")
        if args.announce:
            for problem in [*result.problems, *filter(None, [result.setup.message])]:
                ls.show_message(f"wtls: {problem}", types.MessageType.Error)
        return result

    @command(server, VALIDATE_NAME, ValidateNameArgs)
    async def validate_name_command(ls: Server, args: ValidateNameArgs) -> NameCheck:
        """Check a spawn name as the user types it."""
        start = start_path(ls, args)
        return await asyncio.to_thread(
            validate_name,
            start,
            args.name or "",
            lifecycle_settings(ls),
            base=args.base,
            path=args.path,
        )

    @command(server, OPEN, OpenArgs)
    async def open_command(ls: Server, args: OpenArgs) -> OpenResult:
        """List the worktrees to pick from, or resolve (and with ``open``, open) one."""
        start = start_path(ls, args)
        return await asyncio.to_thread(
            open_worktree,
            start,
            args.worktree,
            open_window=args.open,
            wait=False,
            settings=lifecycle_settings(ls),
        )

    @command(server, MERGE, MergeArgs)
    async def merge_command(ls: Server, args: MergeArgs) -> MergeResult:
        """Merge a worktree's branch back into the base branch."""
        start = start_path(ls, args)
        trusted = _trusted(ls, args.trusted)
        output = _teardown_output(ls, args.worktree)
        unsaved = await unsaved_finder(ls, start)
        result = await _changing(
            ls,
            start,
            lambda: merge_back(
                start,
                args.worktree,
                remove=args.remove,
                delete_branch=args.delete_branch,
                abort=args.abort,
                kill=args.kill,
                trusted=trusted,
                on_output=output,
                settings=lifecycle_settings(ls),
                unsaved=unsaved,
            ),
        )
        if args.announce:
            if result.conflicts:
                ls.show_message(f"wtls: {result.message}", types.MessageType.Warning)
            for problem in result.problems:
                ls.show_message(f"wtls: {problem}", types.MessageType.Warning)
        return result

    @command(server, REMOVE, RemoveArgs)
    async def remove_command(ls: Server, args: RemoveArgs) -> RemoveResult:
        """Remove a worktree safely (forced: after backing up every change)."""
        start = start_path(ls, args)
        trusted = _trusted(ls, args.trusted)
        output = _teardown_output(ls, args.worktree)
        unsaved = await unsaved_finder(ls, start)
        result = await _changing(
            ls,
            start,
            lambda: remove(
                start,
                args.worktree,
                force=args.force,
                delete_branch=args.delete_branch,
                dry_run=args.dry_run,
                kill=args.kill,
                trusted=trusted,
                on_output=output,
                settings=lifecycle_settings(ls),
                unsaved=unsaved,
            ),
        )
        if result.restore_command:
            ls.log_message(f"wtls: {result.message}; restore with: {result.restore_command}")
        if args.announce:
            for problem in result.problems:
                text = f"{result.message}; but {problem}" if result.removed else problem
                ls.show_message(f"wtls: {text}", types.MessageType.Warning)
        return result

    @command(server, PRUNE, PruneArgs)
    async def prune_command(ls: Server, args: PruneArgs) -> PruneResult | PruneMergedResult:
        """Forget worktrees whose folders were deleted by hand (``merged``: remove the
        worktrees whose branch is merged)."""
        start = start_path(ls, args)
        if args.merged:
            return await run_prune_merged(ls, args, start)
        return await _changing(ls, start, lambda: prune(start, dry_run=args.dry_run))

    @command(server, LOCK, LockArgs)
    async def lock_command(ls: Server, args: LockArgs) -> LockResult:
        """Lock a worktree, with an optional reason."""
        start = start_path(ls, args)
        return await _changing(ls, start, lambda: lock(start, args.worktree, args.reason))

    @command(server, UNLOCK, UnlockArgs)
    async def unlock_command(ls: Server, args: UnlockArgs) -> LockResult:
        """Unlock a worktree."""
        start = start_path(ls, args)
        return await _changing(ls, start, lambda: unlock(start, args.worktree))
