"""Repositories, their worktrees, and the state of each worktree.

Pure core: knows git, nothing of LSP. Every function takes paths and returns frozen models;
every git call goes through :mod:`wtls.git`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from wtls.agents import AgentState, read_agent
from wtls.git import GitError, run_git, run_parallel, split_z
from wtls.links import absolute, explain_broken_link, folder_prefix
from wtls.links import read_gitfile as read_gitfile
from wtls.links import worktree_root as worktree_root
from wtls.processes import ProcessUse

ZERO_OID = "0" * 40


class RepositoryError(Exception):
    """A path is not usable as a repository; the message says why in plain words."""


class NotARepository(RepositoryError):
    """The path is not inside any git repository."""


class BrokenWorktreeLink(RepositoryError):
    """A linked worktree whose ``.git`` file points at a git dir that no longer exists."""

    def __init__(self, worktree: Path, gitdir: Path, message: str) -> None:
        super().__init__(message)
        self.worktree = worktree
        self.gitdir = gitdir


@dataclass(frozen=True, kw_only=True)
class Repository:
    """A repository, identified by its common git dir (shared by all of its worktrees)."""

    common_dir: Path
    bare: bool
    #: Set when the repository is a submodule of another one.
    superproject: Path | None = None
    #: The main worktree's top folder when git's listing cannot tell it: with a separate git
    #: dir (``git init --separate-git-dir``), ``core.worktree``, or a submodule, ``git worktree
    #: list`` names the git dir itself as the main worktree.
    main_worktree: Path | None = None

    @property
    def key(self) -> str:
        """Stable identity used in the protocol: the absolute common git dir."""
        return str(self.common_dir)


@dataclass(frozen=True, kw_only=True)
class WorktreeEntry:
    """One record of ``git worktree list --porcelain``."""

    path: Path
    head: str | None
    branch: str | None
    is_main: bool
    bare: bool = False
    detached: bool = False
    locked: bool = False
    lock_reason: str | None = None
    prunable: bool = False
    prunable_reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class BaseStatus:
    """A worktree's branch compared with the repository's base branch."""

    branch: str
    ahead: int
    behind: int
    merged: bool


@dataclass(frozen=True, kw_only=True)
class SpawnRecord:
    """What ``wtls spawn`` recorded in a worktree's ``.wtls/spawn.json``: what a window that
    opens on it needs to show the task and start the agent."""

    branch: str
    #: The task prompt, absolute; always a file inside the worktree's ``.wtls/`` folder.
    prompt_file: Path
    #: When it was spawned (ISO 8601): a worktree re-created at the same path is a new task.
    created: str


@dataclass(frozen=True, kw_only=True)
class WorktreeConflict:
    """Predicted merge conflicts of a worktree with one other worktree (or the base branch)."""

    #: The other worktree (for the base branch: the worktree that has it checked out).
    path: Path
    branch: str | None
    #: Conflicting files, relative paths in this worktree.
    files: tuple[str, ...]
    against_base: bool


@dataclass(frozen=True, kw_only=True)
class StepConflict:
    """One conflicting file of a merge-order step: line ranges in the merged worktree's file."""

    path: str
    kind: str
    lines: tuple[tuple[int, int], ...]


@dataclass(frozen=True, kw_only=True)
class MergeStep:
    """One step of the suggested merge order into the base branch."""

    path: Path
    branch: str | None
    files: tuple[str, ...]
    conflicts: tuple[StepConflict, ...]
    #: In words, e.g. "merge feature/wipe first (it conflicts in cli.py:5)".
    description: str


