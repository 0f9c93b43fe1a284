"""Repair and move in the editor: ``wtls.repair`` / ``wtls.move``, a quick fix on broken links.

* ``wtls.repair {paths?, apply?, branch?}`` runs :func:`wtls.repair.repair` (paths default to
  the workspace folders, which are also searched for moved folders); after an applied repair
  the folders that were broken are opened again, so their broken-link diagnostics clear.
* ``wtls.move {worktree, newPath, force?}`` runs :func:`wtls.repair.move` and sends
  ``wtls/moved {from, to, branch}`` so an editor window on the old folder can offer to reopen
  the new one. A move made outside the editor (``wtls move``, ``git worktree move``) is noticed
  on the next refresh (same git data, new path) and announced the same way.
* A worktree moved by hand next to, or into, an open workspace folder gets an Error diagnostic
  on its ``.git`` file with the exact fix (git itself only says "prunable" about the old path).
* The code action "Repair worktree links" on those diagnostics and on the server's
  ``broken-link`` diagnostics runs ``wtls.repair`` with ``apply``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lsprotocol import types

from wtls.arguments import MoveArgs, RepairArgs
from wtls.engine import Refreshed
from wtls.errors import Refused
from wtls.locations import to_path
from wtls.problems import Problem
from wtls.repair import MoveResult, RepairResult, diagnose, move, repair
from wtls.server.base import RepoSession, Server
from wtls.server.features.documents import unsaved_finder
from wtls.server.protocol import MOVED_METHOD, Command
from wtls.server.rpc import command, to_dict
from wtls.wire import wire_object
from wtls.worktrees import RepositoryError

REPAIR_COMMAND = Command.REPAIR
MOVE_COMMAND = Command.MOVE
REPAIR_TITLE = "Repair worktree links"
#: Diagnostic codes a repair can fix (``broken-link`` is published by the server core).
REPAIRABLE_CODES = frozenset({"broken-link", "folder-moved", "dotgit-missing", "backlink-missing"})
#: Breakage kinds this module publishes itself (the core already covers the others).
_PUBLISHED_KINDS = frozenset({"folder-moved", "folder-copied"})
#: Diagnostics category in the server's store.
_CATEGORY = "repair"


def _diagnostic_data(diagnostic: types.Diagnostic) -> dict[str, Any]:
    data = to_dict(diagnostic.data)
    return data if isinstance(data, dict) else {}


def code_actions(params: types.CodeActionParams) -> list[types.CodeAction]:
    """ "Repair worktree links" for every wtls diagnostic a repair can fix."""
    actions: list[types.CodeAction] = []
    for diagnostic in params.context.diagnostics:
        if diagnostic.source != "wtls" or diagnostic.code not in REPAIRABLE_CODES:
            continue
        data = _diagnostic_data(diagnostic)
        if data.get("repairable") is False:
            continue
        paths = [p for p in (data.get("worktree"),) if isinstance(p, str)]
        arguments: dict[str, Any] = {"apply": True}
        if paths:
            arguments["paths"] = paths
        actions.append(
            types.CodeAction(
                title=REPAIR_TITLE,
                kind=types.CodeActionKind.QuickFix,
                diagnostics=[diagnostic],
                is_preferred=True,
                command=types.Command(
                    title=REPAIR_TITLE, command=REPAIR_COMMAND, arguments=[arguments]
                ),
            )
        )
    return actions


class _Moves:
    """Remembers each session's worktrees by git data so a move made elsewhere is announced."""

    def __init__(self) -> None:
        self._seen: dict[str, dict[Path, Path]] = {}
        #: Destinations of moves this server is making: announced by the command itself. Set
        #: before the move starts, since the watcher may see it before the command returns.
        self._ours: set[Path] = set()

    def expect(self, destination: Path) -> None:
        """A move to ``destination`` is starting here; the command will announce it."""
        self._ours.add(destination)

    def forget(self, destination: Path) -> None:
        """That move failed, or has been seen."""
        self._ours.discard(destination)

    def detect(self, key: str, refreshed: Refreshed) -> list[tuple[Path, Path, str | None]]:
        """Worktrees whose git data now belongs to another path: (from, to, branch)."""
        now = {
            w.gitdir: w
            for w in refreshed.state.worktrees
            if w.gitdir is not None and not w.is_main and not w.prunable
        }
        before = self._seen.get(key, {})
        self._seen[key] = {gitdir: w.path for gitdir, w in now.items()}
        moves: list[tuple[Path, Path, str | None]] = []
        for gitdir, old_path in before.items():
            wt = now.get(gitdir)
            if wt is None or wt.path == old_path:
                continue
            if wt.path in self._ours:
                self._ours.discard(wt.path)
                continue
            moves.append((old_path, wt.path, wt.branch))
        return moves


