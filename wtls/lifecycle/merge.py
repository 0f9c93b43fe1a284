"""Merge a worktree's branch back into the base branch (and abort such a merge)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

from wtls.errors import Refused
from wtls.git import GitBusy, GitError, run_git, split_z
from wtls.lifecycle.common import (
    _files_text,
    _repo_lock,
    _start_dir,
    in_the_way,
    resolve_worktree,
    rewritten_paths,
    unseen_edits,
    unseen_text,
)
from wtls.lifecycle.files import read_spawn_info
from wtls.lifecycle.removal import (
    _remove_locked,
    _scan_for,
    recover_interrupted_removals,
    refuse_if_busy,
)
from wtls.lifecycle.results import (
    Callback,
    LifecycleSettings,
    MergeResult,
)
from wtls.lifecycle.sharing import changes_besides_links
from wtls.unsaved import UnsavedFinder, refuse_unsaved
from wtls.worktrees import (
    WorktreeState,
    discover,
    repository_state,
)


def _merge_name(run_dir: Path, branch: str) -> str:
    """The name to give ``git merge``: the short name unless a tag or other ref shadows it."""
    # A branch name never starts with "-" (git refuses such names), so no option confusion;
    # rev-parse of git 2.39 has no --end-of-options outside --verify.
    out = run_git(
        ["rev-parse", "--symbolic-full-name", branch], run_dir, ok_codes=(0, 128)
    ).text.splitlines()
    return branch if out and out[-1] == f"refs/heads/{branch}" else f"refs/heads/{branch}"


def _tracked_changes(wt: WorktreeState) -> list[str]:
    s = wt.status
    if not (s.staged or s.unstaged or s.conflicted):
        return []
    untracked = set(
        run_git(["ls-files", "-z", "--others", "--exclude-standard"], wt.path).stdout.split(b"\0")
    )
    return [p for p in s.changed_paths if os.fsencode(p) not in untracked]


def _refuse_committed_links(target: WorktreeState, base_wt: WorktreeState, branch: str) -> None:
    """Refuse to merge a branch that commits one of its worktree's share links.

    The link stands where the base worktree keeps the shared folder itself (ignored there):
    git treats ignored files as expendable, so the merge would delete that folder and put the
    link, pointing at itself, in its place (an agent's ``git add -A`` does this when git
    lists the link as untracked).
    """
    info = read_spawn_info(target.path)
    shared = info.get("shared") if info else None
    if not isinstance(shared, dict) or not shared or base_wt.head is None:
        return
    rels = [r for r in shared if isinstance(r, str)]

    def tracked(commit: str) -> set[str]:
        args = ["ls-tree", "-r", "-z", "--name-only", "--full-tree", "--end-of-options", commit]
        # Literal: a recorded path is a file name (`:x` is no pathspec magic here).
        literal = {"GIT_LITERAL_PATHSPECS": "1"}
        out = run_git([*args, "--", *rels], target.path, env=literal).stdout
        return set(split_z(out))

    added = sorted(tracked(_merge_name(base_wt.path, branch)) - tracked(base_wt.head))
    if added:
        raise Refused(
            f"branch {branch} commits {_files_text(added)}, the path of a `share` link: "
            f"merging would delete what the base worktree keeps at {base_wt.path / added[0]} "
            f"(ignored there, so git treats it as expendable). Remove it from the branch "
            f"(`git rm --cached -- {added[0]}` in {target.path}, then commit) and merge again"
        )


def _merge_span(base_wt: WorktreeState, branch: str) -> tuple[str, str] | None:
    """The merge base and the branch's tip a merge of ``branch`` into ``base_wt`` starts from;
    None when there is nothing to compare (no commit yet, unrelated histories: git merge
    refuses them itself)."""
    if base_wt.head is None:
        return None
    tip = run_git(
        [
            "rev-parse",
            "--verify",
            "--end-of-options",
            f"{_merge_name(base_wt.path, branch)}^{{commit}}",
        ],
        base_wt.path,
    ).text
    found = run_git(["merge-base", base_wt.head, tip], base_wt.path, ok_codes=(0, 1))
    if found.returncode != 0:
        return None
    return found.text, tip


def _refuse_files_in_the_way(
    base_wt: WorktreeState, branch: str, span: tuple[str, str] | None
) -> None:
    """Refuse when the merge would overwrite untracked or ignored files of the base worktree,
    or tracked files edited in a way git's status does not see (``span``: :func:`_merge_span`).

    ``git merge`` replaces an ignored file (a local ``.env``) by the branch's committed one
    without a word: ignored files are expendable to git, not to their owner.
    """
    if span is None or base_wt.head is None:
        return  # no commit yet, or unrelated histories: git merge refuses them itself
    unseen = unseen_edits(base_wt.path, span[0], span[1], head=base_wt.head)
    if unseen:
        raise Refused(f"{unseen_text(base_wt.path, unseen)}; nothing was merged")
    blocking = in_the_way(base_wt.path, span[0], span[1], head=base_wt.head)
    if blocking:
        raise Refused(
            f"merging {branch} would overwrite files of the base worktree {base_wt.path} that "
            f"git does not track (ignored or untracked): {_files_text(blocking)}; move them "
            "away first (or take them out of the branch); nothing was merged"
        )


def _refuse_unsaved(
    find: UnsavedFinder | None,
    base_wt: WorktreeState,
    target: WorktreeState,
    span: tuple[str, str] | None,
    *,
    remove: bool,
) -> None:
    """Refuse when an editor holds unsaved buffers of files the merge rewrites in the base
    worktree (what the branch changed since ``span``'s merge base), or, with ``remove``, of any
    file of the worktree."""
    if find is None:
        return
    rewritten = rewritten_paths(base_wt.path, *span) if span is not None else []
    refuse_unsaved(
        find,
        [base_wt.path / path for path in rewritten],
        what=f"merging {target.branch} would rewrite, in the base worktree {base_wt.path},",
    )
    if remove:
        refuse_unsaved(
            find,
            [target.path],
            what=f"removing worktree {target.path} after the merge would delete",
            otherwise="merge without --remove",
        )


def _refuse_if_index_locked(base_wt: WorktreeState) -> None:
    """Say "busy" while another git holds the base worktree's ``index.lock``.

    git 2.39's merge then stops before merging anything, yet leaves ``MERGE_HEAD`` behind and
    says "fix conflicts": a ``git commit`` there would record the branch as merged without
    any of its changes (and ``prune --merged`` would then delete it).
    """
    lock = base_wt.gitdir / "index.lock" if base_wt.gitdir is not None else None
    if lock is not None and lock.exists():
        raise GitBusy(
            ["merge"],
            -1,
            f"Unable to create '{lock}': another git process is writing the base worktree "
            f"{base_wt.path} (if none runs there, the file is left from a crash: remove it); "
            "nothing was merged",
            base_wt.path,
        )


def _undo_failed_merge(base_wt: WorktreeState, branch: str, exc: GitError) -> NoReturn:
    """git stopped without a conflict yet left a merge in progress: abort it, and say why."""
    why = "; ".join(line for line in (exc.stderr or str(exc)).splitlines() if line.strip())
    undone = run_git(["merge", "--abort"], base_wt.path, ok_codes=(0, 1, 128))
    if undone.returncode == 0:
        raise Refused(
            f"git stopped the merge of {branch} without a conflict ({why}); the merge it had "
            "begun was aborted, nothing was merged"
        ) from exc
    raise GitError(
        exc.args_list,
        exc.returncode,
        f"git stopped the merge of {branch} without a conflict ({why}) and left a merge in "
        f"progress in {base_wt.path}, with none of the branch's changes: do not commit it; "
        f"run `git merge --abort` there",
        base_wt.path,
    ) from exc


def _refuse_if_not_ready(wt: WorktreeState, role: str) -> None:
    if wt.prunable or not wt.path.is_dir():
        raise Refused(f"the folder of {role} {wt.path} is gone")
    if wt.broken:
        raise Refused(f"{role} {wt.path} is broken: {wt.broken}")


def merge_back(
    start: Path | str,
    worktree: str,
    *,
    remove: bool = False,
    delete_branch: bool | None = None,
    abort: bool = False,
    kill: bool = False,
    trusted: bool = False,
    on_output: Callback = None,
    settings: LifecycleSettings | None = None,
    unsaved: UnsavedFinder | None = None,
) -> MergeResult:
    """Merge a worktree's branch into the base branch, in the base branch's worktree.

    Refuses (changing nothing) when the base worktree has uncommitted tracked changes or an
    operation in progress, or the merged worktree has uncommitted work the merge would leave
    behind. On conflicts the merge is left in progress (the editor shows the markers) and
    ``conflicts`` names the files; ``abort=True`` aborts it. With ``remove`` a clean merge is
    followed by removing the worktree and (unless ``delete_branch`` is False) its branch;
    processes using the worktree make it refuse before merging, unless ``kill`` (they are then
    ended after the merge, before the removal: see :func:`wtls.lifecycle.removal.remove`).
    An editor's unsaved buffers (``unsaved``: :mod:`wtls.unsaved`) of files the merge rewrites
    in the base worktree, or with ``remove`` of the worktree's files, refuse it before merging.
    """
    settings = settings or LifecycleSettings()
    start_dir = _start_dir(start)
    repository = discover(start_dir)
    with _repo_lock(repository.common_dir):
        # A removal killed mid-way may have left the worktree renamed aside: put it back
        # first, or the worktree named here is known only by its aside name below.
        recovered = [r.note for r in recover_interrupted_removals(repository.common_dir)]
        state = repository_state(repository, settings.base_branch)
        target = resolve_worktree(state, worktree, cwd=start_dir)
        base = state.base_branch
        if base is None:
            raise Refused("the repository has no base branch to merge into")
        if target.bare:
            raise Refused("a bare repository has no branch to merge back")
        if target.branch is None:
            raise Refused(
                f"worktree {target.path} is detached (HEAD at {(target.head or '')[:7]}): there "
                "is no branch to merge; create one there with `git switch -c NAME` first"
            )
        if target.branch == base:
            raise Refused(
                f"worktree {target.path} has the base branch {base} checked out: there is "
                "nothing to merge back; name the worktree of a feature branch"
            )
        base_wt = state.find_by_branch(base)
        if base_wt is None:
            raise Refused(
                f"the base branch {base} is not checked out in any worktree: check it out in "
                f"the main worktree (`git switch {base}`) and retry"
            )
        _refuse_if_not_ready(base_wt, "the base worktree")
        branch = target.branch
        if abort:
            return _abort_merge(base_wt, branch, base)
        if base_wt.operation is not None:
            hint = (
                f" (`wtls merge {worktree} --abort` aborts a merge)"
                if base_wt.operation == "merge"
                else ""
            )
            raise Refused(
                f"a {base_wt.operation} is in progress in the base worktree {base_wt.path}: "
                f"finish or abort it first{hint}"
            )
        changed = _tracked_changes(base_wt)
        if changed:
            raise Refused(
                f"the base worktree {base_wt.path} has uncommitted changes: "
                f"{_files_text(changed)}; commit or stash them first"
            )
        _refuse_if_not_ready(target, "worktree")
        if target.operation is not None:
            raise Refused(
                f"a {target.operation} is in progress in worktree {target.path}: finish it first"
            )
        work = changes_besides_links(target)
        if work:
            raise Refused(
                f"worktree {target.path} has uncommitted work that a merge would leave behind: "
                f"{_files_text(list(work))}; commit it first"
            )
        _refuse_committed_links(target, base_wt, branch)
        if remove and target.locked:
            raise Refused(
                f"worktree {target.path} is locked"
                + (f" ({target.lock_reason})" if target.lock_reason else "")
                + ": unlock it, or merge without --remove"
            )
        if remove:
            refuse_if_busy(_scan_for(state, target), target, kill=kill)
        span = _merge_span(base_wt, branch)
        _refuse_unsaved(unsaved, base_wt, target, span, remove=remove)
        # Last before git: a file written after this check is no longer seen by it (the
        # process scan above can take long). A fast-forward is then checked by git itself
        # (--no-overwrite-ignore); a merge commit's checkout is not (git 2.39's ort ignores
        # that option), so the gap left is this check to git's writing (safety.md).
        _refuse_files_in_the_way(base_wt, branch, span)
        _refuse_if_index_locked(base_wt)
        before = base_wt.head
        name = _merge_name(base_wt.path, branch)
        try:
            run_git(
                ["merge", "--no-edit", "--no-overwrite-ignore", "--end-of-options", name],
                base_wt.path,
                timeout=None,
            )
        except GitBusy:
            raise
        except GitError as exc:
            if base_wt.gitdir is not None and (base_wt.gitdir / "MERGE_HEAD").exists():
                conflicts = tuple(
                    split_z(
                        run_git(
                            ["diff", "--name-only", "-z", "--diff-filter=U"], base_wt.path
                        ).stdout
                    )
                )
                staged = run_git(
                    ["diff", "--cached", "--quiet", "HEAD", "--"], base_wt.path, ok_codes=(0, 1)
                )
                if not conflicts and staged.returncode == 0:
                    # Nothing merged (the index is still HEAD's; a hook that refused the
                    # commit, or rerere's resolutions, would have staged the merge).
                    _undo_failed_merge(base_wt, branch, exc)
                return MergeResult(
                    merged=False,
                    branch=branch,
                    base=base,
                    base_worktree=base_wt.path,
                    conflicts=conflicts,
                    message=f"merging {branch} into {base} stopped with conflicts in "
                    f"{_files_text(list(conflicts))}: resolve them in {base_wt.path} and commit, "
                    f"or run `wtls merge {worktree} --abort`",
                )
            now = run_git(["rev-parse", "--verify", "HEAD"], base_wt.path).text
            if now == before:
                raise Refused(
                    f"git would not merge {branch} into {base}: {exc.stderr or exc}"
                ) from exc
            raise
        commit = run_git(["rev-parse", "--verify", "HEAD"], base_wt.path).text
        removed = deleted = False
        problems: list[str] = []
        message = (
            f"merged {branch} into {base} in {base_wt.path}"
            if commit != before
            else f"{branch} was already merged into {base}: nothing new to merge"
        )
        if recovered:
            message = "; ".join(recovered) + "; " + message
        if remove:
            # The merge happened: whatever befalls the removal, the result says so.
            try:
                outcome = _remove_locked(
                    repository,
                    settings,
                    start_dir,
                    str(target.path),
                    force=False,
                    delete_branch=False,
                    keep_branch=delete_branch is False,
                    dry_run=False,
                    kill=kill,
                    trusted=trusted,
                    on_output=on_output,
                )
                removed, deleted = outcome.removed, outcome.branch_deleted
                if removed:
                    message += f"; removed {target.path}" + (
                        f" and deleted branch {branch}" if deleted else ""
                    )
                    if outcome.backup_ref:
                        message += f" ({outcome.message})"
                    if outcome.teardown.skipped:
                        message += f"; {outcome.teardown.skipped}: pass --trust to run it"
                    elif outcome.teardown.ran:
                        message += "; ran its teardown"
                    problems += [f"merged and removed, but {p}" for p in outcome.problems]
                else:
                    problems += [
                        f"merged, but the worktree was not removed: {p}" for p in outcome.problems
                    ]
            except Refused as exc:
                problems.append(f"merged, but the worktree was not removed: {exc}")
            except GitError as exc:
                problems.append(f"merged, but removing the worktree failed: {exc}")
        return MergeResult(
            merged=True,
            branch=branch,
            base=base,
            base_worktree=base_wt.path,
            removed=removed,
            branch_deleted=deleted,
            commit=commit,
            message=message,
            problems=tuple(problems),
        )


def _abort_merge(base_wt: WorktreeState, branch: str, base: str) -> MergeResult:
    if base_wt.operation != "merge" or base_wt.gitdir is None:
        raise Refused(f"no merge is in progress in the base worktree {base_wt.path}")
    merge_head = (base_wt.gitdir / "MERGE_HEAD").read_text().split()
    tip = run_git(["rev-parse", "--verify", f"refs/heads/{branch}"], base_wt.path).text
    if merge_head and merge_head[0] != tip:
        ancestor = run_git(
            ["merge-base", "--is-ancestor", merge_head[0], tip], base_wt.path, ok_codes=(0, 1)
        )
        if ancestor.returncode != 0:
            raise Refused(
                f"the merge in progress in {base_wt.path} is not a merge of {branch}: "
                "abort it there with `git merge --abort` if you mean to"
            )
    run_git(["merge", "--abort"], base_wt.path)
    return MergeResult(
        merged=False,
        branch=branch,
        base=base,
        base_worktree=base_wt.path,
        aborted=True,
        message=f"aborted the merge of {branch} into {base} in {base_wt.path}",
    )
