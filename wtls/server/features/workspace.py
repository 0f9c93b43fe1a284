"""The workspace: settings, workspace folders, the ``wtls/worktrees`` request, ``wtls.refresh``.

Settings come from the initialization options, then from ``workspace/configuration`` (and again
on every ``didChangeConfiguration``); bad values are reported and replaced by their defaults.
Added workspace folders are opened; removed ones are dropped with their sessions once no folder
uses them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsprotocol import types

from wtls.arguments import RefreshArgs
from wtls.engine import RefreshResult
from wtls.errors import ERROR_CODE, REFUSED_CODE, Refused
from wtls.git import GitUnavailable, require_git
from wtls.locations import BadLocation, to_path
from wtls.server.base import Server
from wtls.server.config import parse_settings
from wtls.server.protocol import WORKTREES_METHOD, Command
from wtls.server.rpc import command, rpc_error, to_dict, uri_to_path
from wtls.watch import ChangeSet

log = logging.getLogger(__name__)


def read_initialization_options(ls: Server, raw_options: Any) -> None:
    """Settings and workspace trust from ``initialize`` (problems are said once initialized)."""
    options = to_dict(raw_options) or {}
    if isinstance(options, dict):
        ls.trusted = bool(options.get("trusted", False))
        raw = options.get("settings", options.get("wtls"))
        if raw is not None:
            settings, problems = parse_settings(raw)
            ls.settings = settings
            ls.pending_problems = problems


async def start(ls: Server) -> None:
    """``initialized``: discover the repositories of the workspace, watch them, announce them."""
    for problem in ls.pending_problems:
        ls.show_message(f"wtls: {problem}")
    try:
        require_git()
    except GitUnavailable as exc:
        ls.show_message(f"wtls: {exc}", types.MessageType.Error)
        return
    await load_settings(ls)
    await ls.open_folders(ls.workspace_folders())


async def load_settings(ls: Server, raw: Any | None = None) -> None:
    """Read settings (from ``raw``, or ask the client) and apply them everywhere."""
    if raw is None:
        caps = ls.client_capabilities.workspace
        if caps is not None and caps.configuration:
            try:
                result = await asyncio.wait_for(
                    ls.workspace_configuration_async(
                        types.ConfigurationParams(items=[types.ConfigurationItem(section="wtls")])
                    ),
                    timeout=5,
                )
                raw = result[0] if result else None
            except Exception as exc:  # a client that cannot answer keeps the defaults
                log.info("workspace/configuration failed: %s", exc)
    if raw is None:
        return
    settings, problems = parse_settings(raw)
    for problem in problems:
        ls.show_message(f"wtls: {problem}")
    if settings == ls.settings:
        return
    ls.settings = settings
    for session in list(ls.sessions.values()):
        session.shared.debounce_ms = settings.debounceMs
        wanted = settings.engine_settings()
        if session.engine.settings == wanted:
            continue  # a shared repository: another session's settings already apply
        session.engine.configure(wanted)
        if session.watcher is not None:  # new ignore globs
            await asyncio.to_thread(session.watcher.retarget, session.engine.watch_targets())
        ls.queue_change(session, ChangeSet(everything=True))


def register(server: Server) -> None:
    """Register configuration and folder changes, ``wtls/worktrees`` and ``wtls.refresh``."""

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: Server, params: types.DidChangeConfigurationParams
    ) -> None:
        """Apply new settings without a restart."""
        raw = to_dict(params.settings)
        if isinstance(raw, dict) and raw.get("wtls") is not None:
            await load_settings(ls, raw["wtls"])
        else:
            await load_settings(ls)

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    async def did_change_folders(ls: Server, params: types.DidChangeWorkspaceFoldersParams) -> None:
        """Open sessions for added folders; drop folders (and idle sessions) that were removed."""
        for removed in params.event.removed:
            path = uri_to_path(removed.uri)
            for session in list(ls.sessions.values()):
                if path is not None and path.resolve() in session.folders:
                    session.folders.remove(path.resolve())
                    if not session.folders:
                        ls.close_session(session)
            if path is not None:
                ls.forget_folder(path.resolve())
        added = [p.resolve() for f in params.event.added if (p := uri_to_path(f.uri))]
        await ls.open_folders(added)

    @server.feature(WORKTREES_METHOD)
    async def worktrees_request(ls: Server, params: Any) -> dict[str, Any]:
        """Return the ``wtls/worktrees`` object for the repository of ``params.uri``."""
        args = to_dict(params) if params is not None else {}
        uri = args.get("uri") if isinstance(args, dict) else None
        if uri is not None and not isinstance(uri, str):
            raise rpc_error(f"uri must be a string, got {type(uri).__name__}", ERROR_CODE)
        try:
            path = to_path(uri, name="uri") if uri is not None else None
        except BadLocation as exc:
            raise rpc_error(str(exc), ERROR_CODE) from exc
        try:
            engine = await ls.engine_for(path)
        except Refused as exc:
            raise rpc_error(str(exc), REFUSED_CODE) from exc
        except GitUnavailable as exc:
            raise rpc_error(str(exc), ERROR_CODE) from exc
        session = ls.sessions[engine.repository.key]
        if engine.state is None:
            await ls.refresh(engine)
        return session.payload()

    @command(server, Command.REFRESH, RefreshArgs)
    async def refresh_command(ls: Server, args: RefreshArgs) -> RefreshResult:
        """Re-read every repository now."""
        for session in list(ls.sessions.values()):
            await ls.refresh(session.engine)
        return RefreshResult(repositories=tuple(s.key for s in ls.sessions.values()))
