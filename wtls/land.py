"""``wtls land``: a local merge queue that never puts a failing merge on the base branch.

For each worktree to land, in the predicted best order (:func:`wtls.predict.simulate_merge_order`):
its branch is merged with the base branch's tip (``git merge-tree``; a fast-forward when the
base has nothing new), the result is checked out in a scratch worktree wtls owns
(:mod:`wtls.scratch`) and the test command runs there (:class:`wtls.semantic.Tester`, cached by
tree). Only when it passes does the base branch move: ``git update-ref`` with the old tip as the
expected value (a concurrent change makes it fail, never lost), and a base worktree is brought
along with ``git read-tree -u -m OLD NEW`` (checked first with ``-n``; refused up front when it
has uncommitted changes). The queue stops at the first failing or conflicting merge: the base
branch always points at a merge whose tests passed. The agents' worktrees are never touched;
``remove`` removes what landed through :func:`wtls.lifecycle.remove` (its safety applies).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wtls.errors import Refused
from wtls.git import GitError, run_git
from wtls.lifecycle import remove as remove_worktree
from wtls.lifecycle.common import (
    _repo_lock,
    in_the_way,
    resolve_worktree,
    rewritten_paths,
    unseen_edits,
    unseen_text,
)
from wtls.predict.commits import Commit, Side, commit_info
from wtls.predict.mergetree import merge_many
from wtls.predict.order import simulate_merge_order
from wtls.semantic import Tester
from wtls.testplan import command_text
from wtls.testrun import Failure
from wtls.unsaved import UnsavedFinder, refuse_unsaved
from wtls.worktrees import RepositoryState, WorktreeState, discover, repository_state


@dataclass(frozen=True, kw_only=True)
class LandStep:
    """What happened to one worktree: landed, or why the queue stopped there."""

    worktree: Path
    branch: str
    #: landed, fail, timeout, error (the test run), conflict (as text), merged (already in base)
    status: str
    #: The merge commit (or the fast-forwarded tip) that was tested.
    commit: str | None = None
    tree: str | None = None
    exit_code: int | None = None
    seconds: float = 0.0
    cached: bool = False
    output: str = ""
    failures: tuple[Failure, ...] = ()
    #: Files that conflict as text (status ``conflict``).
    conflicts: tuple[str, ...] = ()
    removed: bool = False


@dataclass(frozen=True, kw_only=True)
class LandResult:
    """``wtls land``: what landed, where the queue stopped, where the base branch is now."""

    base_branch: str
    command: str
    base_before: str
    base_after: str
    steps: tuple[LandStep, ...] = ()
    #: Worktrees not taken (uncommitted work, detached...) and why.
    skipped: tuple[tuple[str, str], ...] = ()
    #: Steps that failed after a landing (a removal refused, the base worktree not updated).
    problems: tuple[str, ...] = ()
    message: str = ""

    @property
    def stopped(self) -> LandStep | None:
        """The step where the queue stopped, or None when everything landed."""
        return next((s for s in self.steps if s.status not in ("landed", "merged")), None)


def _ready(wt: WorktreeState, base: str) -> str | None:
    """Why ``wt`` cannot be landed, or None."""
    if wt.bare or wt.prunable or wt.broken:
        return "it is not a usable worktree (bare, gone or broken)"
    if wt.branch is None:
        return "it is detached: no branch to land"
    if wt.branch == base:
        return "it has the base branch checked out"
    if wt.operation is not None:
        return f"a {wt.operation} is in progress there"
    if wt.dirty:
        return "it has uncommitted changes (land takes commits only): commit them first"
    return None


def _base_worktree_problem(wt: WorktreeState | None) -> str | None:
    if wt is None:
        return None
    if wt.operation is not None:
        return f"a {wt.operation} is in progress in the base worktree {wt.path}"
    s = wt.status
    if s.staged or s.unstaged or s.conflicted:
        return (
            f"the base worktree {wt.path} has uncommitted changes: commit or stash them first "
            "(land brings it along to each new tip)"
        )
    return None


def _rebasing(state: RepositoryState, base: str) -> str | None:
    """Why ``base`` cannot move: a worktree is rebasing it, or more than one has it out.

    Moving the branch under a rebase makes the rebase's last step fail ("cannot lock ref"),
    leaving the user's rebased commits on a detached HEAD.
    """
    ref = f"refs/heads/{base}"
    on_base = [w for w in state.worktrees if w.branch == base and not w.bare]
    if len(on_base) > 1:
        # Only one can be brought along; the others' HEAD would move under their files, and
        # their next commit would undo what landed.
        return (
            f"{base} is checked out in {len(on_base)} worktrees "
            f"({', '.join(str(w.path) for w in on_base)}): land brings one along; "
            "switch the others to another branch first"
        )
    for wt in state.worktrees:
        if wt.gitdir is None or wt.branch is not None:
            continue
        for folder in ("rebase-merge", "rebase-apply"):
            try:
                name = (wt.gitdir / folder / "head-name").read_text(encoding="utf-8").strip()
            except OSError:
                continue
            if name == ref:
                return f"{wt.path} is in the middle of rebasing {base}: finish or abort it first"
    return None


def _order(cwd: Path, tip: Commit, targets: list[WorktreeState]) -> list[WorktreeState]:
    """``targets`` in the merge order that conflicts least (ties: by path)."""
    targets.sort(key=lambda w: str(w.path))
    sides = []
    for wt in targets:
        info = commit_info(cwd, wt.head or "")
        if info is not None:
            sides.append(Side(path=wt.path, branch=wt.branch, commit=info))
    if len(sides) < 2:
        return targets
    try:
        steps = simulate_merge_order(cwd, Side(path=cwd, branch=None, commit=tip), sides) or ()
    except GitError:
        return targets
    rank = {s.path: n for n, s in enumerate(steps)}
    return sorted(targets, key=lambda w: rank.get(w.path, len(rank)))


def _is_ancestor(cwd: Path, a: str, b: str) -> bool:
    return run_git(["merge-base", "--is-ancestor", a, b], cwd, ok_codes=(0, 1)).returncode == 0


def land(
    start: Path,
    specs: Sequence[str],
    tester: Tester,
    *,
    base_branch: str | None = None,
    remove: bool = False,
    unsaved: UnsavedFinder | None = None,
) -> LandResult:
    """Land the worktrees ``specs`` (default: every worktree with commits not in base).

    ``unsaved`` (:mod:`wtls.unsaved`): an editor's unsaved buffers of files that moving the base
    branch rewrites in the base worktree stop the landing there (the base branch stays), and
    those of a landed worktree keep it from ``remove``.
    """
    repository = discover(start)
    cwd = repository.common_dir
    state: RepositoryState = repository_state(repository, base_branch)
    base = state.base_branch
    if base is None:
        raise Refused("the repository has no base branch to land into (use --base BRANCH)")
    tip = commit_info(cwd, f"refs/heads/{base}")
    if tip is None:
        raise Refused(f"the base branch {base} has no commits")
    base_wt = state.find_by_branch(base)
    problem = _base_worktree_problem(base_wt) or _rebasing(state, base)
    if problem:
        raise Refused(problem)
    skipped: list[tuple[str, str]] = []
    targets: list[WorktreeState] = []
    if specs:
        for spec in specs:
            wt = resolve_worktree(state, spec, cwd=start)
            why = _ready(wt, base)
            if why is not None:
                raise Refused(f"cannot land {wt.path}: {why}")
            if wt not in targets:
                targets.append(wt)
    else:
        for wt in state.worktrees:
            if wt.bare or wt.branch == base or wt.base is None or wt.base.ahead == 0:
                continue
            if wt.base.merged:
                continue
            why = _ready(wt, base)
            if why is not None:
                skipped.append((str(wt.path), why))
            else:
                targets.append(wt)
    targets = _order(cwd, tip, targets)

    steps: list[LandStep] = []
    problems: list[str] = []
    before = tip
    for wt in targets:
        assert wt.branch is not None and wt.head is not None
        head = commit_info(cwd, f"refs/heads/{wt.branch}")
        if head is None:
            problems.append(f"the branch {wt.branch} of {wt.path} is gone")
            break
        if _is_ancestor(cwd, head.oid, tip.oid):
            steps.append(LandStep(worktree=wt.path, branch=wt.branch, status="merged"))
            continue
        if _is_ancestor(cwd, tip.oid, head.oid):
            new = head  # a fast-forward, as `git merge` would do
        else:
            outcome = merge_many(cwd, [(tip.oid, head.oid)])[0]
            if outcome is None or not outcome.clean:
                files = tuple(outcome.conflicted_paths()) if outcome is not None else ()
                steps.append(
                    LandStep(worktree=wt.path, branch=wt.branch, status="conflict", conflicts=files)
                )
                break
            oid = run_git(
                [
                    "commit-tree",
                    outcome.tree,
                    "-p",
                    tip.oid,
                    "-p",
                    head.oid,
                    "-m",
                    f"Merge branch '{wt.branch}' into {base}\n\nLanded by wtls land after: "
                    f"{tester_command(tester)}",
                ],
                cwd,
            ).text
            new = commit_info(cwd, oid) or Commit(oid=oid, tree=outcome.tree, date=tip.date)
        run, cached = tester.run(new, f"{wt.branch} on {base}")
        step = LandStep(
            worktree=wt.path,
            branch=wt.branch,
            status="landed" if run.status == "pass" else run.status,
            commit=new.oid,
            tree=new.tree,
            exit_code=run.exit_code,
            seconds=run.seconds,
            cached=cached,
            output=run.output,
            failures=run.failures,
        )
        if run.status != "pass":
            steps.append(step)
            break
        try:
            problems.extend(
                _move_base(repository.common_dir, start, base, tip, new, unsaved=unsaved)
            )
        except Refused as exc:
            steps.append(
                LandStep(
                    worktree=wt.path,
                    branch=wt.branch,
                    status="error",
                    commit=new.oid,
                    tree=new.tree,
                    output=str(exc),
                )
            )
            break
        tip = new
        if remove:
            try:
                removed = remove_worktree(start, str(wt.path), unsaved=unsaved)
                step = LandStep(**{**step.__dict__, "removed": removed.removed})
                problems.extend(removed.problems)
            except (Refused, GitError) as exc:
                problems.append(f"landed {wt.branch} but did not remove {wt.path}: {exc}")
        steps.append(step)
    result = LandResult(
        base_branch=base,
        command=tester_command(tester),
        base_before=before.oid,
        base_after=tip.oid,
        steps=tuple(steps),
        skipped=tuple(skipped),
        problems=tuple(problems),
    )
    return LandResult(**{**result.__dict__, "message": _message(result)})


def tester_command(tester: Tester) -> str:
    """The tester's command in words."""
    return command_text(tester.commands)


