"""Conflict foresight: predict what merging the worktrees' *current working states* would do.

Pure core (no LSP). For every worktree, its working state (committed and uncommitted changes,
untracked files, never ignored ones, plus unsaved editor buffers given as overlays) is
snapshotted into an unreferenced commit through a *temporary* index (:mod:`.snapshot`). The
snapshots are then merged pairwise, and each worktree against the base branch's tip, with ``git
merge-tree --write-tree --stdin -z`` (one process for the whole matrix, :mod:`.mergetree`),
which is git's own merge machinery: the prediction is what ``git merge`` would do. Conflicts
and overlaps are located in each side's lines (:mod:`.ranges`); the merge order that conflicts
least is searched (:mod:`.order`); :class:`ConflictPredictor` (:mod:`.predictor`) caches it all
between updates; :mod:`.text` puts a prediction in words. The public models are in
:mod:`.models`.

Snapshot and merge objects are loose unreferenced objects; ``git gc`` removes them.
"""

from __future__ import annotations

from wtls.predict.commits import IDENTITY_ENV
from wtls.predict.mergetree import file_conflicts, merge_many
from wtls.predict.models import (
    ConflictNotice,
    FileConflict,
    LineRange,
    PairPrediction,
    Prediction,
)
from wtls.predict.order import EXHAUSTIVE_ORDER_LIMIT, ORDER_BEAM, simulate_merge_order
from wtls.predict.predictor import ConflictPredictor, predict
from wtls.predict.ranges import (
    OVERLAP_DISTANCE,
    overlaps_between,
    parse_conflict_blocks,
    parse_hunks,
)
from wtls.predict.snapshot import snapshot_worktree
from wtls.predict.text import format_prediction, notices_for

__all__ = [
    "EXHAUSTIVE_ORDER_LIMIT",
    "IDENTITY_ENV",
    "ORDER_BEAM",
    "OVERLAP_DISTANCE",
    "ConflictNotice",
    "ConflictPredictor",
    "FileConflict",
    "LineRange",
    "PairPrediction",
    "Prediction",
    "file_conflicts",
    "format_prediction",
    "merge_many",
    "notices_for",
    "overlaps_between",
    "parse_conflict_blocks",
    "parse_hunks",
    "predict",
    "simulate_merge_order",
    "snapshot_worktree",
]