@dataclass(frozen=True, kw_only=True)
class StatusCounts:
    """What one ``git status --porcelain=v2 -z --branch`` says about a worktree."""

    oid: str | None = None
    branch: str | None = None
    upstream: str | None = None
    ahead: int | None = None
    behind: int | None = None
    staged: int = 0
    unstaged: int = 0
    untracked: int = 0
    conflicted: int = 0
    conflicted_paths: tuple[str, ...] = ()
    #: Tracked files changed in the index or working tree, and untracked files (relative paths).
    changed_paths: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class WorktreeState:
    """Everything wtls knows about one worktree at one moment."""

    path: Path
    gitdir: Path | None
    head: str | None
    branch: str | None
    is_main: bool
    bare: bool = False
    detached: bool = False
    locked: bool = False
    lock_reason: str | None = None
    prunable: bool = False
    prunable_reason: str | None = None
    broken: str | None = None
    operation: str | None = None
    status: StatusCounts = field(default_factory=StatusCounts)
    base: BaseStatus | None = None
    #: Filled by conflict prediction.
    conflicts: tuple[WorktreeConflict, ...] = ()
    disk_bytes: int | None = None
    ports: tuple[tuple[str, int], ...] = ()
    #: The coding agent working here (read from its git dir, see :mod:`wtls.agents`).
    agent: AgentState | None = None
    #: Filled by the engine: the spawn record of a worktree made by ``wtls spawn`` with a task.
    spawn: SpawnRecord | None = None
    #: Filled by the engine's process scan (:mod:`wtls.processes`): the processes using this
    #: folder. None: not scanned yet, or this system cannot tell.
    processes: tuple[ProcessUse, ...] | None = None

    @property
    def dirty(self) -> bool:
        """Whether the worktree has any uncommitted or untracked change."""
        s = self.status
        return bool(s.staged or s.unstaged or s.untracked or s.conflicted)

    def can_merge(self, base_branch: str | None) -> bool:
        """Whether it has something to merge back: a branch that is not the base branch."""
        return not self.bare and self.branch is not None and self.branch != base_branch

    @property
    def can_remove(self) -> bool:
        """Whether git can remove it at all (not the main worktree, not a bare repository)."""
        return not self.is_main and not self.bare

    @property
    def can_lock(self) -> bool:
        """Whether ``git worktree lock`` applies: a linked worktree that is not locked."""
        return self.can_remove and not self.locked


@dataclass(frozen=True, kw_only=True)
class RepositoryState:
    """All worktrees of one repository at one moment."""

    repository: Repository
    base_branch: str | None
    worktrees: tuple[WorktreeState, ...]
    #: The base branch's tip when this state was read (kept states recompare when it moves).
    base_head: str | None = None
    #: Filled by conflict prediction: suggested merge order and what each step would hit.
    merge_order: tuple[MergeStep, ...] | None = None
    #: Filled by the engine: bytes ``prune --merged`` would free (None: no size measured yet).
    reclaimable_bytes: int | None = None

    @property
    def main(self) -> WorktreeState | None:
        """The main worktree (None for a bare repository)."""
        return next((w for w in self.worktrees if w.is_main and not w.bare), None)

    def find(self, path: Path | str) -> WorktreeState | None:
        """The worktree that contains ``path`` (deepest match), if any."""
        # Compared as text: ``Path.parents`` membership built and compared a Path per level,
        # and this runs for every session on every refresh.
        target = str(absolute(Path(path)))
        best: WorktreeState | None = None
        best_length = -1
        for wt in self.worktrees:
            if wt.bare:
                continue
            root = str(wt.path)
            inside = target == root or target.startswith(folder_prefix(root))
            if inside and len(root) > best_length:
                best, best_length = wt, len(root)
        return best

    def find_by_branch(self, branch: str) -> WorktreeState | None:
        """The worktree that has ``branch`` checked out, if any."""
        short = branch.removeprefix("refs/heads/")
        return next((w for w in self.worktrees if w.branch == short), None)


@dataclass(frozen=True, kw_only=True)
class WorktreePayload:
    """The protocol's worktree object: a :class:`WorktreeState` seen from one worktree.

    ``can_merge``, ``can_remove``, ``can_lock`` and ``can_unlock`` say which lifecycle commands
    apply, so clients offer them without re-deriving git's rules.
    """

    path: Path
    branch: str | None
    head: str | None
    is_main: bool
    is_this: bool
    bare: bool
    detached: bool
    locked: bool
    lock_reason: str | None
    prunable: bool
    prunable_reason: str | None
    broken: str | None
    operation: str | None
    staged: int
    unstaged: int
    untracked: int
    conflicted: int
    upstream: str | None
    ahead: int | None
    behind: int | None
    base: BaseStatus | None
    conflicts: tuple[WorktreeConflict, ...]
    disk_bytes: int | None
    ports: Mapping[str, int]
    spawn: SpawnRecord | None
    can_merge: bool
    can_remove: bool
    can_lock: bool
    can_unlock: bool
    agent: AgentState | None
    #: The processes using the folder (cwd, executable or open file inside); None: not
    #: counted (not scanned yet, or this system cannot tell).
    processes: tuple[ProcessUse, ...] | None


