"""``wtls prune --merged``: remove the clean worktrees whose branch is merged, and the branches.

Every removal goes through :func:`wtls.lifecycle.removal._remove_locked`, the one safe removal
path (its refusals, backups, rename aside and careful deletion); this module only chooses the
candidates and says, for every other worktree, why it is kept.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from wtls.errors import Refused
from wtls.git import GitError, run_git
from wtls.lifecycle.common import _files_text, _repo_lock, _start_dir
from wtls.lifecycle.disk import disk_usage, size_text
from wtls.lifecycle.removal import _remove_locked, _scan_for, recover_interrupted_removals
from wtls.lifecycle.results import Callback, LifecycleSettings
from wtls.lifecycle.sharing import changes_besides_links
from wtls.processes import blockers, describe
from wtls.safety import printable
from wtls.unsaved import UnsavedFinder
from wtls.worktrees import (
    RepositoryState,
    WorktreeState,
    branch_creation_point,
    discover,
    repository_state,
)

#: Worktrees named in one message.
_LISTED = 5
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(?:(\d+)([smhdw]))+")


def parse_duration(text: str) -> float:
    """Seconds in ``90m``, ``36h``, ``2w``, ``1d12h`` (s, m, h, d, w); ValueError otherwise."""
    cleaned = text.strip().lower()
    if not cleaned or not _DURATION.fullmatch(cleaned):
        raise ValueError(
            f"{text!r} is not a duration: use a number and a unit (s, m, h, d, w), e.g. 2w or 36h"
        )
    return float(sum(int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)([smhdw])", cleaned)))


@dataclass(frozen=True, kw_only=True)
class PrunedWorktree:
    """A worktree removed (or, in a dry run, that would be), its branch, and its size."""

    path: Path
    branch: str | None
    bytes: int


@dataclass(frozen=True, kw_only=True)
class KeptWorktree:
    """A worktree ``prune --merged`` keeps, and why."""

    path: Path
    reason: str


@dataclass(frozen=True, kw_only=True)
class PruneMergedResult:
    """``wtls prune --merged``: what was removed (would be, in a dry run) and what was kept."""

    removed: tuple[PrunedWorktree, ...] = ()
    kept: tuple[KeptWorktree, ...] = ()
    dry_run: bool = False
    #: Steps after a removal that failed (the removal happened), e.g. a branch left behind.
    problems: tuple[str, ...] = ()


def _ago(seconds: float) -> str:
    for unit, size in (("w", _UNITS["w"]), ("d", _UNITS["d"]), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _why_kept(state: RepositoryState, wt: WorktreeState, *, explain: bool = True) -> str | None:
    """Why ``wt`` is not a candidate (by what wtls already knows), or None.

    ``explain=False`` runs no git (the payload asks often): an unmerged branch is then never
    told apart as never committed, which changes only the reason's words.
    """
    base = state.base_branch
    if wt.is_main or wt.bare:
        return "the main worktree"
    if wt.prunable or not wt.path.is_dir():
        return "its folder is gone (`wtls prune` forgets it)"
    if wt.broken:
        return f"broken: {wt.broken}"
    if wt.branch is None:
        return "detached HEAD: no branch that could be merged"
    if wt.branch == base:
        return f"it has the base branch {base} checked out"
    if wt.base is None or wt.head is None:
        return f"its branch cannot be compared with the base branch {base}"
    if not wt.base.merged:
        if explain and wt.base.ahead == 0:
            created = branch_creation_point(state.repository.common_dir, wt.branch)
            if created == wt.head:
                return "never committed: its branch has no commit of its own yet"
        return f"not merged into {base} ({wt.base.ahead} commit(s) of its own)"
    if wt.locked:
        return "locked" + (f": {wt.lock_reason}" if wt.lock_reason else "")
    if wt.operation is not None:
        return f"a {wt.operation} is in progress"
    work = changes_besides_links(wt)
    if work:
        return f"uncommitted changes: {_files_text(list(work))}"
    return None


def prune_candidates(state: RepositoryState) -> tuple[WorktreeState, ...]:
    """The worktrees ``prune --merged`` would remove by what ``state`` knows (clean, merged,
    unlocked...), without running git; processes found by the last scan keep one too. The
    removal's deeper checks can still keep one."""
    return tuple(
        w for w in state.worktrees if _why_kept(state, w, explain=False) is None and not w.processes
    )


def reclaimable_bytes(state: RepositoryState) -> int | None:
    """Bytes of the measured worktrees ``prune --merged`` would take (None: none measured).

    By what ``state`` knows (:func:`prune_candidates`), so this is an upper bound.
    """
    if all(w.disk_bytes is None for w in state.worktrees):
        return None
    return sum(w.disk_bytes or 0 for w in prune_candidates(state))


