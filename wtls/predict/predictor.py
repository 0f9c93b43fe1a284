"""Conflict foresight: predict what merging the worktrees' *current working states* would do.

Pure core (no LSP). Every worktree is snapshotted (:mod:`wtls.predict.snapshot`); the
snapshots are merged pairwise, and each worktree against the base branch's tip, with ``git
merge-tree`` in one process for the whole matrix (:mod:`wtls.predict.mergetree`): the
prediction is what ``git merge`` would do. Overlaps (clean merges of nearby changes) and the
suggested merge order (:mod:`wtls.predict.order`) come with it.

Results are cached: a worktree is re-snapshotted only when its fingerprint (HEAD, index file,
the changed files' stat data, overlays) changes, and a pair is re-merged only when one of its two
commits changed.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wtls.git import GitError, require_git, run_git, run_parallel
from wtls.links import paths_inside
from wtls.predict.commits import (
    TEMP_PREFIX,
    Commit,
    Side,
    commit_info,
    commit_infos,
    sweep_stale_temp_dirs,
)
from wtls.predict.mergetree import MergeOutcome, file_conflicts, merge_many
from wtls.predict.models import FileConflict, PairPrediction, Prediction
from wtls.predict.order import simulate_merge_order
from wtls.predict.ranges import Hunk, overlaps_between, parse_hunks
from wtls.predict.snapshot import (
    NO_COMMITS,
    fingerprint,
    overlay_digest,
    snapshot_worktree,
    unusable,
)
from wtls.worktrees import (
    MergeStep,
    Repository,
    RepositoryState,
    WorktreeState,
    discover,
    repository_state,
)

log = logging.getLogger(__name__)

#: How a skipped worktree's reason starts when git could not snapshot it.
SNAPSHOT_FAILED = "could not snapshot it"


def unreadable(prediction: Prediction) -> bool:
    """Whether git could not snapshot some worktree of ``prediction`` (it failed, or found no
    HEAD commit): what a worktree git cannot read at all gives when no ``git status`` marked
    it broken first (``repository_state(statuses=False)``)."""
    return any(
        reason == NO_COMMITS or reason.startswith(SNAPSHOT_FAILED)
        for _, reason in prediction.skipped
    )


@dataclass(frozen=True, kw_only=True)
class _Snapshot:
    worktree: Path
    head: str
    commit: Commit
    fingerprint: tuple[Any, ...] | None
    #: For a snapshot made on written files: the fingerprint without them, which is what a
    #: later state shows when they turn out unchanged (written back as they were, or a file
    #: git ignores), so no second snapshot is made.
    unwritten: tuple[Any, ...] | None = None
    overlays: str
    #: The temporary index as ``git add -A`` left it (the worktree's files without buffers),
    #: for a later snapshot whose files are unchanged and whose buffers differ.
    added: Path | None = None


@dataclass(frozen=True, kw_only=True)
class _Plan:
    """A worktree's snapshot in this update: the cached one if still right, else what a new one
    records (the fingerprints, the overlays' digest) and starts from."""

    cached: _Snapshot | None
    stamp: tuple[Any, ...] | None
    digest: str
    unwritten: tuple[Any, ...] | None = None
    #: The last snapshot's index after ``add -A``, still right (only the buffers differ).
    added: Path | None = None
    #: Where this snapshot keeps its own index after ``add -A`` (when it makes one).
    keep: Path | None = None


@dataclass(frozen=True, kw_only=True)
class _PairResult:
    outcome: MergeOutcome
    conflicts: tuple[FileConflict, ...]
    overlaps: tuple[FileConflict, ...]


class ConflictPredictor:
    """Keeps snapshots and pair results of one repository between updates. Thread-safe.

    Blocking (git processes): the server calls :meth:`update` from a worker thread.
    """

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        sweep_stale_temp_dirs()
        self._lock = threading.Lock()
        self._snapshots: dict[Path, _Snapshot] = {}
        self._pairs: dict[tuple[str, str, str, str], _PairResult | None] = {}
        self._diffs: dict[tuple[str, str], dict[str, list[Hunk]]] = {}
        self._bases: dict[tuple[str, str], str | None] = {}
        self._order_cache: tuple[Any, tuple[MergeStep, ...] | None] | None = None
        #: This predictor's own files (the snapshots' indexes after `add -A`), removed with it.
        self._files = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
        self._file_count = 0
        weakref.finalize(self, shutil.rmtree, self._files, True)

    # -- snapshots
    def _plan(
        self,
        wt: WorktreeState,
        overlays: Mapping[str, bytes],
        check: bool,
        written: frozenset[str] | None = None,
    ) -> _Plan:
        """The cached snapshot of ``wt`` if nothing it depends on changed, else what a new one
        records and starts from. No git.

        ``written``: files (relative) written since ``wt`` was read; the worktree is
        snapshotted again whatever its (older) status says.
        """
        old = self._snapshots.get(wt.path)
        digest = overlay_digest(overlays)
        unchanged = old is not None and old.head == wt.head and old.overlays == digest
        if unchanged and not check and not written:
            return _Plan(cached=old, stamp=None, digest=digest)  # its files did not change
        stamp = fingerprint(wt, written or ())
        files_same = (
            not written
            and old is not None
            and stamp is not None
            and stamp in (old.fingerprint, old.unwritten)
        )
        if files_same and old is not None and old.overlays == digest:
            return _Plan(cached=old, stamp=stamp, digest=digest)
        # The files are as the last snapshot saw them, only the buffers differ: its index after
        # `add -A` is still right (an unsaved edit costs no walk of the worktree).
        added = old.added if files_same and old is not None else None
        return _Plan(
            cached=None,
            stamp=stamp,
            digest=digest,
            unwritten=fingerprint(wt, without=written) if written else None,
            added=added,
            keep=None if added is not None else self._index_file(),
        )

    def _index_file(self) -> Path:
        """A new file name for a snapshot's index (never reused: a copy that failed leaves no
        older index under the name a snapshot records)."""
        self._file_count += 1
        with contextlib.suppress(OSError):  # swept by another process after an idle hour
            self._files.mkdir(mode=0o700, exist_ok=True)
        return self._files / f"index-{self._file_count}"

    def _snapshot(
        self, wt: WorktreeState, overlays: Mapping[str, bytes], plan: _Plan, head: Commit | None
    ) -> _Snapshot | None:
        """A new snapshot of ``wt`` (None: no commits yet), cached. ``head``: its HEAD commit
        when known."""
        old = self._snapshots.get(wt.path)
        try:
            made = snapshot_worktree(
                wt.path,
                overlays,
                index=wt.gitdir / "index" if wt.gitdir is not None else None,
                head=head,
                added=plan.added,
                keep=plan.keep,
            )
        except BaseException:
            if plan.keep is not None:
                _remove(plan.keep)
            raise
        if old is not None and old.added not in (None, plan.added):
            _remove(old.added)
        if made is None:
            if plan.keep is not None:
                _remove(plan.keep)
            return None
        head_oid, commit = made
        stamp, unwritten = plan.stamp, plan.unwritten
        if head_oid != wt.head:
            # HEAD moved since ``wt`` was read: its fingerprint says nothing.
            stamp = unwritten = None
        snap = _Snapshot(
            worktree=wt.path,
            head=head_oid,
            commit=commit,
            fingerprint=stamp,
            unwritten=unwritten,
            overlays=plan.digest,
            added=plan.added or plan.keep,
        )
        self._snapshots[wt.path] = snap
        return snap

    # -- the main entry point
    def update(
        self,
        state: RepositoryState,
        *,
        changed: Iterable[Path] | None = None,
        overlays: Mapping[Path, bytes] | None = None,
        involving: Path | None = None,
        written: Mapping[Path, Iterable[Path]] | None = None,
    ) -> Prediction:
        """Predict conflicts for ``state``.

        ``changed``: worktrees whose files may have changed since the last update (None:
        any). ``overlays``: unsaved editor buffers, absolute file path → bytes.
        ``involving``: only the pairs with this worktree as a side, and no merge order (what
        one agent's edit needs to know, in a fraction of the time). ``written``: per worktree
        root, files (absolute) written since ``state`` was read — a prediction made as soon as
        the watcher sees a write, before the worktree's status is read again.
        """
        require_git()
        with self._lock:
            return self._update(state, changed, overlays or {}, involving, written or {})

    def _update(
        self,
        state: RepositoryState,
        changed: Iterable[Path] | None,
        overlays: Mapping[Path, bytes],
        involving: Path | None = None,
        written: Mapping[Path, Iterable[Path]] | None = None,
    ) -> Prediction:
        cwd = self.repo.common_dir
        changed_set = None if changed is None else {Path(p) for p in changed}
        written_rels = {
            root: frozenset(paths_inside(root, files)) for root, files in (written or {}).items()
        }
        per_wt: dict[Path, dict[str, bytes]] = {}
        for file, data in overlays.items():
            owner = state.find(file)
            if owner is not None:
                rel = Path(file).resolve().relative_to(owner.path).as_posix()
                per_wt.setdefault(owner.path, {})[rel] = data
        skipped: list[tuple[str, str]] = []
        sides: list[Side] = []

        reasons = [unusable(wt) for wt in state.worktrees]
        usable = [wt for wt, reason in zip(state.worktrees, reasons, strict=True) if reason is None]
        plans: list[_Plan | str] = []
        for wt in usable:
            check = changed_set is None or wt.path in changed_set
            try:
                plans.append(
                    self._plan(wt, per_wt.get(wt.path, {}), check, written_rels.get(wt.path))
                )
            except OSError as exc:
                plans.append(f"{SNAPSHOT_FAILED}: {exc}")
        fresh = [
            wt.head
            for wt, plan in zip(usable, plans, strict=True)
            if isinstance(plan, _Plan) and plan.cached is None and wt.head
        ]
        heads: dict[str, Commit] = {}
        if len(fresh) > 1:
            # Several new snapshots: their HEAD commits and the base tip in one git call.
            heads = commit_infos(cwd, fresh + ([state.base_head] if state.base_head else []))

        def snapshot(item: tuple[WorktreeState, _Plan | str]) -> _Snapshot | str | None:
            """The worktree's snapshot (None: no commits yet), or why it failed."""
            wt, plan = item
            if isinstance(plan, str) or plan.cached is not None:
                return plan if isinstance(plan, str) else plan.cached
            head = heads.get(wt.head) if wt.head else None
            try:
                return self._snapshot(wt, per_wt.get(wt.path, {}), plan, head)
            except (GitError, OSError) as exc:
                return f"{SNAPSHOT_FAILED}: {exc}"

        # Each snapshot is its own worktree's git work: in parallel, then read in order.
        made = iter(run_parallel(snapshot, list(zip(usable, plans, strict=True))))
        for wt, reason in zip(state.worktrees, reasons, strict=True):
            if reason is not None:
                if not wt.bare:
                    skipped.append((str(wt.path), reason))
                self._forget(wt.path)
                continue
            snap = next(made)
            if isinstance(snap, str):
                skipped.append((str(wt.path), snap))
                continue
            if snap is None:
                skipped.append((str(wt.path), NO_COMMITS))
                continue
            sides.append(Side(path=wt.path, branch=wt.branch, commit=snap.commit))
        live = {s.path for s in sides}
        for gone in set(self._snapshots) - live:
            self._forget(gone)

        base_side = self._base_side(state, sides, heads)
        jobs: list[tuple[Side, Side, bool]] = []
        for x, y in itertools.combinations(sides, 2):
            jobs.append((x, y, False))
        if base_side is not None:
            base_sides = [s for s in sides if s.branch == state.base_branch]
            for s in sides:
                if s.branch == state.base_branch:
                    continue
                # The clean base worktree's snapshot *is* the tip: that pair already says it.
                if any(bs.commit.oid == base_side.commit.oid for bs in base_sides):
                    continue
                jobs.append((base_side, s, True))
        if involving is not None:
            jobs = [
                (x, y, base)
                for x, y, base in jobs
                if y.path == involving or (x.path == involving and not base)
            ]
        results = self._merge_pairs(cwd, jobs)
        pairs: list[PairPrediction] = []
        for (x, y, against_base), res in zip(jobs, results, strict=True):
            if res is None:
                skipped.append(
                    (f"{x.path} + {y.path}", "git cannot merge them (unrelated histories?)")
                )
                continue
            if not res.conflicts and not res.overlaps:
                continue
            pairs.append(
                PairPrediction(
                    a=x.path,
                    b=y.path,
                    branch_a=x.branch,
                    branch_b=y.branch,
                    conflicts=res.conflicts,
                    overlaps=res.overlaps,
                    against_base=against_base,
                )
            )
        merge_order = (
            None if involving is not None else self._merge_order(cwd, state, sides, base_side)
        )
        return Prediction(
            pairs=tuple(pairs),
            merge_order=merge_order,
            base_branch=state.base_branch,
            skipped=tuple(skipped),
        )

    def _base_side(
        self, state: RepositoryState, sides: Sequence[Side], known: Mapping[str, Commit]
    ) -> Side | None:
        base = state.base_branch
        if base is None:
            return None
        tip = known.get(state.base_head) if state.base_head else None
        if tip is None:
            tip = commit_info(self.repo.common_dir, f"refs/heads/{base}")
        if tip is None:
            return None
        holder = state.find_by_branch(base)
        main = state.main
        path = main.path if main is not None else holder.path if holder else self.repo.common_dir
        return Side(path=path, branch=base, commit=tip)

    # -- pairwise merges
    def _merge_pairs(
        self, cwd: Path, jobs: Sequence[tuple[Side, Side, bool]]
    ) -> list[_PairResult | None]:
        keys = [(x.commit.oid, y.commit.oid, str(x.path), str(y.path)) for x, y, _ in jobs]
        todo: dict[tuple[str, str, str, str], tuple[Side, Side, bool]] = {}
        for key, job in zip(keys, jobs, strict=True):
            if key not in self._pairs and key[0] != key[1]:
                todo[key] = job
        outcomes = merge_many(cwd, [(k[0], k[1]) for k in todo])
        for (key, job), outcome in zip(todo.items(), outcomes, strict=True):
            self._pairs[key] = self._pair_result(cwd, key, job, outcome)
        # Keep only what this update used: the cache never grows past the current matrix.
        wanted = set(keys)
        for stale in [k for k in self._pairs if k not in wanted]:
            del self._pairs[stale]
        empty = _PairResult(
            outcome=MergeOutcome(clean=True, tree="", entries=(), records=()),
            conflicts=(),
            overlaps=(),
        )
        return [empty if k[0] == k[1] else self._pairs[k] for k in keys]

    def _pair_result(
        self,
        cwd: Path,
        key: tuple[str, str, str, str],
        job: tuple[Side, Side, bool],
        outcome: MergeOutcome | None,
    ) -> _PairResult | None:
        if outcome is None:
            return None
        x, y, _ = job
        conflicts = file_conflicts(
            cwd, outcome, key[0], key[1], key[2], key[3], labels=(x.label, y.label)
        )
        overlaps: tuple[FileConflict, ...] = ()
        try:
            overlaps = self._overlaps(cwd, x, y, [c.path for c in conflicts], conflicts)
        except GitError as exc:
            log.debug("overlap detection failed for %s/%s: %s", x.path, y.path, exc)
        return _PairResult(outcome=outcome, conflicts=conflicts, overlaps=overlaps)

    def _overlaps(
        self,
        cwd: Path,
        x: Side,
        y: Side,
        conflicted: Sequence[str],
        conflicts: Sequence[FileConflict],
    ) -> tuple[FileConflict, ...]:
        # The snapshots' merge base is their HEADs': an edit (or a keystroke in a buffer) makes
        # new snapshots, not new merge bases.
        base = self._merge_base(cwd, self._history_of(x), self._history_of(y))
        if base is None:
            return ()
        if base in (x.commit.oid, y.commit.oid):
            return ()  # one side has nothing of its own: nothing can overlap
        exclude = set(conflicted)
        for c in conflicts:
            exclude.update(c.paths.values())
        return overlaps_between(
            self._diff(cwd, base, x.commit.oid),
            self._diff(cwd, base, y.commit.oid),
            str(x.path),
            str(y.path),
            exclude,
        )

    def _forget(self, worktree: Path) -> None:
        """Drop a worktree's snapshot and its kept index."""
        dropped = self._snapshots.pop(worktree, None)
        if dropped is not None and dropped.added is not None:
            _remove(dropped.added)

    def _history_of(self, side: Side) -> str:
        """The commit ``side``'s history starts from: its HEAD for a snapshot commit (whose only
        parent is its HEAD, and which nothing descends from)."""
        snap = self._snapshots.get(side.path)
        if snap is not None and snap.commit.oid == side.commit.oid:
            return snap.head
        return side.commit.oid

    def _merge_base(self, cwd: Path, a: str, b: str) -> str | None:
        """The merge base git names first for ``a`` and ``b`` (None: unrelated). Cached: the
        matrix asks for the same two commits once per pair of worktrees that stand at them."""
        key = (a, b)
        if key not in self._bases:
            bases = run_git(["merge-base", "--end-of-options", a, b], cwd, ok_codes=(0, 1)).text
            if len(self._bases) > 256:
                self._bases.clear()
            self._bases[key] = bases.split()[0] if bases.split() else None
        return self._bases[key]

    def _diff(self, cwd: Path, base: str, commit: str) -> dict[str, list[Hunk]]:
        key = (base, commit)
        cached = self._diffs.get(key)
        if cached is None:
            patch = run_git(
                [
                    "diff",
                    "-U0",
                    "--no-color",
                    "--no-ext-diff",
                    "--no-textconv",
                    "--no-renames",
                    "--end-of-options",
                    base,
                    commit,
                    "--",
                ],
                cwd,
            ).stdout
            cached = parse_hunks(patch)
            if len(self._diffs) > 256:
                self._diffs.clear()
            self._diffs[key] = cached
        return cached

    # -- merge order
    def _merge_order(
        self,
        cwd: Path,
        state: RepositoryState,
        sides: Sequence[Side],
        base_side: Side | None,
    ) -> tuple[MergeStep, ...] | None:
        if base_side is None:
            return None
        by_path = {wt.path: wt for wt in state.worktrees}
        candidates: list[Side] = []
        for s in sides:
            if s.branch == state.base_branch:
                continue
            wt = by_path[s.path]
            ahead = wt.base.ahead if wt.base is not None else 0
            dirty = s.commit.oid != wt.head
            if ahead > 0 or dirty:
                candidates.append(s)
        if not candidates:
            return None
        # Ties are broken by this order: by path, not by `git worktree list`'s (readdir) order.
        candidates.sort(key=lambda c: str(c.path))
        key = (base_side.commit.oid, tuple((c.path, c.branch, c.commit.oid) for c in candidates))
        if self._order_cache is not None and self._order_cache[0] == key:
            return self._order_cache[1]
        result = simulate_merge_order(cwd, base_side, candidates)
        self._order_cache = (key, result)
        return result


def predict(path: Path | str, base_branch: str | None = None) -> Prediction:
    """One-shot prediction for the repository containing ``path`` (what ``wtls check`` runs)."""
    require_git()
    repo = discover(path)
    state = repository_state(repo, base_branch)
    return ConflictPredictor(repo).update(state)


def _remove(file: Path) -> None:
    with contextlib.suppress(OSError):
        file.unlink()
