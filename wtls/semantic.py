"""Semantic foresight: run the project's tests on predicted merges, before anyone merges.

Text conflicts are half the story: a rename in one worktree and a new call of the old name in
another merge cleanly and break the build. :func:`test_merges` takes every worktree with work
(its working state: committed, uncommitted and untracked, snapshotted as the text prediction
does, :func:`wtls.predict.snapshot_worktree`), merges it onto the base branch's tip with
``git merge-tree`` and runs the test command on that tree in a scratch worktree
(:mod:`wtls.scratch`):

1. each worktree alone; one that fails alone is reported as such (and never blamed on a
   pair); the base tip is tested too then, to say whether the base fails on its own;
2. everything that passed alone, merged together (only text-clean combinations: a worktree
   that conflicts as text with the ones before goes into a next group): one run when all is
   well;
3. a failing group is reduced to a smallest failing set (usually a pair): the smallest failing
   prefix names one member, then the smallest prefix that fails with it names the next, until
   the named members fail together. The rest is tested again without the member found first.

Results are cached by (tree, command) (:class:`wtls.testrun.ResultCache`): a second check with
nothing changed runs nothing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from wtls.git import GitError, run_git, split_z
from wtls.lifecycle.results import _REPO_POINTING_VARS
from wtls.predict.commits import Commit, make_merge_commits
from wtls.predict.mergetree import merge_many
from wtls.predict.snapshot import snapshot_worktree, unusable
from wtls.problems import Problem, anchor_file
from wtls.scratch import acquire
from wtls.testplan import Recipe, TestPlan, command_text
from wtls.testrun import (
    DEFAULT_TIMEOUT,
    Failure,
    ResultCache,
    RunOutcome,
    cache_key,
    parse_failures,
    run_command,
)
from wtls.worktrees import Repository, RepositoryState, WorktreeState

Progress = Callable[[str], None] | None


@dataclass(frozen=True, kw_only=True)
class TestRun:
    """One run of the test command on one tree: the worktrees merged onto base (none: the base
    tip alone)."""

    __test__ = False  # not a pytest test class, whatever its name says

    worktrees: tuple[Path, ...]
    branches: tuple[str | None, ...]
    tree: str
    status: str
    exit_code: int | None
    seconds: float
    cached: bool
    output: str
    failures: tuple[Failure, ...] = ()


@dataclass(frozen=True, kw_only=True)
class SemanticConflict:
    """Worktrees that pass their tests alone but fail together (a smallest such set)."""

    worktrees: tuple[Path, ...]
    branches: tuple[str | None, ...]
    failures: tuple[Failure, ...]
    output: str


@dataclass(frozen=True, kw_only=True)
class TestsReport:
    """The ``tests`` object of ``wtls check --test --json``."""

    __test__ = False  # not a pytest test class, whatever its name says

    command: str
    runs: tuple[TestRun, ...] = ()
    semantic_conflicts: tuple[SemanticConflict, ...] = ()
    #: Worktrees whose merge onto base fails on its own.
    failing_alone: tuple[Path, ...] = ()
    #: Whether the base branch's tip fails on its own (tested only when a worktree fails alone).
    base_fails: bool = False
    #: Why nothing was tested (an untrusted `test` in .wtls.toml...), else None.
    not_run: str | None = None
    #: Worktrees not tested, and why (a text conflict with base, nothing to test).
    skipped: tuple[tuple[str, str], ...] = ()
    #: Notes: setup problems of a scratch worktree, an untrusted setup not run.
    notes: tuple[str, ...] = ()
    #: Whether the person cancelled (the results are partial).
    cancelled: bool = False

    @property
    def has_errors(self) -> bool:
        """Whether a run could not happen (the command did not start, git failed)."""
        return any(r.status == "error" for r in self.runs)

    @property
    def has_problems(self) -> bool:
        """Whether a semantic conflict or a failing worktree was found."""
        return bool(self.semantic_conflicts or self.failing_alone or self.base_fails)


@dataclass(frozen=True, kw_only=True)
class _Candidate:
    path: Path
    branch: str | None
    commit: Commit


@dataclass(kw_only=True)
class Tester:
    """Runs the test command on commits in scratch worktrees, with the result cache."""

    repo: Repository
    commands: tuple[tuple[str, ...], ...]
    recipe: Recipe = field(default_factory=Recipe)
    timeout: float = DEFAULT_TIMEOUT
    on_progress: Progress = None
    notes: list[str] = field(default_factory=list)
    #: Set to stop: the running command's group is killed, no further run starts.
    cancel: threading.Event | None = None

    @property
    def cancelled(self) -> bool:
        """Whether :attr:`cancel` was set."""
        return self.cancel is not None and self.cancel.is_set()

    def __post_init__(self) -> None:
        self.cache = ResultCache(self.repo.common_dir / "wtls" / "test-cache.json")

    @classmethod
    def for_plan(
        cls,
        plan: TestPlan,
        repo: Repository,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        on_progress: Progress = None,
        cancel: threading.Event | None = None,
    ) -> Tester:
        """The tester that runs ``plan`` (:func:`wtls.testplan.plan_tests`)."""
        return cls(
            repo=repo,
            commands=plan.commands,
            recipe=plan.recipe,
            timeout=timeout,
            on_progress=on_progress,
            notes=list(plan.notes),
            cancel=cancel,
        )

    def run(self, commit: Commit, label: str) -> tuple[RunOutcome, bool]:
        """The outcome of the test command on ``commit``'s tree and whether it came cached."""
        key = cache_key(commit.tree, self.commands, self.recipe.setup)
        cached = self.cache.get(key)
        if cached is not None:
            return cached, True
        if self.cancelled:
            return RunOutcome(
                status="error", exit_code=None, seconds=0.0, output="cancelled"
            ), False
        if self.on_progress is not None:
            self.on_progress(f"testing {label}")
        try:
            with acquire(self.repo, commit.oid, self.recipe) as scratch:
                scratch.switch(commit.oid)
                for problem in scratch.problems:
                    if problem not in self.notes:
                        self.notes.append(problem)
                outcome = self._run_in(scratch.path)
        except (GitError, OSError) as exc:
            return (
                RunOutcome(
                    status="error",
                    exit_code=None,
                    seconds=0.0,
                    output=f"could not prepare a scratch worktree: {exc}",
                ),
                False,
            )
        self.cache.put(key, outcome)
        return outcome, False

    def _run_in(self, folder: Path) -> RunOutcome:
        env = {k: v for k, v in os.environ.items() if k not in _REPO_POINTING_VARS}
        env["WTLS_WORKTREE"] = str(folder)
        env["WTLS_SCRATCH"] = "1"
        outputs: list[str] = []
        seconds = 0.0
        outcome: RunOutcome | None = None
        for argv in self.commands:
            outcome = run_command(argv, folder, timeout=self.timeout, env=env, cancel=self.cancel)
            seconds += outcome.seconds
            outputs.append(outcome.output)
            if outcome.status != "pass":
                break
        assert outcome is not None
        output = "\n".join(outputs)[-len(outcome.output) - 1024 :]
        failures = parse_failures(outcome.output, folder) if outcome.status != "pass" else ()
        return RunOutcome(
            status=outcome.status,
            exit_code=outcome.exit_code,
            seconds=round(seconds, 3),
            output=output.replace(str(folder) + os.sep, ""),
            failures=failures,
        )