def prune_notice(state: RepositoryState, threshold: int) -> str | None:
    """The question the editor asks when merged worktrees hold more than ``threshold`` bytes
    (0: never), or None: ``2 merged worktrees of app hold 1.2 GiB (agent/a, agent/b). Prune
    them?``."""
    reclaimable = reclaimable_bytes(state)
    if threshold <= 0 or reclaimable is None or reclaimable <= threshold:
        return None
    holding = [w for w in prune_candidates(state) if w.disk_bytes]
    n = len(holding)
    many = n != 1
    main = state.main
    name = main.path.name if main is not None else state.repository.key
    names = ", ".join(w.branch or w.path.name for w in holding[:_LISTED]) + (
        " …" if n > _LISTED else ""
    )
    return printable(
        f"{n} merged worktree{'s' * many} of {name} "
        f"hold{'' if many else 's'} {size_text(reclaimable)} ({names}). Prune "
        f"{'them' if many else 'it'}?",
        keep_newlines=False,
    )


def prune_summary(result: PruneMergedResult) -> str:
    """What a prune did, in one paragraph for a message: removed (and bytes) and kept (why)."""
    parts: list[str] = []
    if result.removed:
        total = sum(item.bytes for item in result.removed)
        names = ", ".join(item.branch or item.path.name for item in result.removed[:_LISTED]) + (
            " …" if len(result.removed) > _LISTED else ""
        )
        verb = "would remove" if result.dry_run else "removed"
        n = len(result.removed)
        parts.append(f"{verb} {n} merged worktree{'s' * (n != 1)} ({size_text(total)}): {names}")
    else:
        parts.append("no merged worktree was removed")
    kept = [k for k in result.kept if k.reason != "the main worktree"]
    if kept:
        listed = "; ".join(
            f"{k.path.name} ({printable(k.reason, keep_newlines=False)})" for k in kept[:_LISTED]
        ) + (" …" if len(kept) > _LISTED else "")
        parts.append(f"kept {len(kept)}: {listed}")
    parts += [printable(p, keep_newlines=False) for p in result.problems]
    return "; ".join(parts)


def _age(run_dir: Path, head: str) -> float:
    stamp = run_git(["show", "-s", "--format=%ct", head], run_dir).text
    return max(0.0, time.time() - int(stamp))


def prune_merged(
    start: Path | str,
    *,
    older_than: float | None = None,
    dry_run: bool = False,
    trusted: bool = False,
    on_output: Callback = None,
    settings: LifecycleSettings | None = None,
    unsaved: UnsavedFinder | None = None,
) -> PruneMergedResult:
    """Remove every clean worktree whose branch is merged into base, and delete that branch.

    Kept, each with its reason: the main worktree, detached or unmerged ones, never-committed
    ones (a branch still at its starting point), locked, dirty, busy (processes use them: see
    :mod:`wtls.processes`), those whose last commit is newer than ``older_than`` seconds, and
    any the safe removal refuses (an editor's unsaved buffers in it among them: ``unsaved``,
    :mod:`wtls.unsaved`). ``dry_run`` runs every check and removes nothing.
    """
    settings = settings or LifecycleSettings()
    start_dir = _start_dir(start)
    repository = discover(start_dir)
    with _repo_lock(repository.common_dir):
        if not dry_run:
            recover_interrupted_removals(repository.common_dir)
        state = repository_state(repository, settings.base_branch)
        main = state.main
        run_dir = main.path if main is not None and main.path.is_dir() else repository.common_dir
        removed: list[PrunedWorktree] = []
        kept: list[KeptWorktree] = []
        problems: list[str] = []
        candidates: list[WorktreeState] = []
        for wt in state.worktrees:
            reason = _why_kept(state, wt)
            if reason is None and older_than is not None and wt.head is not None:
                age = _age(run_dir, wt.head)
                if age < older_than:
                    reason = f"its last commit is {_ago(age)} old, newer than --older-than"
            if reason is not None:
                kept.append(KeptWorktree(path=wt.path, reason=reason))
            else:
                candidates.append(wt)
        if candidates:
            scan = _scan_for(state, candidates[0])
            for wt in list(candidates):
                busy = blockers(scan, wt.path)
                if busy:
                    listed = "; ".join(describe(u) for u in busy[:5])
                    kept.append(KeptWorktree(path=wt.path, reason=f"busy: {listed}"))
                    candidates.remove(wt)
        for wt in candidates:
            size = disk_usage(wt.path, max_age=0.0)
            try:
                outcome = _remove_locked(
                    repository,
                    settings,
                    start_dir,
                    str(wt.path),
                    force=False,
                    delete_branch=False,
                    keep_branch=False,
                    dry_run=dry_run,
                    trusted=trusted,
                    on_output=on_output,
                    unsaved=unsaved,
                )
            except Refused as exc:
                kept.append(KeptWorktree(path=wt.path, reason=str(exc)))
                continue
            except GitError as exc:
                kept.append(KeptWorktree(path=wt.path, reason=f"error: {exc}"))
                continue
            if dry_run or outcome.removed:
                removed.append(PrunedWorktree(path=wt.path, branch=wt.branch, bytes=size))
                problems += [f"{wt.path}: {p}" for p in outcome.problems]
            else:
                kept.append(
                    KeptWorktree(
                        path=wt.path, reason="; ".join(outcome.problems) or outcome.message
                    )
                )
        return PruneMergedResult(
            removed=tuple(removed),
            kept=tuple(sorted(kept, key=lambda k: str(k.path))),
            dry_run=dry_run,
            problems=tuple(problems),
        )