def _move_base(
    common: Path,
    start: Path,
    base: str,
    old: Commit,
    new: Commit,
    *,
    unsaved: UnsavedFinder | None = None,
) -> list[str]:
    """Move ``base`` from ``old`` to ``new`` and bring a clean base worktree along."""
    with _repo_lock(common):
        state = repository_state(discover(start), base)
        base_wt = state.find_by_branch(base)
        problem = _base_worktree_problem(base_wt) or _rebasing(state, base)
        if problem:
            raise Refused(f"{problem}; the base branch stays at {old.oid[:12]}")
        if base_wt is not None:
            unseen = unseen_edits(base_wt.path, old.oid, new.oid, head=old.oid)
            if unseen:
                raise Refused(
                    f"{unseen_text(base_wt.path, unseen)} (the base branch stays at {old.oid[:12]})"
                )
            blocking = in_the_way(base_wt.path, old.oid, new.oid)
            if blocking:
                raise Refused(
                    f"the base worktree {base_wt.path} has untracked or ignored files where the "
                    f"new tip has files: {', '.join(blocking)}; move them away first (the base "
                    f"branch stays at {old.oid[:12]})"
                )
            check = run_git(
                ["read-tree", "-n", "-u", "-m", old.oid, new.oid],
                base_wt.path,
                ok_codes=(0, 128),
            )
            if check.returncode != 0:
                raise Refused(
                    f"the base worktree {base_wt.path} cannot be brought to the new tip "
                    f"({check.stderr.strip() or 'read-tree refused'}); the base branch stays at "
                    f"{old.oid[:12]}"
                )
            rewritten = rewritten_paths(base_wt.path, old.oid, new.oid)
            refuse_unsaved(
                unsaved,
                [base_wt.path / p for p in rewritten],
                what=f"moving {base} to {new.oid[:12]} would rewrite, in the base worktree "
                f"{base_wt.path},",
            )
        reason = f"wtls land: tests passed on {new.oid[:12]}"
        if base_wt is None:
            run_git(["update-ref", "-m", reason, f"refs/heads/{base}", new.oid, old.oid], common)
            return []
        _fast_forward(base_wt, base, old, new, reason)
    return []