def _merge_onto(cwd: Path, base: Commit, members: Sequence[_Candidate]) -> Commit | None:
    """``members`` merged one by one onto ``base``; None when a merge conflicts as text."""
    current = base
    for m in members:
        if m.commit.oid == current.oid:
            continue
        outcome = merge_many(cwd, [(current.oid, m.commit.oid)])[0]
        if outcome is None or not outcome.clean:
            return None
        current = make_merge_commits(cwd, [(outcome.tree, current, m.commit)])[0]
    return current


def _candidates(state: RepositoryState, skipped: list[tuple[str, str]]) -> list[_Candidate]:
    out: list[_Candidate] = []
    for wt in state.worktrees:
        if wt.bare or (wt.branch == state.base_branch and wt.branch is not None):
            continue
        reason = unusable(wt)
        if reason is not None:
            skipped.append((str(wt.path), reason))
            continue
        try:
            made = snapshot_worktree(
                wt.path, index=wt.gitdir / "index" if wt.gitdir is not None else None
            )
        except (GitError, OSError) as exc:
            skipped.append((str(wt.path), f"could not snapshot it: {exc}"))
            continue
        if made is None:
            continue
        head, commit = made
        ahead = wt.base.ahead if wt.base is not None else 0
        if ahead == 0 and commit.oid == head:
            continue  # no work of its own: nothing to test
        out.append(_Candidate(path=wt.path, branch=wt.branch, commit=commit))
    out.sort(key=lambda c: str(c.path))
    return out