def worktree_payload(
    wt: WorktreeState, this: Path | None = None, base_branch: str | None = None
) -> WorktreePayload:
    """``wt`` as the protocol's worktree object; ``this`` is the worktree the client is in."""
    s = wt.status
    return WorktreePayload(
        path=wt.path,
        branch=wt.branch,
        head=wt.head,
        is_main=wt.is_main,
        is_this=this is not None and wt.path == this,
        bare=wt.bare,
        detached=wt.detached,
        locked=wt.locked,
        lock_reason=wt.lock_reason,
        prunable=wt.prunable,
        prunable_reason=wt.prunable_reason,
        broken=wt.broken,
        operation=wt.operation,
        staged=s.staged,
        unstaged=s.unstaged,
        untracked=s.untracked,
        conflicted=s.conflicted,
        upstream=s.upstream,
        ahead=s.ahead,
        behind=s.behind,
        base=wt.base,
        conflicts=wt.conflicts,
        disk_bytes=wt.disk_bytes,
        ports=dict(wt.ports),
        spawn=wt.spawn,
        can_merge=wt.can_merge(base_branch),
        can_remove=wt.can_remove,
        can_lock=wt.can_lock,
        can_unlock=wt.locked,
        agent=wt.agent,
        processes=wt.processes,
    )


@dataclass(frozen=True, kw_only=True)
class RepositoryPayload:
    """The payload of the ``wtls/worktrees`` notification and of ``wtls list --json``."""

    repository: str
    this: Path | None
    main_worktree: Path | None
    base_branch: str | None
    worktrees: tuple[WorktreePayload, ...]
    merge_order: tuple[MergeStep, ...] | None
    #: Bytes all worktree folders take on disk (None: none measured yet).
    disk_bytes: int | None
    #: Bytes ``wtls prune --merged`` would free: the measured clean, merged worktrees (an
    #: upper bound: a removal's deeper checks can still keep one). None: nothing measured.
    reclaimable_bytes: int | None


def repository_payload(state: RepositoryState, this: Path | None = None) -> RepositoryPayload:
    """``state`` as the ``wtls/worktrees`` payload, seen from the worktree ``this``."""
    main = state.main
    return RepositoryPayload(
        repository=state.repository.key,
        this=this,
        main_worktree=main.path if main else None,
        base_branch=state.base_branch,
        worktrees=tuple(worktree_payload(w, this, state.base_branch) for w in state.worktrees),
        merge_order=state.merge_order,
        disk_bytes=total_disk_bytes(state),
        reclaimable_bytes=state.reclaimable_bytes,
    )


def total_disk_bytes(state: RepositoryState) -> int | None:
    """Bytes all worktree folders take (measured ones; None when none is measured yet)."""
    sizes = [w.disk_bytes for w in state.worktrees if w.disk_bytes is not None]
    return sum(sizes) if sizes else None


def _find_broken_link(start: Path) -> BrokenWorktreeLink | None:
    """Walk up from ``start`` for a ``.git`` file whose git dir is gone."""
    for folder in (start, *start.parents):
        dotgit = folder / ".git"
        if dotgit.is_dir():
            return None
        gitdir = read_gitfile(folder)
        if gitdir is not None:
            if gitdir.exists():
                return None
            message = (
                f"{folder} is a linked worktree whose repository data is missing: its .git file "
                f"points at {gitdir}, which no longer exists (the main worktree was moved or "
                f"deleted, or that folder was removed). Run `wtls repair` from the main "
                f"worktree's new location to reconnect it."
            )
            # Which case this is (moved: where to; deleted: what is left) and the exact fix.
            with contextlib.suppress(OSError, GitError):
                message = explain_broken_link(folder, gitdir)
            return BrokenWorktreeLink(folder, gitdir, message)
    return None