def register(server: Server) -> None:
    """Register the repair and move commands, the quick fix, and the refresh hook."""
    moves = _Moves()

    async def reopen_repaired(ls: Server) -> None:
        """Open again the workspace folders whose repository could not be found, and clear
        the broken-link diagnostics of those that work now."""
        await ls.open_folders(ls.workspace_folders())
        for session in list(ls.sessions.values()):
            await ls.refresh(session.engine)

    @command(server, REPAIR_COMMAND, RepairArgs)
    async def repair_command(ls: Server, args: RepairArgs) -> RepairResult:
        """Find broken worktree links (and with ``apply``, repair them)."""
        apply = args.apply
        folders = ls.workspace_folders()
        targets = list(args.paths) or folders
        if not targets:
            raise Refused("name the worktree folders to repair (no workspace folder is open)")
        result = await asyncio.to_thread(
            repair, targets[0], targets[1:], apply=apply, branch=args.branch, candidates=folders
        )
        if apply:
            await reopen_repaired(ls)
        return result

    @command(server, MOVE_COMMAND, MoveArgs)
    async def move_command(ls: Server, args: MoveArgs) -> MoveResult:
        """Move a linked worktree; tell the client so a window on the old folder can follow."""
        worktree = args.worktree
        new_path = args.new_path
        force = args.force
        folders = ls.workspace_folders()
        candidate = to_path(worktree, name="worktree")
        if candidate.is_absolute() and candidate.is_dir():
            start = candidate
        elif folders:
            start = folders[0]
        else:
            raise Refused("name the worktree by its absolute path (no workspace folder is open)")
        destination = new_path
        if not destination.is_absolute():
            raise Refused(f"newPath must be an absolute path, got {new_path!r}")
        engine = await ls.engine_for(start)
        unsaved = await unsaved_finder(ls, start)
        destination = destination.resolve()
        moves.expect(destination)
        try:
            result = await asyncio.to_thread(
                move, start, worktree, destination, force=force, unsaved=unsaved
            )
        except BaseException:
            moves.forget(destination)
            raise
        ls.notify(MOVED_METHOD, wire_object(result))
        await ls.refresh(engine)
        return result

    async def on_refresh(ls: Server, session: RepoSession, refreshed: Refreshed) -> None:
        """Announce moves made elsewhere; publish hand-moved folders with their fix."""
        for source, destination, branch in moves.detect(session.key, refreshed):
            ls.notify(MOVED_METHOD, {"from": str(source), "to": str(destination), "branch": branch})
        state = refreshed.state
        # A workspace folder the repository does not list: maybe a worktree moved by hand.
        stray = any(state.find(f) is None for f in session.folders)
        problems: list[Problem] = []
        if stray or any(w.prunable or w.broken for w in state.worktrees):
            folders = ls.workspace_folders()
            start = session.engine.repository.common_dir
            try:
                found = await asyncio.to_thread(diagnose, start, [*session.folders, *folders])
            except (RepositoryError, OSError):
                found = []
            problems = [b.to_problem() for b in found if b.kind in _PUBLISHED_KINDS]
        if ls.is_open(session):
            ls.diagnostics.replace(_CATEGORY, session.key, problems)

    server.refresh_hooks.append(on_refresh)
    server.code_action_providers.append(_provide)


async def _provide(ls: Server, params: types.CodeActionParams) -> list[types.CodeAction]:
    """Quick fixes for the diagnostics in ``params`` that a repair can fix.

    The core's ``broken-link`` diagnostics do not say whether git can recover (a deleted main
    repository cannot be repaired): ask :func:`wtls.repair.diagnose` before offering.
    """
    actions = code_actions(params)
    folders = ls.workspace_folders()
    kept: list[types.CodeAction] = []
    for action in actions:
        data = _diagnostic_data(action.diagnostics[0]) if action.diagnostics else {}
        worktree = data.get("worktree")
        if "repairable" not in data and isinstance(worktree, str):
            try:
                found = await asyncio.to_thread(diagnose, Path(worktree), folders)
            except (RepositoryError, OSError):
                found = []
            if not any(b.repairable for b in found):
                continue
        kept.append(action)
    return kept
