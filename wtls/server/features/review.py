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
from typing import Any

from wtls.arguments import FileActionArgs, FileAtParams, ReviewParams
from wtls.review import WorktreeDiff, worktree_diff
from wtls.review_actions import FileAction, FileAt, discard_in_worktree, file_at, take_into_base
from wtls.server.base import Server
from wtls.server.features.documents import unsaved_finder
from wtls.server.features.worktree_commands import start_path
from wtls.server.protocol import FILE_AT_METHOD, REVIEW_METHOD, Command
from wtls.server.rpc import command, request


def register(server: Server) -> None:
    """Register ``wtls/review``, ``wtls/fileAt`` and the two per-file commands."""

    @request(server, REVIEW_METHOD, ReviewParams)
    async def review_request(ls: Server, params: ReviewParams) -> WorktreeDiff:
        """A worktree's changed files against its merge base with the base branch."""
        base = ls.settings.baseBranch or None
        start = start_path(ls, params)
        return await asyncio.to_thread(
            lambda: worktree_diff(params.worktree, cwd=start, base_branch=base, patch=False)
        )

    @request(server, FILE_AT_METHOD, FileAtParams)
    async def file_at_request(ls: Server, params: FileAtParams) -> FileAt:
        """One file as a commit (a review's merge base) holds it."""
        start = start_path(ls, params)
        return await asyncio.to_thread(file_at, start, params.rev, params.path)

    for name, action in (
        (Command.TAKE_INTO_BASE, take_into_base),
        (Command.DISCARD_IN_WORKTREE, discard_in_worktree),
    ):
        _register_action(server, name, action)


def _register_action(server: Server, name: str, action: Callable[..., Any]) -> None:
    @command(server, name, FileActionArgs)
    async def file_action(ls: Server, args: FileActionArgs) -> FileAction:
        """Take one reviewed file into the base worktree, or discard it in its worktree."""
        start = start_path(ls, args)
        base = ls.settings.baseBranch or None
        engine = await ls.engine_for(start)
        unsaved = await unsaved_finder(ls, start)
        try:
            done: FileAction = await asyncio.to_thread(
                lambda: action(
                    args.worktree, args.path, cwd=start, base_branch=base, unsaved=unsaved
                )
            )
        finally:
            await ls.refresh(engine)
        return done