def discover(path: Path | str) -> Repository:
    """Find the repository that ``path`` (a file or folder in any of its worktrees) belongs to.

    Raises :class:`NotARepository` or :class:`BrokenWorktreeLink` with a plain-words message.
    A bare repository is returned with ``bare=True``; a submodule has ``superproject`` set.
    """
    p = absolute(Path(path))
    if not p.exists():
        raise NotARepository(f"{p} does not exist")
    start = p if p.is_dir() else p.parent
    try:
        out = run_git(
            [
                "rev-parse",
                "--path-format=absolute",
                "--git-common-dir",
                "--is-bare-repository",
                "--show-superproject-working-tree",
            ],
            start,
        ).text.splitlines()
    except GitError as exc:
        broken = _find_broken_link(start)
        if broken is not None:
            raise broken from exc
        if "not a git repository" in exc.stderr:
            raise NotARepository(
                f"{start} is not inside a git repository (run `git init` there, or open a "
                "folder of a repository)"
            ) from exc
        if "dubious ownership" in exc.stderr:
            raise NotARepository(
                f"git refuses to use {start}: it is owned by another user (add it with "
                "`git config --global --add safe.directory <path>`)"
            ) from exc
        raise NotARepository(f"{start}: {exc}") from exc
    common_dir = absolute(Path(out[0]))
    bare = out[1] == "true"
    superproject = absolute(Path(out[2])) if len(out) > 2 and out[2] else None
    main = None if bare else _main_worktree_top(start, common_dir)
    return Repository(
        common_dir=common_dir, bare=bare, superproject=superproject, main_worktree=main
    )


def _main_worktree_top(start: Path, common_dir: Path) -> Path | None:
    """The main worktree's top folder, when it is not simply the folder holding ``.git``.

    From inside the main worktree, ``--show-toplevel`` says it; from elsewhere (a linked
    worktree, the git dir) only a ``core.worktree`` setting can, read by asking git from the
    common dir. None when the usual ``<top>/.git`` layout holds or nothing says more.
    """
    if common_dir.name == ".git" and not _has_core_worktree(common_dir):
        return None
    for cwd in (start, common_dir):
        result = run_git(
            ["rev-parse", "--path-format=absolute", "--git-common-dir", "--show-toplevel"],
            cwd,
            ok_codes=(0, 128),
        )
        lines = result.text.splitlines()
        if result.returncode != 0 or len(lines) != 2 or absolute(Path(lines[0])) != common_dir:
            continue
        top = absolute(Path(lines[1]))
        # From ``start`` in a linked worktree, the top is that worktree's: not the main one.
        if cwd == common_dir or read_gitfile(top) in (None, common_dir):
            return top
    return None


def _has_core_worktree(common_dir: Path) -> bool:
    result = run_git(["config", "--get", "core.worktree"], common_dir, ok_codes=(0, 1, 128))
    return result.returncode == 0 and bool(result.text)


def scratch_root(common_dir: Path) -> Path:
    """Where wtls keeps its own scratch worktrees (test runs): ``<common>/wtls/scratch``."""
    return common_dir / "wtls" / "scratch"


def is_scratch(common_dir: Path, path: Path) -> bool:
    """Whether ``path`` is one of wtls's own scratch worktrees (never a user's)."""
    return path.parent == absolute(scratch_root(common_dir))


