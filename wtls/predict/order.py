"""The suggested merge order: merge the candidates into the base in the order that conflicts least.

Few candidates: every order, as a search over subsets; many: greedily. Each step is a real
``merge-tree`` of the merges so far with the next candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wtls.predict.commits import Commit, Side, make_merge_commits
from wtls.predict.mergetree import MergeOutcome, file_conflicts, merge_many
from wtls.worktrees import MergeStep, StepConflict

#: Merge-order search: all orders (as a search over subsets) up to this many candidates.
EXHAUSTIVE_ORDER_LIMIT = 6


#: Merge-order search: partial orders kept per step (beam), bounding the number of merges.
ORDER_BEAM = 60


@dataclass(frozen=True, kw_only=True)
class _OrderNode:
    members: frozenset[int]
    commit: Commit
    cost: int
    steps: tuple[tuple[int, MergeOutcome, str], ...]  # (candidate, outcome, ours commit)


def simulate_merge_order(
    cwd: Path, base: Side, candidates: Sequence[Side]
) -> tuple[MergeStep, ...] | None:
    """Merge the candidates into ``base`` in every order (few) or greedily (many); return the
    steps of the order with the fewest conflicting files, each described in words."""
    exhaustive = len(candidates) <= EXHAUSTIVE_ORDER_LIMIT
    beam = ORDER_BEAM if exhaustive else 1
    frontier = [_OrderNode(members=frozenset(), commit=base.commit, cost=0, steps=())]
    #: Candidates git can merge into base at all (not an unrelated history).
    usable = set(range(len(candidates)))
    level = 0
    while level < len(usable):
        expansions = [(node, idx) for node in frontier for idx in sorted(usable - node.members)]
        outcomes = merge_many(
            cwd, [(node.commit.oid, candidates[idx].commit.oid) for node, idx in expansions]
        )
        results: list[tuple[_OrderNode, int, MergeOutcome]] = [
            (node, idx, out)
            for (node, idx), out in zip(expansions, outcomes, strict=True)
            if out is not None
        ]
        if level == 0:
            usable = {idx for _, idx, _ in results}
        if not results:
            return None
        last = level == len(usable) - 1
        commits = (
            [None] * len(results)
            if last
            else make_merge_commits(
                cwd,
                [(out.tree, node.commit, candidates[idx].commit) for node, idx, out in results],
            )
        )
        best: dict[tuple[frozenset[int], str], _OrderNode] = {}
        for (node, idx, out), made in zip(results, commits, strict=True):
            cost = len(out.conflicted_paths()) if not out.clean else 0
            child = _OrderNode(
                members=node.members | {idx},
                commit=made or node.commit,
                cost=node.cost + cost,
                steps=(*node.steps, (idx, out, node.commit.oid)),
            )
            # Same members and same merged tree: the same future, keep the cheaper past.
            k = (child.members, out.tree)
            if k not in best or _order_key(child) < _order_key(best[k]):
                best[k] = child
        frontier = sorted(best.values(), key=_order_key)[:beam]
        level += 1
    chosen = frontier[0]
    steps: list[MergeStep] = []
    for n, (idx, out, ours) in enumerate(chosen.steps):
        cand = candidates[idx]
        name = cand.label
        conflicts = file_conflicts(
            cwd,
            out,
            ours,
            cand.commit.oid,
            "",
            str(cand.path),
            sides=(False, True),
            labels=("the merges before", name),
        )
        spots = ", ".join(
            f"{c.path_in(cand.path)}:{c.lines[str(cand.path)][0][0]}"
            if c.lines.get(str(cand.path))
            else c.path_in(cand.path)
            for c in conflicts
        )
        if n == 0:
            description = f"merge {name} first" + (f" (it conflicts in {spots})" if spots else "")
        else:
            description = f"then {name} " + (f"conflicts in {spots}" if spots else "merges cleanly")
        steps.append(
            MergeStep(
                path=cand.path,
                branch=cand.branch,
                files=tuple(c.path_in(cand.path) for c in conflicts),
                conflicts=tuple(
                    StepConflict(
                        path=c.path_in(cand.path),
                        kind=c.kind,
                        lines=tuple(c.lines.get(str(cand.path), ())),
                    )
                    for c in conflicts
                ),
                description=description,
            )
        )
    return tuple(steps)


def _order_key(node: _OrderNode) -> tuple[int, int, tuple[int, ...]]:
    """Fewest conflicting files, then fewest conflicting steps, then the worktrees' order."""
    conflicted_steps = sum(1 for _, out, _ in node.steps if not out.clean)
    return (node.cost, conflicted_steps, tuple(idx for idx, _, _ in node.steps))