def _fast_forward(base_wt: WorktreeState, base: str, old: Commit, new: Commit, reason: str) -> None:
    """Move the base branch and its worktree from ``old`` to ``new`` in one git command.

    ``git merge --ff-only --no-overwrite-ignore`` checks the files it writes itself, right
    before writing them: an ignored file written after wtls's own check (a dev server's
    ``.env``) refuses the move instead of being overwritten (``read-tree -u`` replaces
    ignored files without a word).
    """
    head = run_git(["rev-parse", "--verify", "HEAD"], base_wt.path).text
    if head != old.oid:
        raise Refused(
            f"the base worktree {base_wt.path} moved to {head[:12]} meanwhile; the base branch "
            f"stays there"
        )
    done = run_git(
        ["merge", "--ff-only", "--no-overwrite-ignore", "--end-of-options", new.oid],
        base_wt.path,
        ok_codes=(0, 1, 128),
        env={"GIT_REFLOG_ACTION": reason},
        timeout=None,
    )
    if done.returncode != 0:
        raise Refused(
            f"the base worktree {base_wt.path} cannot be brought to the new tip "
            f"({done.stderr.strip() or done.text}); the base branch stays at "
            f"{old.oid[:12]}"
        )


def _message(result: LandResult) -> str:
    landed = [s.branch for s in result.steps if s.status == "landed"]
    text = (
        f"landed {', '.join(landed)} into {result.base_branch}"
        if landed
        else f"nothing landed into {result.base_branch}"
    )
    stop = result.stopped
    if stop is not None:
        why = {
            "conflict": "its merge conflicts as text",
            "fail": "the tests fail on its merge",
            "timeout": "the tests timed out on its merge",
            "error": "its merge could not be tested",
        }.get(stop.status, stop.status)
        text += (
            f"; stopped at {stop.branch} ({why}): {result.base_branch} stays at "
            f"{result.base_after[:12]}, the last merge whose tests passed"
        )
    return text