def list_worktrees(repo: Repository, *, scratch: bool = False) -> list[WorktreeEntry]:
    """Every worktree registered in ``repo``, from ``git worktree list --porcelain -z``.

    wtls's own scratch worktrees (:func:`scratch_root`) are left out unless ``scratch``: they
    are no user's work, so listings, predictions, removal and prune never see them.
    """
    data = run_git(["worktree", "list", "--porcelain", "-z"], repo.common_dir).stdout
    entries: list[WorktreeEntry] = []
    for record in data.split(b"\0\0"):
        fields = split_z(record)
        if not fields:
            continue
        values: dict[str, Any] = {"is_main": not entries}
        for item in fields:
            key, _, value = item.partition(" ")
            if key == "worktree":
                values["path"] = absolute(Path(value))
            elif key == "HEAD":
                values["head"] = None if value == ZERO_OID else value
            elif key == "branch":
                values["branch"] = value.removeprefix("refs/heads/")
            elif key == "detached":
                values["detached"] = True
            elif key == "bare":
                values["bare"] = True
            elif key == "locked":
                values["locked"] = True
                values["lock_reason"] = value or None
            elif key == "prunable":
                values["prunable"] = True
                values["prunable_reason"] = value or None
        values.setdefault("head", None)
        values.setdefault("branch", None)
        if values["is_main"] and repo.main_worktree is not None and not values.get("bare"):
            values["path"] = repo.main_worktree
        entries.append(WorktreeEntry(**values))
    if not scratch:
        entries = [e for e in entries if not is_scratch(repo.common_dir, e.path)]
    return entries


def worktree_gitdir(repo: Repository, entry: WorktreeEntry) -> Path | None:
    """The per-worktree git dir: the common dir for the main worktree, ``worktrees/<id>`` else."""
    if entry.is_main:
        return repo.common_dir
    linked = read_gitfile(entry.path)
    if linked is not None:
        return linked
    # Folder gone (prunable): find the admin dir whose gitdir file names this path.
    admin = repo.common_dir / "worktrees"
    try:
        for candidate in admin.iterdir():
            try:
                recorded = (candidate / "gitdir").read_text().strip()
            except OSError:
                continue
            if absolute(Path(recorded)).parent == entry.path:
                return candidate
    except OSError:
        pass
    return None


def operation_in_progress(gitdir: Path | None) -> str | None:
    """The git operation a worktree is in the middle of, read from its git dir."""
    if gitdir is None:
        return None
    checks = (
        ("rebase-merge", "rebase"),
        ("rebase-apply/applying", "am"),
        ("rebase-apply", "rebase"),
        ("MERGE_HEAD", "merge"),
        ("CHERRY_PICK_HEAD", "cherry-pick"),
        ("REVERT_HEAD", "revert"),
        ("BISECT_LOG", "bisect"),
    )
    for name, op in checks:
        if (gitdir / name).exists():
            return op
    return None


def parse_status_v2(data: bytes) -> StatusCounts:
    """Parse ``git status --porcelain=v2 -z --branch`` output into counts."""
    values: dict[str, Any] = {}
    staged = unstaged = untracked = conflicted = 0
    conflicted_paths: list[str] = []
    changed: list[str] = []
    fields = data.split(b"\0")
    i = 0
    while i < len(fields):
        raw = fields[i]
        i += 1
        if not raw:
            continue
        line = raw.decode("utf-8", "surrogateescape")
        kind = line[0]
        if kind == "#":
            parts = line.split(" ")
            if parts[1] == "branch.oid":
                values["oid"] = None if parts[2] == "(initial)" else parts[2]
            elif parts[1] == "branch.head":
                values["branch"] = None if parts[2] == "(detached)" else " ".join(parts[2:])
            elif parts[1] == "branch.upstream":
                values["upstream"] = " ".join(parts[2:])
            elif parts[1] == "branch.ab":
                values["ahead"] = int(parts[2].lstrip("+"))
                values["behind"] = int(parts[3].lstrip("-"))
        elif kind in "12":
            xy = line[2:4]
            # Ordinary entries have 8 fields before the path; renames 9 and an extra origPath.
            path = line.split(" ", 8 if kind == "1" else 9)[-1]
            if kind == "2":
                i += 1  # the rename's original path
            if xy[0] != ".":
                staged += 1
            if xy[1] != ".":
                unstaged += 1
            changed.append(path)
        elif kind == "u":
            path = line.split(" ", 10)[-1]
            conflicted += 1
            conflicted_paths.append(path)
            changed.append(path)
        elif kind == "?":
            untracked += 1
            changed.append(line[2:])
    return StatusCounts(
        staged=staged,
        unstaged=unstaged,
        untracked=untracked,
        conflicted=conflicted,
        conflicted_paths=tuple(conflicted_paths),
        changed_paths=tuple(changed),
        **values,
    )


