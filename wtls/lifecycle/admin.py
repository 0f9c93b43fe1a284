"""Prune stale worktree records, lock and unlock."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from wtls.backup import (
    admin_refs,
    save_commit,
    save_refs,
    unreachable_commits,
)
from wtls.errors import Refused
from wtls.git import run_git
from wtls.lifecycle.common import (
    _match_worktree,
    _repo_lock,
    _start_dir,
)
from wtls.lifecycle.names import (
    slugify,
)
from wtls.lifecycle.removal import (
    recover_interrupted_removals,
)
from wtls.lifecycle.results import (
    KeptRecord,
    LockResult,
    PrunedRecord,
    PruneResult,
)
from wtls.repair import diagnose
from wtls.worktrees import (
    Repository,
    WorktreeEntry,
    discover,
    list_worktrees,
    worktree_gitdir,
)


def prune(start: Path | str, *, dry_run: bool = False) -> PruneResult:
    """Forget worktree records whose folders were deleted by hand.

    ``dry_run`` only lists them. Kept, and listed in ``kept`` with the reason: locked records,
    and records of folders that were moved by hand (found by their ``.git`` file), which
    `wtls repair` reattaches. A detached HEAD with commits no branch or tag reaches is saved
    under ``refs/wtls/backup/`` first, so pruning never orphans commits.
    """
    start_dir = _start_dir(start)
    repository = discover(start_dir)
    with _repo_lock(repository.common_dir):
        recovered = (
            ()
            if dry_run
            else tuple(r.note for r in recover_interrupted_removals(repository.common_dir))
        )
        entries = list_worktrees(repository)
        main = next((e for e in entries if e.is_main and not e.bare), None)
        run_dir = main.path if main is not None and main.path.is_dir() else repository.common_dir
        moved = {
            b.registered: b.worktree
            for b in diagnose(start_dir, [start_dir])
            if b.kind == "folder-moved" and b.registered is not None
        }
        kept: list[KeptRecord] = [
            KeptRecord(
                path=e.path,
                branch=e.branch,
                reason=f"locked: {e.lock_reason}" if e.lock_reason else "locked",
            )
            for e in entries
            if e.locked and not e.is_main and not e.path.exists()
        ]
        stale: list[WorktreeEntry] = []
        for e in entries:
            if not e.prunable or e.is_main or e.locked:
                continue
            if e.path in moved:
                kept.append(
                    KeptRecord(
                        path=e.path,
                        branch=e.branch,
                        reason=f"moved by hand to {moved[e.path]}: "
                        f"`wtls repair --apply -- {shlex.quote(str(moved[e.path]))}` reattaches it",
                    )
                )
                continue
            stale.append(e)
        pruned: list[PrunedRecord] = []
        for e in stale:
            saved: str | None = None
            orphaned = (
                e.branch is None and e.head is not None and unreachable_commits(run_dir, e.head)
            )
            if orphaned and not dry_run and e.head is not None:
                label = f"detached-{slugify(e.path.name) or 'worktree'}"
                saved = save_commit(run_dir, label, e.head, "detached HEAD before prune")
            kept_refs: str | None = None
            if not dry_run:
                admin = worktree_gitdir(repository, e)
                if admin is None or admin.parent != repository.common_dir / "worktrees":
                    continue
                kept_refs = _save_own_refs(run_dir, admin, e)
                shutil.rmtree(admin)
            pruned.append(
                PrunedRecord(
                    path=e.path,
                    branch=e.branch,
                    reason=e.prunable_reason,
                    backup_ref=saved,
                    detached_commits=bool(orphaned),
                    own_refs_saved_in=kept_refs,
                )
            )
        return PruneResult(
            pruned=tuple(pruned), dry_run=dry_run, kept=tuple(kept), recovered=recovered
        )


def _save_own_refs(run_dir: Path, admin: Path, entry: WorktreeEntry) -> str | None:
    """Keep a worktree's own refs (``refs/worktree/*``, bisect) before its record goes."""
    found = admin_refs(admin)
    if not found:
        return None
    label = entry.branch or f"detached-{slugify(entry.path.name) or 'worktree'}"
    return save_refs(run_dir, label, found, "refs of a pruned worktree")


def _lock_target(start: Path | str, worktree: str) -> tuple[Repository, WorktreeEntry, Path]:
    start_dir = _start_dir(start)
    repository = discover(start_dir)
    entries = list_worktrees(repository)
    target = _match_worktree(entries, worktree, start_dir)
    if target.is_main:
        raise Refused(f"{target.path} is the main worktree: git cannot lock or unlock it")
    return repository, target, start_dir


def lock(start: Path | str, worktree: str, reason: str | None = None) -> LockResult:
    """``git worktree lock``: keep a worktree from being pruned, moved or removed."""
    repository, target, _ = _lock_target(start, worktree)
    if reason is not None and ("\n" in reason or "\r" in reason or "\0" in reason):
        raise Refused("the lock reason must be one line")
    if target.locked:
        why = f" ({target.lock_reason})" if target.lock_reason else ""
        raise Refused(f"worktree {target.path} is already locked{why}")
    with _repo_lock(repository.common_dir):
        args = ["worktree", "lock"]
        if reason:
            args.append(f"--reason={reason}")
        run_git([*args, "--", str(target.path)], repository.common_dir)
    return LockResult(path=target.path, locked=True, reason=reason or None)


def unlock(start: Path | str, worktree: str) -> LockResult:
    """``git worktree unlock``."""
    repository, target, _ = _lock_target(start, worktree)
    if not target.locked:
        raise Refused(f"worktree {target.path} is not locked")
    with _repo_lock(repository.common_dir):
        run_git(["worktree", "unlock", "--", str(target.path)], repository.common_dir)
    return LockResult(path=target.path, locked=False, reason=None)
