"""``wtls/predictedMerge``: one file as git's merge with another worktree would leave it.

The answer is the core's :func:`wtls.review.predicted_merge`, computed in a worker thread with
the open buffers of the repository as overlays (unsaved edits count, as they do for conflict
foresight). Clients show it beside the file (VS Code: "Show Predicted Merge").
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from wtls.errors import ERROR_CODE, REFUSED_CODE, Refused
from wtls.git import GitError, GitUnavailable
from wtls.locations import BadLocation, to_path
from wtls.overlays import buffer_overlays
from wtls.review import predicted_merge
from wtls.server.base import Server
from wtls.server.protocol import PREDICTED_MERGE_METHOD
from wtls.server.rpc import rpc_error, to_dict, uri_to_path
from wtls.wire import wire_object
from wtls.worktrees import RepositoryError


def _open_texts(ls: Server) -> dict[Path, str]:
    out: dict[Path, str] = {}
    for uri, doc in list(ls.workspace.text_documents.items()):
        path = uri_to_path(uri)
        if path is not None:
            out[path.resolve()] = doc.source
    return out


def _param(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value:
        got = "nothing" if value is None else json_type(value)
        raise rpc_error(
            f"{PREDICTED_MERGE_METHOD}: '{name}' must be a non-empty string, got {got}",
            ERROR_CODE,
            {"kind": "error", "field": name},
        )
    return value


def json_type(value: Any) -> str:
    """The JSON name of a Python value's type, for error messages."""
    for kind, name in ((bool, "a boolean"), (str, "a string"), (dict, "an object")):
        if isinstance(value, kind):
            return name
    if isinstance(value, int | float):
        return "a number"
    return "an array" if isinstance(value, list) else type(value).__name__


def register(server: Server) -> None:
    """Answer ``wtls/predictedMerge {uri, with}`` with ``{content, conflicted, path, ...}``."""

    @server.feature(PREDICTED_MERGE_METHOD)
    async def predicted_merge_request(ls: Server, params: Any) -> dict[str, Any]:
        """The file ``uri`` as merging its worktree with ``with`` (worktree or "base") leaves it."""
        args = to_dict(params) if params is not None else {}
        if not isinstance(args, dict):
            raise rpc_error(f"{PREDICTED_MERGE_METHOD} takes an object", ERROR_CODE)
        uri, other = _param(args, "uri"), _param(args, "with")
        try:
            file = to_path(uri, name="uri")
        except BadLocation as exc:
            raise rpc_error(str(exc), ERROR_CODE, {"kind": "error", "field": "uri"}) from exc
        texts = _open_texts(ls)
        try:
            result = await asyncio.to_thread(
                lambda: predicted_merge(
                    file,
                    other,
                    overlays=buffer_overlays(texts),
                    base_branch=ls.settings.baseBranch or None,
                )
            )
        except Refused as exc:
            raise rpc_error(str(exc), REFUSED_CODE, {"kind": "refused"}) from exc
        except (GitError, GitUnavailable, RepositoryError, OSError) as exc:
            raise rpc_error(str(exc), ERROR_CODE, {"kind": "error"}) from exc
        return wire_object(result)