def read_status(worktree: Path) -> StatusCounts:
    """One ``git status`` for ``worktree``: branch, upstream ahead/behind and change counts."""
    data = run_git(["status", "--porcelain=v2", "-z", "--branch"], worktree).stdout
    return parse_status_v2(data)


def ref_exists(repo_dir: Path, ref: str) -> bool:
    """Whether ``ref`` resolves to a commit."""
    try:
        run_git(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], repo_dir
        )
    except GitError:
        return False
    return True


def default_base_branch(
    repo: Repository, entries: Sequence[WorktreeEntry], configured: str | None = None
) -> str | None:
    """The base branch: the configured one, else the main worktree's branch, else main/master."""
    if configured:
        return configured.removeprefix("refs/heads/")
    main = next((e for e in entries if e.is_main and not e.bare), None)
    if main is not None and main.branch is not None:
        return main.branch
    for candidate in ("main", "master"):
        if ref_exists(repo.common_dir, f"refs/heads/{candidate}"):
            return candidate
    return None


def ahead_behind(repo_dir: Path, base: str, head: str) -> tuple[int, int]:
    """(ahead, behind) of ``head`` relative to ``base``."""
    out = run_git(
        ["rev-list", "--left-right", "--count", f"{base}...{head}", "--"], repo_dir
    ).text.split()
    behind, ahead = int(out[0]), int(out[1])
    return ahead, behind


def content_merged(repo_dir: Path, base: str, head: str) -> bool:
    """Whether merging ``head`` into ``base`` would change nothing (squash/rebase merges too)."""
    try:
        result = run_git(
            ["merge-tree", "--write-tree", "--no-messages", base, head], repo_dir, ok_codes=(0, 1)
        )
    except GitError:
        return False
    if result.returncode != 0:
        return False
    merged_tree = result.text.splitlines()[0]
    base_tree = run_git(["rev-parse", f"{base}^{{tree}}"], repo_dir).text
    return merged_tree == base_tree


def branch_creation_point(repo_dir: Path, branch: str) -> str | None:
    """The commit a branch pointed at when it was created (its oldest reflog entry), if logged."""
    try:
        out = run_git(
            ["reflog", "show", "--format=%H", f"refs/heads/{branch}", "--"], repo_dir
        ).text.split()
    except GitError:
        return None
    return out[-1] if out else None


def is_merged(repo_dir: Path, branch: str | None, head: str, base: str, ahead: int) -> bool:
    """Whether the work of ``head`` is already in ``base`` (merge, fast-forward, squash, rebase).

    A branch that never had a commit of its own (just spawned, still at its starting point) is
    *not* called merged: there is nothing of it in base, and "safe to remove" would mislead.
    """
    if ahead == 0:
        if branch is None:
            return True
        created = branch_creation_point(repo_dir, branch)
        return created is None or created != head
    return content_merged(repo_dir, base, head)


def base_status(
    repo_dir: Path,
    base: str | None,
    entry_branch: str | None,
    head: str | None,
    *,
    base_exists: bool | None = None,
) -> BaseStatus | None:
    """Compare a worktree's HEAD with the base branch; None when it cannot be compared.
    ``base_exists``: whether the base branch has a commit, when the caller knows."""
    if base is None or head is None or entry_branch == base:
        return None
    base_ref = f"refs/heads/{base}"
    if base_exists is None:
        base_exists = ref_exists(repo_dir, base_ref)
    if not base_exists:
        return None
    ahead, behind = ahead_behind(repo_dir, base_ref, head)
    merged = is_merged(repo_dir, entry_branch, head, base_ref, ahead)
    return BaseStatus(branch=base, ahead=ahead, behind=behind, merged=merged)