def test_merges(
    state: RepositoryState,
    tester: Tester,
    *,
    base_tip: Commit,
    jobs: int = 1,
) -> TestsReport:
    """Test every worktree with work alone on base, then together; find semantic conflicts."""
    cwd = state.repository.common_dir
    skipped: list[tuple[str, str]] = []
    candidates = _candidates(state, skipped)
    runs: list[TestRun] = []
    merged_cache: dict[tuple[int, ...], Commit | None] = {}

    def merged(members: Sequence[int]) -> Commit | None:
        key = tuple(members)
        if key not in merged_cache:
            merged_cache[key] = _merge_onto(cwd, base_tip, [candidates[i] for i in members])
        return merged_cache[key]

    def record(members: Sequence[int], commit: Commit, outcome: RunOutcome, cached: bool) -> None:
        if any(r.tree == commit.tree and r.worktrees for r in runs):
            return  # the same tree again (a bisection step): one entry per tree
        runs.append(
            TestRun(
                worktrees=tuple(candidates[i].path for i in members),
                branches=tuple(candidates[i].branch for i in members),
                tree=commit.tree,
                status=outcome.status,
                exit_code=outcome.exit_code,
                seconds=outcome.seconds,
                cached=cached,
                output=outcome.output,
                failures=outcome.failures,
            )
        )

    def label(members: Sequence[int]) -> str:
        names = [candidates[i].branch or candidates[i].path.name for i in members]
        return " + ".join(names) if names else "the base tip"

    def test(members: Sequence[int]) -> RunOutcome | None:
        commit = merged(members)
        if commit is None:
            return None
        outcome, cached = tester.run(commit, label(members))
        record(members, commit, outcome, cached)
        return outcome

    # 1. Each alone (in parallel with jobs > 1).
    alone: list[int] = []
    for i, c in enumerate(candidates):
        if merged([i]) is None:
            skipped.append((str(c.path), "it conflicts with the base branch as text"))
        else:
            alone.append(i)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(
            pool.map(
                lambda i: tester.run(merged([i]) or base_tip, label([i])),
                alone,
            )
        )
    passing: list[int] = []
    failing: list[int] = []
    for i, (outcome, cached) in zip(alone, results, strict=True):
        commit = merged([i])
        assert commit is not None
        record([i], commit, outcome, cached)
        (passing if outcome.status == "pass" else failing).append(i)
    base_fails = False
    if failing:
        outcome, cached = tester.run(base_tip, "the base tip")
        runs.append(
            TestRun(
                worktrees=(),
                branches=(state.base_branch,),
                tree=base_tip.tree,
                status=outcome.status,
                exit_code=outcome.exit_code,
                seconds=outcome.seconds,
                cached=cached,
                output=outcome.output,
                failures=outcome.failures,
            )
        )
        base_fails = outcome.status != "pass"

    # 2. Text-clean groups of what passed alone.
    groups: list[list[int]] = []
    for i in passing:
        for g in groups:
            if merged([*g, i]) is not None:
                g.append(i)
                break
        else:
            groups.append([i])

    # 3. Test each group; reduce failures to smallest failing sets.
    conflicts: list[SemanticConflict] = []

    def fails(members: Sequence[int]) -> bool:
        outcome = test(members)
        return outcome is not None and outcome.status in ("fail", "timeout")

    def smallest(members: list[int]) -> list[int]:
        """A smallest failing subset of ``members`` (which fail together, each passes alone)."""
        found: list[int] = []
        pool = list(members)
        while True:
            rest = [m for m in pool if m not in found]
            if not rest:
                return sorted(found)
            # The shortest prefix of ``rest`` that fails together with ``found``.
            lo, hi = 1, len(rest)
            while lo < hi:
                mid = (lo + hi) // 2
                if fails(sorted([*found, *rest[:mid]])):
                    hi = mid
                else:
                    lo = mid + 1
            found.append(rest[lo - 1])
            pool = [*rest[: lo - 1], *found]
            if len(found) >= 2 and fails(sorted(found)):
                return sorted(found)
            if len(found) >= len(members):
                return sorted(found)

    work = [g for g in groups if len(g) >= 2]
    while work and not tester.cancelled:
        group = work.pop(0)
        together = test(group)
        if together is None or together.status not in ("fail", "timeout"):
            continue
        culprit = smallest(group)
        shown = test(culprit) or together  # cached: the culprit's own failures and output
        conflicts.append(
            SemanticConflict(
                worktrees=tuple(candidates[i].path for i in culprit),
                branches=tuple(candidates[i].branch for i in culprit),
                failures=shown.failures,
                output=shown.output,
            )
        )
        rest = [m for m in group if m != culprit[-1]]
        if len(rest) >= 2:
            work.append(rest)

    return TestsReport(
        command=command_text(tester.commands),
        runs=tuple(runs),
        semantic_conflicts=tuple(conflicts),
        failing_alone=tuple(candidates[i].path for i in failing),
        base_fails=base_fails,
        skipped=tuple(skipped),
        notes=tuple(tester.notes),
        cancelled=tester.cancelled,
    )


