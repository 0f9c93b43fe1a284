"""Review a worktree in the editor: its diff against the merge base, and per-file actions.

* ``wtls/review {worktree, uri?}`` → the ``wtls diff --json`` object (:func:`wtls.review.
  worktree_diff` without the patch): ``mergeBase`` and ``files`` are what a client needs to
  show each file's two sides.
* ``wtls/fileAt {rev, path, uri?}`` → ``{content, exists, binary}``: the merge-base side of one
  file (``rev`` is a full commit name such as ``mergeBase``), bounded like a predicted merge.
* Commands ``wtls.takeIntoBase {worktree, path, uri?}`` and ``wtls.discardInWorktree
  {worktree, path, uri?}`` call :mod:`wtls.review_actions` and answer its ``FileAction``
  (``message`` is the sentence to show; a discard names its backup ref).

``uri`` (a file URI or path in the repository) picks the repository; the default is the first
workspace folder. The work runs in a thread; the commands refresh the repository afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from wtls.errors import ERROR_CODE, REFUSED_CODE, Refused
from wtls.git import GitError, GitUnavailable
from wtls.locations import BadLocation, is_uri, to_path
from wtls.review import worktree_diff
from wtls.review_actions import discard_in_worktree, file_at, take_into_base
from wtls.server.base import Server
from wtls.server.features.worktree_commands import start_path
from wtls.server.protocol import FILE_AT_METHOD, REVIEW_METHOD, Command
from wtls.server.rpc import arg_required, command, rpc_error, to_dict
from wtls.wire import wire_object
from wtls.worktrees import RepositoryError

T = TypeVar("T")


def _worktree(args: dict[str, Any]) -> str:
    value = arg_required(args, "worktree")
    return str(to_path(value, name="worktree")) if is_uri(value) else value


async def _answer(method: str, params: Any, work: Callable[[dict[str, Any]], T]) -> T:
    """Read a request's object, run ``work`` in a thread, map errors as commands do."""
    args = to_dict(params) if params is not None else {}
    if not isinstance(args, dict):
        raise rpc_error(f"{method} takes an object", ERROR_CODE)
    try:
        return await asyncio.to_thread(work, args)
    except (Refused, BadLocation) as exc:
        raise rpc_error(str(exc), REFUSED_CODE, {"kind": "refused"}) from exc
    except (GitError, GitUnavailable, RepositoryError, OSError) as exc:
        raise rpc_error(str(exc), ERROR_CODE, {"kind": "error"}) from exc


def register(server: Server) -> None:
    """Register ``wtls/review``, ``wtls/fileAt`` and the two per-file commands."""

    @server.feature(REVIEW_METHOD)
    async def review_request(ls: Server, params: Any) -> dict[str, Any]:
        """A worktree's changed files against its merge base with the base branch."""
        base = ls.settings.baseBranch or None

        def work(args: dict[str, Any]) -> dict[str, Any]:
            spec = _worktree(args)
            start = start_path(ls, args)
            return wire_object(worktree_diff(spec, cwd=start, base_branch=base, patch=False))

        return await _answer(REVIEW_METHOD, params, work)

    @server.feature(FILE_AT_METHOD)
    async def file_at_request(ls: Server, params: Any) -> dict[str, Any]:
        """One file as a commit (a review's merge base) holds it."""

        def work(args: dict[str, Any]) -> dict[str, Any]:
            rev, path = arg_required(args, "rev"), arg_required(args, "path")
            return wire_object(file_at(start_path(ls, args), rev, path))

        return await _answer(FILE_AT_METHOD, params, work)

    for name, action in (
        (Command.TAKE_INTO_BASE, take_into_base),
        (Command.DISCARD_IN_WORKTREE, discard_in_worktree),
    ):
        _register_action(server, name, action)


def _register_action(server: Server, name: str, action: Callable[..., Any]) -> None:
    @command(server, name)
    async def file_action(ls: Server, args: dict[str, Any]) -> dict[str, Any]:
        """Take one reviewed file into the base worktree, or discard it in its worktree."""
        spec, path = _worktree(args), arg_required(args, "path")
        start = start_path(ls, args)
        base = ls.settings.baseBranch or None
        engine = await ls.engine_for(start)
        try:
            done = await asyncio.to_thread(lambda: action(spec, path, cwd=start, base_branch=base))
        finally:
            await ls.refresh(engine)
        return wire_object(done)