def worktree_state(
    repo: Repository,
    entry: WorktreeEntry,
    base_branch: str | None,
    *,
    base_exists: bool | None = None,
    status: bool = True,
) -> WorktreeState:
    """The full state of one worktree (one ``git status`` plus base comparison).
    ``base_exists``: whether the base branch has a commit, when the caller knows. Without
    ``status``: no ``git status`` (see :func:`repository_state`)."""
    gitdir = worktree_gitdir(repo, entry)
    state = WorktreeState(
        path=entry.path,
        gitdir=gitdir,
        head=entry.head,
        branch=entry.branch,
        is_main=entry.is_main,
        bare=entry.bare,
        detached=entry.detached,
        locked=entry.locked,
        lock_reason=entry.lock_reason,
        prunable=entry.prunable,
        prunable_reason=entry.prunable_reason,
    )
    if entry.bare or entry.prunable or not entry.path.is_dir():
        return state
    if gitdir is not None and not gitdir.exists():
        return replace(state, broken=f"its git dir {gitdir} is missing")
    counts = StatusCounts()
    if status:
        try:
            counts = read_status(entry.path)
        except GitError as exc:
            return replace(state, broken=str(exc))
    head = counts.oid if counts.oid is not None else entry.head
    branch = counts.branch if status else entry.branch
    return replace(
        state,
        head=head,
        branch=branch,
        detached=branch is None and head is not None,
        operation=operation_in_progress(gitdir),
        status=counts,
        base=base_status(repo.common_dir, base_branch, branch, head, base_exists=base_exists),
    )


def resolve_commit(repo_dir: Path, ref: str) -> str | None:
    """The commit id ``ref`` points at, or None."""
    try:
        return run_git(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], repo_dir
        ).text
    except GitError:
        return None


def repository_state(
    repo: Repository,
    base_branch: str | None = None,
    *,
    previous: RepositoryState | None = None,
    only: Iterable[Path] | None = None,
    statuses: bool = True,
) -> RepositoryState:
    """State of every worktree of ``repo``.

    Without ``statuses``, no ``git status`` runs: HEAD and branch come from ``git worktree
    list``, the change counts stay empty, and a worktree git cannot read is not found broken.
    For a caller that reads every worktree's files itself anyway (``wtls check`` alone: its
    snapshots), and reads the full state when one of those reads fails.

    With ``previous`` and ``only``, a worktree outside ``only`` whose HEAD and branch did not
    move keeps its previous status (no ``git status``); its base comparison is redone only if the
    base branch moved. So a change in one worktree costs one ``git status``.
    """
    entries = list_worktrees(repo)
    base = default_base_branch(repo, entries, base_branch)
    base_head = resolve_commit(repo.common_dir, f"refs/heads/{base}") if base else None
    keep: dict[Path, WorktreeState] = {}
    if previous is not None and only is not None and previous.base_branch == base:
        wanted = {absolute(p) for p in only}
        keep = {w.path: w for w in previous.worktrees if w.path not in wanted}
    base_moved = previous is None or previous.base_head != base_head
    base_exists = base_head is not None

    def read(entry: WorktreeEntry) -> WorktreeState:
        old = keep.get(entry.path)
        reusable = (
            old is not None
            and old.head == entry.head
            and old.branch == entry.branch
            and old.prunable == entry.prunable
            and old.broken is None
        )
        if old is not None and reusable:
            base_state = old.base
            if base_moved:
                base_state = base_status(
                    repo.common_dir, base, old.branch, old.head, base_exists=base_exists
                )
            return replace(old, locked=entry.locked, lock_reason=entry.lock_reason, base=base_state)
        return worktree_state(repo, entry, base, base_exists=base_exists, status=statuses)

    # Each worktree's reading is its own (a `git status`, the base comparison): in parallel.
    states = run_parallel(read, entries)
    return RepositoryState(
        repository=repo, base_branch=base, worktrees=with_agents(states), base_head=base_head
    )


def with_agents(
    worktrees: Iterable[WorktreeState], only: Iterable[Path] | None = None
) -> tuple[WorktreeState, ...]:
    """``worktrees`` with their agent state read again (those in ``only``, or all): one small
    file read each, no git."""
    wanted = None if only is None else set(only)
    return tuple(
        replace(w, agent=None if w.bare or w.prunable else read_agent(w.gitdir))
        if wanted is None or w.path in wanted
        else w
        for w in worktrees
    )