def _changed_files(worktree: Path, tip: str) -> set[str]:
    """Files of ``worktree``'s working state that differ from ``tip`` (untracked included)."""
    try:
        tracked = run_git(
            ["diff", "--name-only", "-z", "--no-renames", "--end-of-options", tip, "--"], worktree
        ).stdout
        untracked = run_git(["ls-files", "-z", "--others", "--exclude-standard"], worktree).stdout
    except GitError:
        return set()
    return set(split_z(tracked)) | set(split_z(untracked))


def _first_changed_line(worktree: Path, tip: str, rel: str) -> int:
    """The first line (1-based) of ``rel`` that differs from ``tip``; 1 when unknown."""
    try:
        patch = run_git(
            ["diff", "-U0", "--no-color", "--no-ext-diff", "--end-of-options", tip, "--", rel],
            worktree,
            env={"GIT_LITERAL_PATHSPECS": "1"},
        ).text
    except GitError:
        return 1
    for line in patch.splitlines():
        if line.startswith("@@"):
            plus = line.split("+", 1)[1].split(" ", 1)[0]
            return max(1, int(plus.split(",")[0] or 1))
    return 1


def test_problems(
    report: TestsReport, state: RepositoryState, tip: str, worktrees: Sequence[Path]
) -> list[Problem]:
    """Errors for the editors of ``worktrees``: each semantic conflict and failing worktree.

    At the failing test when it lies in a file the worktree changed; else at the first changed
    line of the file the failure names, when the worktree changed it; else on the worktree
    itself (:func:`wtls.problems.anchor_file`). The message names the other worktrees and the
    command.
    """
    by_path = {wt.path: wt for wt in state.worktrees}
    out: list[Problem] = []

    def place(wt: WorktreeState, failures: Sequence[Failure], message: str, code: str) -> None:
        changed = _changed_files(wt.path, tip)
        placed = False
        for f in failures or (Failure(name=""),):
            text = f"{message}: {f.name}" if f.name else message
            if f.path and f.path in changed and (wt.path / f.path).is_file():
                line = f.line or _first_changed_line(wt.path, tip, f.path)
                out.append(
                    Problem(
                        path=wt.path / f.path,
                        severity="error",
                        code=code,
                        message=text,
                        line=line - 1,
                        data={"command": report.command},
                    )
                )
                placed = True
        if not placed:
            anchor = anchor_file(wt)
            if anchor is not None:
                names = ", ".join(f.name for f in failures[:3])
                out.append(
                    Problem(
                        path=anchor,
                        severity="error",
                        code=code,
                        message=f"{message}: {names}" if names else message,
                        data={"command": report.command},
                    )
                )

    for c in report.semantic_conflicts:
        for path in c.worktrees:
            wt = by_path.get(path)
            if wt is None or path not in worktrees:
                continue
            others = ", ".join(
                f"{b or 'detached'} ({p})"
                for p, b in zip(c.worktrees, c.branches, strict=True)
                if p != path
            )
            place(
                wt,
                c.failures,
                f"semantic conflict with {others}: `{report.command}` passes on each alone and "
                "fails on their merge",
                "semantic-conflict",
            )
    for path in report.failing_alone:
        wt = by_path.get(path)
        if wt is None or path not in worktrees:
            continue
        run = next((r for r in report.runs if r.worktrees == (path,)), None)
        base = state.base_branch or "base"
        place(
            wt,
            run.failures if run is not None else (),
            f"`{report.command}` fails on this worktree merged onto {base}",
            "tests-fail",
        )
    return out
