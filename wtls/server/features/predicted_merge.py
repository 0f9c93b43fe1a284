"""``wtls/predictedMerge``: one file as git's merge with another worktree would leave it.

The answer is the core's :func:`wtls.review.predicted_merge`, computed in a worker thread with
the open buffers of the repository as overlays (unsaved edits count, as they do for conflict
foresight). Clients show it beside the file (VS Code: "Show Predicted Merge").
"""

from __future__ import annotations

import asyncio

from wtls.arguments import PredictedMergeParams
from wtls.overlays import buffer_overlays
from wtls.review import PredictedMerge, predicted_merge
from wtls.server.base import Server
from wtls.server.features.documents import open_texts
from wtls.server.protocol import PREDICTED_MERGE_METHOD
from wtls.server.rpc import request


def register(server: Server) -> None:
    """Answer ``wtls/predictedMerge {uri, with}`` with ``{content, conflicted, path, ...}``."""

    @request(server, PREDICTED_MERGE_METHOD, PredictedMergeParams)
    async def predicted_merge_request(ls: Server, params: PredictedMergeParams) -> PredictedMerge:
        """The file ``uri`` as merging its worktree with ``with`` (worktree or "base") leaves it."""
        texts = open_texts(ls)
        base = ls.settings.baseBranch or None
        return await asyncio.to_thread(
            lambda: predicted_merge(
                params.uri, params.with_, overlays=buffer_overlays(texts), base_branch=base
            )
        )
