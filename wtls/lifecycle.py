"""Worktree lifecycle: spawn, open, merge back, remove safely, prune, lock and unlock.

One implementation shared by the CLI (``wtls spawn`` ...) and the server's
``workspace/executeCommand`` handlers. Every public function takes a starting path (any folder
of the repository), returns a frozen result whose ``to_json()`` is the command contract's
result object, and either does the whole job or raises :class:`~wtls.errors.Refused` having
changed nothing. Git failures surface as :class:`~wtls.git.GitError`, and a lock held by another
git process as :class:`~wtls.git.GitBusy` ("busy, retry").

Safety rules kept here:

* every git call goes through :func:`wtls.git.run_git` with ``--`` / ``--end-of-options``
  before user-supplied paths and refs; user text never reaches a shell;
* lifecycle operations of one repository are serialised by a lock file in its common git dir,
  so two spawns of the same name at once cannot both win (git's own atomic ref creation and
  ``index.lock`` protect against other tools);
* a forced removal first saves every uncommitted and untracked change as a stash-shaped commit
  under ``refs/wtls/backup/`` and verifies it before anything is deleted;
* "merged" is :func:`wtls.worktrees.is_merged` (content-based, so squash and rebase merges
  count), the one place that concept lives.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from wtls.backup import (
    BACKUP_REF_PREFIX,
    OWN_REF_PREFIXES,
    Backup,
    BackupChanged,
    Inspection,
    delete_verified,
    deletion_plan,
    inspect_worktree,
    save_backup,
    save_commit,
    unique_ref,
    unreachable_commits,
    verify_folder,
)
from wtls.errors import Refused
from wtls.git import GitBusy, GitError, run_git, split_z
from wtls.locations import to_path
from wtls.project_config import ProjectConfig, load_project_config
from wtls.repair import diagnose
from wtls.safety import UnsafeFile, printable, read_small_file
from wtls.worktrees import (
    Repository,
    RepositoryState,
    WorktreeEntry,
    WorktreeState,
    default_base_branch,
    discover,
    list_worktrees,
    read_gitfile,
    repository_state,
    worktree_gitdir,
)

#: Folder (inside each spawned worktree) holding wtls's files; it ignores itself.
WTLS_DIR = ".wtls"
#: The task prompt for the agent started in a new worktree.
PROMPT_FILE = f"{WTLS_DIR}/task.md"
#: ``NAME=port`` lines, one per port name of ``.wtls.toml``.
PORTS_FILE = f"{WTLS_DIR}/ports.env"
#: What spawn did, for ``wtls list`` and clients.
SPAWN_INFO_FILE = f"{WTLS_DIR}/spawn.json"
#: Longest task or branch name accepted (folder and ref names must stay far below OS limits).
MAX_NAME_LENGTH = 100
#: Ports are drawn from this range (above most dev-server defaults, below ephemeral ports).
PORT_RANGE = (20000, 45000)
#: Checkouts with more files than this report progress while git works.
LARGE_CHECKOUT = 2000


_LOCK_NAME = "wtls-lifecycle.lock"
_LOCK_TIMEOUT = 30.0
_SELF_IGNORE = "# created by wtls: everything here is local to this worktree\n*\n"
_REPO_POINTING_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_PREFIX",
    "GIT_NAMESPACE",
)

Callback = Callable[[str], None] | None


# ----------------------------------------------------------------------------- settings, results
@dataclass(frozen=True, kw_only=True)
class LifecycleSettings:
    """What the editor's (or CLI's) settings say about lifecycle commands."""

    #: Branch a plain task name becomes; ``{slug}`` is the task name made folder-safe.
    branch_template: str = "agent/{slug}"
    #: Where new worktrees go: ``{repoParent}``, ``{repo}`` and ``{slug}`` are filled in.
    path_template: str = "{repoParent}/{repo}-{slug}"
    #: Command run to open a worktree in a new window (``{path}``, ``{uri}``, ``{branch}``).
    open_command: str | None = None
    #: Base branch for spawn and merge; None = the repository's default (main worktree's branch).
    base_branch: str | None = None
    #: Seconds each setup command may run.
    setup_timeout: float = 1800.0


@dataclass(frozen=True, kw_only=True)
class NameCheck:
    """Live validation of a spawn name (``wtls.validateName``)."""

    ok: bool
    message: str
    branch: str | None = None
    path: Path | None = None
    slug: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``{ok, message, branch, path}`` (plus ``slug``)."""
        return {
            "ok": self.ok,
            "message": self.message,
            "branch": self.branch,
            "path": str(self.path) if self.path is not None else None,
            "slug": self.slug,
        }


@dataclass(frozen=True, kw_only=True)
class CommandRun:
    """One setup command and how it ended."""

    command: str
    exit_code: int | None
    #: Why it did not finish normally (not found, timed out), or None.
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``{command, exitCode, error}``."""
        return {"command": self.command, "exitCode": self.exit_code, "error": self.error}


@dataclass(frozen=True, kw_only=True)
class SetupResult:
    """What happened to the ``setup`` commands of ``.wtls.toml``."""

    #: Whether the commands were run (False when there are none or the workspace is untrusted).
    ran: bool = False
    #: True unless a command failed.
    ok: bool = True
    #: Why they were not run, or None.
    skipped: str | None = None
    commands: tuple[CommandRun, ...] = ()
    #: A clear failure message (the worktree is kept), or None.
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``{ran, ok, skipped, commands:[{command, exitCode, error}], message}``."""
        return {
            "ran": self.ran,
            "ok": self.ok,
            "skipped": self.skipped,
            "commands": [c.to_json() for c in self.commands],
            "message": self.message,
        }


@dataclass(frozen=True, kw_only=True)
class SpawnResult:
    """A new worktree, ready for a fresh AI session."""

    path: Path
    branch: str
    base: str
    base_commit: str
    prompt_file: Path | None = None
    ports: Mapping[str, int] = field(default_factory=dict)
    copied: tuple[str, ...] = ()
    setup: SetupResult = field(default_factory=SetupResult)
    #: Whether the open command was run.
    opened: bool = False
    #: Steps after ``git worktree add`` that failed (the worktree is kept); empty if none.
    problems: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        """The new worktree's ``file://`` URI, for the client to open in a new window."""
        return self.path.as_uri()

    def to_json(self) -> dict[str, Any]:
        """``{path, branch, uri, promptFile, ports, copied, setup}`` plus base, opened, problems."""
        return {
            "path": str(self.path),
            "branch": self.branch,
            "uri": self.uri,
            "promptFile": str(self.prompt_file) if self.prompt_file else None,
            "ports": dict(self.ports),
            "copied": list(self.copied),
            "setup": self.setup.to_json(),
            "base": self.base,
            "baseCommit": self.base_commit,
            "opened": self.opened,
            "problems": list(self.problems),
        }


@dataclass(frozen=True, kw_only=True)
class OpenResult:
    """``wtls.open``: the worktrees to pick from, or the one chosen."""

    worktrees: tuple[dict[str, Any], ...] | None = None
    path: Path | None = None
    branch: str | None = None
    opened: bool = False
    #: Exit status of the open command when it was waited for (the CLI), else None.
    exit_status: int | None = None

    def to_json(self) -> dict[str, Any]:
        """``{worktrees:[...]}`` when none was named, else ``{path, uri, branch, opened}``."""
        if self.path is None:
            return {"worktrees": list(self.worktrees or ())}
        return {
            "path": str(self.path),
            "uri": self.path.as_uri(),
            "branch": self.branch,
            "opened": self.opened,
        }


@dataclass(frozen=True, kw_only=True)
class MergeResult:
    """``wtls.merge``: a worktree's branch merged back into the base branch."""

    merged: bool
    branch: str
    base: str
    base_worktree: Path
    conflicts: tuple[str, ...] = ()
    removed: bool = False
    branch_deleted: bool = False
    aborted: bool = False
    #: The base branch's commit after the merge (None when it stopped or was aborted).
    commit: str | None = None
    message: str = ""
    problems: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """``{merged, conflicts, removed, branchDeleted}`` plus context."""
        return {
            "merged": self.merged,
            "conflicts": list(self.conflicts),
            "removed": self.removed,
            "branchDeleted": self.branch_deleted,
            "aborted": self.aborted,
            "branch": self.branch,
            "base": self.base,
            "baseWorktree": str(self.base_worktree),
            "commit": self.commit,
            "message": self.message,
            "problems": list(self.problems),
        }


@dataclass(frozen=True, kw_only=True)
class RemoveResult:
    """``wtls.remove``: a worktree removed (or what removing it would do, for a dry run)."""

    path: Path
    branch: str | None
    removed: bool
    dry_run: bool = False
    backup_ref: str | None = None
    restore_command: str | None = None
    branch_deleted: bool = False
    #: For a dry run: whether the branch would be deleted.
    would_delete_branch: bool = False
    #: What is (or would be) saved in the backup ref: changed, untracked and deleted files,
    #: nested repositories and submodules.
    would_back_up: tuple[str, ...] = ()
    #: Nested repositories and submodules saved in the backup (relative paths).
    nested_saved: tuple[str, ...] = ()
    message: str = ""
    #: Steps after the removal that failed (the removal itself happened); empty if none.
    problems: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """``{removed, backupRef, restoreCommand, branchDeleted, wouldBackUp}`` plus context."""
        return {
            "removed": self.removed,
            "backupRef": self.backup_ref,
            "restoreCommand": self.restore_command,
            "branchDeleted": self.branch_deleted,
            "wouldBackUp": list(self.would_back_up),
            "nestedSaved": list(self.nested_saved),
            "wouldDeleteBranch": self.would_delete_branch,
            "dryRun": self.dry_run,
            "path": str(self.path),
            "branch": self.branch,
            "message": self.message,
            "problems": list(self.problems),
        }


@dataclass(frozen=True, kw_only=True)
class PruneResult:
    """``wtls.prune``: stale worktree records (folders deleted by hand)."""

    pruned: tuple[dict[str, Any], ...]
    dry_run: bool
    #: Stale-looking records kept: locked ones, and folders moved by hand.
    kept: tuple[dict[str, Any], ...] = ()
    #: Folders put back that an interrupted removal had left renamed aside.
    recovered: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """``{pruned:[{path, reason, branch, backupRef}], dryRun, kept, recovered}``."""
        return {
            "pruned": [dict(p) for p in self.pruned],
            "dryRun": self.dry_run,
            "kept": [dict(k) for k in self.kept],
            "recovered": list(self.recovered),
        }


@dataclass(frozen=True, kw_only=True)
class LockResult:
    """``wtls.lock`` / ``wtls.unlock``."""

    path: Path
    locked: bool
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``{path, locked, reason}``."""
        return {"path": str(self.path), "locked": self.locked, "reason": self.reason}


# ----------------------------------------------------------------------------- small helpers
def _abs(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return Path(os.path.abspath(path))


def _start_dir(start: Path | str) -> Path:
    p = _abs(Path(start))
    return p if p.is_dir() or not p.exists() else p.parent


def _say(callback: Callback, text: str) -> None:
    if callback is not None:
        callback(text)


def _files_text(files: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(files[:limit])
    return shown + (f" and {len(files) - limit} more" if len(files) > limit else "")


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


@dataclass(frozen=True)
class _Repo:
    repository: Repository
    entries: tuple[WorktreeEntry, ...]

    @property
    def main(self) -> WorktreeEntry | None:
        return next((e for e in self.entries if e.is_main and not e.bare), None)

    @property
    def run_dir(self) -> Path:
        """Where repository-wide git commands run: the main worktree, else the common dir."""
        main = self.main
        if main is not None and main.path.is_dir():
            return main.path
        return self.repository.common_dir


def _open_repo(start: Path | str) -> _Repo:
    repository = discover(start)
    return _Repo(repository, tuple(list_worktrees(repository)))


@contextlib.contextmanager
def _repo_lock(common_dir: Path, timeout: float = _LOCK_TIMEOUT) -> Iterator[None]:
    """Serialise wtls lifecycle operations of one repository (across processes and threads)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: git's own locks are the only guard
        yield
        return
    lock_path = common_dir / _LOCK_NAME
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise GitBusy(
                        ["worktree"],
                        -1,
                        f"Unable to create '{lock_path}': another wtls command is still running",
                        common_dir,
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class _WorktreeLike(Protocol):
    @property
    def path(self) -> Path: ...
    @property
    def branch(self) -> str | None: ...
    @property
    def is_main(self) -> bool: ...
    @property
    def bare(self) -> bool: ...


_W = TypeVar("_W", bound=_WorktreeLike)


def _describe(items: Sequence[_WorktreeLike]) -> str:
    parts = []
    for w in items:
        if w.bare:
            continue
        label = w.branch or "detached"
        parts.append(f"{w.path} ({label}{', main' if w.is_main else ''})")
    return "; ".join(parts) or "none"


def _match_worktree(items: Sequence[_W], spec: str, cwd: Path | None) -> _W:
    if not spec or _has_control(spec):
        raise Refused(f"{spec!r} is not a worktree path or branch name")
    candidates = [w for w in items if not w.bare]
    as_path = _abs(to_path(spec, name="worktree", base=cwd or Path.cwd()))
    for w in candidates:
        if w.path == as_path:
            return w
    short = spec.removeprefix("refs/heads/")
    for w in candidates:
        if w.branch is not None and w.branch == short:
            return w
    if as_path.exists():
        inside = [w for w in candidates if w.path in as_path.parents]
        if inside:
            return max(inside, key=lambda w: len(w.path.parts))
    by_name = [w for w in candidates if w.path.name == spec]
    if len(by_name) == 1:
        return by_name[0]
    raise Refused(
        f"no worktree matches {spec!r}: give a worktree's path or its branch name. "
        f"Worktrees: {_describe(items)}"
    )


def resolve_worktree(
    state: RepositoryState, spec: str, *, cwd: Path | None = None
) -> WorktreeState:
    """The worktree ``spec`` names: its path (or a path inside it), its branch, or its folder name.

    Raises :class:`Refused` listing the worktrees when nothing matches.
    """
    return _match_worktree(state.worktrees, spec, cwd)


# ----------------------------------------------------------------------------- names
def slugify(text: str) -> str:
    """A folder-safe slug: lowercase ASCII ``[a-z0-9._-]``, other runs become ``-``."""
    ascii_text = (
        unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    )
    slug = re.sub(r"[^a-z0-9._-]+", "-", ascii_text)
    slug = re.sub(r"-{2,}", "-", slug)
    return slug.strip("-._")


def _check_branch_name(run_dir: Path, branch: str) -> None:
    """Refuse a branch name git would refuse (``git check-ref-format --branch``)."""
    rules = (
        "branch names cannot contain spaces, control characters, ~ ^ : ? * [ \\, '..' or '@{', "
        "nor have a part that starts with '.' or ends with '.lock'"
    )
    if branch.startswith("-"):
        raise Refused(f"{branch!r} is not a valid branch name: it cannot start with '-'")
    try:
        out = run_git(["check-ref-format", "--branch", branch], run_dir).text
    except GitBusy:
        raise
    except GitError as exc:
        raise Refused(f"{branch!r} is not a valid branch name ({rules})") from exc
    # --branch expands "@{-1}" and similar to another branch's name: only the literal is fine.
    if out != branch:
        raise Refused(f"{branch!r} is not a valid branch name ({rules})")


def _fill(template: str, values: Mapping[str, str], what: str) -> str:
    if "{slug}" not in template:
        raise Refused(f"the {what} template {template!r} must contain {{slug}}")
    try:
        return template.format_map(dict(values))
    except (KeyError, IndexError, ValueError) as exc:
        known = ", ".join("{" + k + "}" for k in values)
        raise Refused(f"bad {what} template {template!r}: {exc} (placeholders: {known})") from exc


def names_for(name: str, settings: LifecycleSettings) -> tuple[str, str]:
    """``(branch, slug)`` for a task name (pure: no git). Raises :class:`Refused`.

    A name with ``/`` is a branch name used as-is; its last part gives the slug. Other names
    become ``branch_template`` with their slug.
    """
    if not name or not name.strip():
        raise Refused("the name is empty: give a task name such as `fix-login`")
    if name.startswith("-"):
        raise Refused(f"{name!r} cannot be used: a name cannot start with '-'")
    if _has_control(name):
        raise Refused(f"{name!r} contains a control character (such as a newline or tab)")
    if len(name) > MAX_NAME_LENGTH:
        raise Refused(f"the name is too long ({len(name)} characters; at most {MAX_NAME_LENGTH})")
    if "/" in name:
        branch = name.removeprefix("refs/heads/")
        slug = slugify(branch.rsplit("/", 1)[-1])
    else:
        slug = slugify(name)
        branch = ""
    if not slug:
        raise Refused(
            f"{name!r} gives an empty folder name: use letters or digits (a-z, 0-9) in the name"
        )
    if not branch:
        branch = _fill(settings.branch_template, {"slug": slug}, "branch")
    return branch, slug


def _repo_names(repo: _Repo) -> tuple[Path, str]:
    """``(repoParent, repo)`` for path templates: the main worktree's folder and name.

    A submodule's worktrees go beside its outermost superproject's work tree (``repoParent``
    is that folder's parent, ``repo`` the submodule's folder name): beside the submodule they
    would land inside the superproject, as untracked files there. Never inside a git dir.
    """
    main = repo.main
    superproject = repo.repository.superproject
    if main is not None and superproject is not None:
        return _outermost_superproject(superproject).parent, main.path.name
    if main is not None and main.path != repo.repository.common_dir:
        return main.path.parent, main.path.name
    common = repo.repository.common_dir
    return common.parent, common.name.removesuffix(".git") or common.name


def _outermost_superproject(superproject: Path) -> Path:
    """The top of the superproject that is not itself a submodule (nested submodules)."""
    top = superproject
    for _ in range(32):  # nesting deeper than this is not a real layout
        result = run_git(["rev-parse", "--show-superproject-working-tree"], top, ok_codes=(0, 128))
        if result.returncode != 0 or not result.text:
            break
        top = _abs(Path(result.text))
    return top


def _ref_exists(run_dir: Path, ref: str) -> bool:
    result = run_git(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", ref], run_dir, ok_codes=(0, 1)
    )
    return result.returncode == 0


def _is_ignored(worktree: Path, path: Path) -> bool:
    # The trailing "/" says "a folder" for a path that does not exist yet, so `dir/` patterns
    # match it too.
    rel = os.path.relpath(path, worktree) + "/"
    result = run_git(["check-ignore", "-q", "--no-index", "--", rel], worktree, ok_codes=(0, 1))
    return result.returncode == 0


@dataclass(frozen=True)
class _Plan:
    branch: str
    slug: str
    path: Path
    base: str
    base_commit: str
    source: Path


def _source_worktree(repo: _Repo, start: Path) -> Path:
    """The worktree a spawn copies from: the one containing ``start``, else the main one."""
    inside = [
        e for e in repo.entries if not e.bare and (e.path == start or e.path in start.parents)
    ]
    if inside:
        return max(inside, key=lambda e: len(e.path.parts)).path
    main = repo.main
    if main is None:
        return repo.repository.common_dir
    return main.path


def _plan(
    repo: _Repo,
    start: Path,
    name: str,
    settings: LifecycleSettings,
    base: str | None,
    path: Path | str | None,
) -> _Plan:
    """Check everything about a spawn before anything is created; raise :class:`Refused`."""
    run_dir = repo.run_dir
    branch, slug = names_for(name, settings)
    _check_branch_name(run_dir, branch)
    # Branch: free, not checked out, and no ref in the way of its folder-like name.
    for entry in repo.entries:
        if entry.branch == branch:
            raise Refused(f"branch {branch} is already checked out in worktree {entry.path}")
    if _ref_exists(run_dir, f"refs/heads/{branch}"):
        raise Refused(
            f"branch {branch} already exists: choose another name, or delete that branch first"
        )
    parts = branch.split("/")
    for i in range(1, len(parts)):
        prefix = "/".join(parts[:i])
        if _ref_exists(run_dir, f"refs/heads/{prefix}"):
            raise Refused(f"branch {prefix} exists, so no branch can be named {branch}")
    below = run_git(
        ["for-each-ref", "--count=1", "--format=%(refname)", f"refs/heads/{branch}/"], run_dir
    ).text
    if below:
        raise Refused(
            f"branch {below.removeprefix('refs/heads/')} exists, so no branch can be named {branch}"
        )
    # Base.
    base_name = (
        base
        if base is not None
        else default_base_branch(repo.repository, repo.entries, settings.base_branch)
    )
    if base_name is None:
        raise Refused("the repository has no base branch yet (no commits?): give a base")
    if not base_name or _has_control(base_name):
        raise Refused(f"base {base_name!r} is not a valid branch, tag or commit")
    found = run_git(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{base_name}^{{commit}}"],
        run_dir,
        ok_codes=(0, 1),
    )
    if found.returncode != 0 or not found.text:
        raise Refused(f"base {base_name!r} does not exist (no branch, tag or commit by that name)")
    base_commit = found.text.splitlines()[0]
    # Path.
    parent, repo_name = _repo_names(repo)
    if path is None:
        filled = _fill(
            settings.path_template,
            {"repoParent": str(parent), "repo": repo_name, "slug": slug},
            "path",
        )
        target = Path(filled).expanduser()
        if not target.is_absolute():
            target = parent / target
    else:
        text = str(path)
        if not text or _has_control(text):
            raise Refused(f"{text!r} is not a usable folder path")
        target = to_path(text, name="path", base=start)
    target = Path(os.path.normpath(_abs(target)))
    if os.path.lexists(target):
        raise Refused(f"path {target} already exists: choose another name or path")
    for entry in repo.entries:
        if entry.path == target:
            raise Refused(
                f"git still has a worktree record for {target} (its folder was deleted by hand): "
                "run `wtls prune` first"
            )
    for entry in repo.entries:
        if entry.bare or entry.path not in target.parents or not entry.path.is_dir():
            continue
        if not _is_ignored(entry.path, target):
            raise Refused(
                f"{target} is inside worktree {entry.path} and not ignored there: that worktree "
                "would see the new one as untracked files; choose a folder outside it or "
                "add the folder to its .gitignore"
            )
    return _Plan(
        branch=branch,
        slug=slug,
        path=target,
        base=base_name,
        base_commit=base_commit,
        source=_source_worktree(repo, start),
    )


def validate_name(
    start: Path | str,
    name: str,
    settings: LifecycleSettings | None = None,
    *,
    base: str | None = None,
    path: Path | str | None = None,
) -> NameCheck:
    """Check a spawn name (live, for an input box): never raises :class:`Refused`."""
    settings = settings or LifecycleSettings()
    start_dir = _start_dir(start)
    repo = _open_repo(start_dir)
    try:
        plan = _plan(repo, start_dir, name, settings, base, path)
    except Refused as exc:
        branch = slug = None
        with contextlib.suppress(Refused):
            branch, slug = names_for(name, settings)
        return NameCheck(ok=False, message=str(exc), branch=branch, slug=slug)
    return NameCheck(
        ok=True,
        message=f"creates branch {plan.branch} from {plan.base} in {plan.path}",
        branch=plan.branch,
        path=plan.path,
        slug=plan.slug,
    )


# ----------------------------------------------------------------------------- spawn helpers
def spawn_recipe(start: Path | str) -> ProjectConfig:
    """The ``.wtls.toml`` / ``.worktreeinclude`` recipe a spawn from ``start`` would use."""
    start_dir = _start_dir(start)
    repo = _open_repo(start_dir)
    return load_project_config(_source_worktree(repo, start_dir))


def _open_wtls_dir(worktree: Path, *, create: bool = False) -> int:
    """A descriptor of ``<worktree>/.wtls``, never reached through a symbolic link.

    A base branch can commit ``.wtls`` as a link to any folder; writing through it would put
    wtls's files (and a prompt) wherever the link points. Raises :class:`UnsafeFile` then.
    """
    top = os.open(worktree, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(WTLS_DIR, 0o777, dir_fd=top)
        try:
            return os.open(
                WTLS_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=top
            )
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                what = "a symbolic link" if os.path.islink(worktree / WTLS_DIR) else "not a folder"
                raise UnsafeFile(
                    f"{worktree / WTLS_DIR} is {what} (committed in the base branch?): wtls "
                    "writes nothing through it"
                ) from exc
            raise
    finally:
        os.close(top)


def _write_private(worktree: Path, name: str, text: str, *, exclusive: bool = False) -> Path:
    """Write ``<worktree>/.wtls/<name>``, refusing to follow a symbolic link anywhere on the way.

    ``exclusive`` leaves an existing file alone. Raises :class:`OSError` (including
    :class:`UnsafeFile`) with a clear message.
    """
    folder = _open_wtls_dir(worktree)
    path = worktree / WTLS_DIR / name
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    flags |= os.O_EXCL if exclusive else os.O_TRUNC
    try:
        fd = os.open(name, flags, 0o644, dir_fd=folder)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFile(
                f"{path} is a symbolic link (committed in the base branch?): wtls does not "
                "write through it"
            ) from exc
        raise
    finally:
        os.close(folder)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def _ensure_wtls_dir(worktree: Path) -> Path:
    """``<worktree>/.wtls/``, ignored by git through its own ``.gitignore`` (``*``).

    A self-ignoring folder touches no shared file (not ``.gitignore``, not ``info/exclude``)
    and stays ignored whatever the repository's own ignore rules say.
    """
    os.close(_open_wtls_dir(worktree, create=True))
    with contextlib.suppress(FileExistsError):
        _write_private(worktree, ".gitignore", _SELF_IGNORE, exclusive=True)
    return worktree / WTLS_DIR


def _link_problem(source: Path, rel: str) -> tuple[str | None, str | None]:
    """``(link target, None)`` for a link to copy, ``(None, problem)`` for one that leaves."""
    target = os.readlink(source / rel)
    root = os.path.realpath(source)
    resolved = os.path.realpath(source / rel)
    if os.path.commonpath([root, resolved]) != root:
        return None, (
            f"did not copy {rel}: it is a symbolic link to {target}, outside the worktree "
            "(copy what it points at by hand if the new worktree needs it)"
        )
    return target, None


def _open_dest_folder(dest: Path, parts: Sequence[str], rel: str) -> int:
    """A descriptor of ``dest/parts...``, created as needed, never through a symbolic link."""
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    for i, part in enumerate(parts):
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o777, dir_fd=fd)
            inner = os.open(
                part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd
            )
        except OSError as exc:
            shown = "/".join(parts[: i + 1])
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            what = (
                "a symbolic link (committed in the base branch?), and wtls never writes "
                "through a link"
                if os.path.islink(dest / shown)
                else "not a folder"
            )
            raise UnsafeFile(f"did not copy {rel}: {shown} in the new worktree is {what}") from exc
        finally:
            os.close(fd)
        fd = inner
    return fd


def _copy_one(source: Path, dest: Path, rel: str) -> str | None:
    """Copy one ignored file (or link inside the worktree); a problem message, or None."""
    parts = rel.split("/")
    if os.path.isabs(rel) or any(p in ("", ".", "..") for p in parts):
        return f"did not copy {rel!r}: not a plain path inside the worktree"
    st = os.lstat(source / rel)
    link: str | None = None
    if stat.S_ISLNK(st.st_mode):
        link, problem = _link_problem(source, rel)
        if problem is not None:
            return problem
    elif not stat.S_ISREG(st.st_mode):
        return f"did not copy {rel}: it is not a regular file"
    folder = _open_dest_folder(dest, parts[:-1], rel)
    try:
        if link is not None:
            os.symlink(link, parts[-1], dir_fd=folder)
            return None
        src = os.open(source / rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            st = os.fstat(src)
            if not stat.S_ISREG(st.st_mode):
                return f"did not copy {rel}: it is not a regular file"
            out = os.open(
                parts[-1],
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=folder,
            )
            try:
                while chunk := os.read(src, 1 << 20):
                    os.write(out, chunk)
                os.fchmod(out, stat.S_IMODE(st.st_mode))
                os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(out)
        finally:
            os.close(src)
    finally:
        os.close(folder)
    return None


def copy_ignored_files(
    source: Path, dest: Path, patterns: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Copy files of ``source`` that git ignores and that match ``patterns`` into ``dest``.

    Patterns use gitignore syntax, relative to the worktree's top. Returns ``(copied, problems)``;
    files already present in ``dest`` are never overwritten. Nothing is written through a
    symbolic link in ``dest`` (a base branch can commit ``cfg -> /anywhere``); a symbolic link
    in ``source`` is copied as a link only when it points inside ``source``; FIFOs, devices and
    sockets are not copied. Each refusal is one problem naming the file.
    """
    if not patterns or not source.is_dir():
        return [], []
    with tempfile.NamedTemporaryFile(
        "w", suffix=".patterns", delete=False, encoding="utf-8"
    ) as handle:
        handle.write("\n".join(patterns) + "\n")
        pattern_file = handle.name
    try:
        data = run_git(
            ["ls-files", "-z", "--others", "--ignored", f"--exclude-from={pattern_file}"], source
        ).stdout
    finally:
        os.unlink(pattern_file)
    candidates = [
        rel
        for rel in split_z(data)
        if rel != WTLS_DIR and not rel.startswith(f"{WTLS_DIR}/") and not rel.endswith("/")
    ]
    if not candidates:
        return [], []
    # Only files the repository itself ignores: tracked or plain untracked files are not copied.
    checked = run_git(
        ["check-ignore", "-z", "--stdin"],
        source,
        input=b"".join(os.fsencode(c) + b"\0" for c in candidates),
        ok_codes=(0, 1),
    )
    ignored = set(split_z(checked.stdout))
    copied: list[str] = []
    problems: list[str] = []
    for rel in sorted(c for c in candidates if c in ignored):
        try:
            problem = _copy_one(source, dest, rel)
        except FileExistsError:
            problem = f"did not copy {rel}: it already exists in the new worktree"
        except UnsafeFile as exc:
            problem = str(exc)
        except OSError as exc:
            problem = f"could not copy {rel}: {exc}"
        if problem is None:
            copied.append(rel)
        else:
            problems.append(problem)
    return copied, problems


def _read_wtls_file(worktree: Path, rel: str) -> str | None:
    """A small wtls file of ``worktree``, or None when missing, unsafe or unreadable."""
    try:
        return read_small_file(worktree / rel, inside=worktree).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def read_ports(worktree: Path) -> dict[str, int]:
    """The ports ``wtls spawn`` assigned to ``worktree`` (from ``.wtls/ports.env``); {} if none."""
    text = _read_wtls_file(worktree, PORTS_FILE)
    if text is None:
        return {}
    ports: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#") and value.strip().isdigit():
            ports[key.strip()] = int(value.strip())
    return ports


def read_spawn_info(worktree: Path) -> dict[str, Any] | None:
    """What spawn recorded in ``.wtls/spawn.json`` (branch, base, promptFile, ports...)."""
    text = _read_wtls_file(worktree, SPAWN_INFO_FILE)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def assign_ports(names: Sequence[str], worktree: Path, taken: Iterable[int] = ()) -> dict[str, int]:
    """A free port per name, stable for the same worktree path (hash, then probe upward)."""
    low, high = PORT_RANGE
    span = high - low
    used = set(taken)
    ports: dict[str, int] = {}
    for name in names:
        digest = hashlib.sha256(f"{worktree}\0{name}".encode()).digest()
        first = int.from_bytes(digest[:4], "big") % span
        for step in range(span):
            port = low + (first + step) % span
            if port in used or not _port_free(port):
                continue
            ports[name] = port
            used.add(port)
            break
        else:  # pragma: no cover - 25,000 busy ports
            raise Refused(f"no free port left in {low}-{high} for {name}")
    return ports


def _commands_text(commands: Sequence[Sequence[str]]) -> str:
    """Setup commands as shell-quoted text on one line, control characters escaped."""
    return printable("; ".join(shlex.join(c) for c in commands) or "none", keep_newlines=False)


def _setup_env(worktree: Path, branch: str, ports: Mapping[str, int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _REPO_POINTING_VARS}
    env.update({k: str(v) for k, v in ports.items()})
    env["WTLS_WORKTREE"] = str(worktree)
    env["WTLS_BRANCH"] = branch
    return env


def run_setup(
    worktree: Path,
    commands: Sequence[Sequence[str]],
    *,
    env: Mapping[str, str],
    on_output: Callback = None,
    timeout: float = 1800.0,
) -> SetupResult:
    """Run setup commands one by one in ``worktree`` (no shell), streaming their output.

    Stops at the first failure and says which command failed; nothing is undone.
    """
    runs: list[CommandRun] = []
    for argv in commands:
        text = shlex.join(argv)
        _say(on_output, f"$ {text}")
        try:
            proc = subprocess.Popen(
                list(argv),
                cwd=str(worktree),
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            runs.append(CommandRun(command=text, exit_code=None, error=str(exc)))
            return SetupResult(
                ran=True,
                ok=False,
                commands=tuple(runs),
                message=f"setup command `{text}` could not start: {exc}. The worktree "
                f"{worktree} is kept: fix the problem and run the setup there by hand.",
            )
        timed_out = threading.Event()

        def kill(p: subprocess.Popen[bytes] = proc, flag: threading.Event = timed_out) -> None:
            flag.set()
            p.kill()

        watchdog = threading.Timer(timeout, kill)
        watchdog.daemon = True
        watchdog.start()
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                _say(on_output, raw.decode("utf-8", "replace").rstrip("\r\n"))
            code = proc.wait()
        finally:
            watchdog.cancel()
        if timed_out.is_set():
            runs.append(
                CommandRun(command=text, exit_code=code, error=f"timed out after {timeout:g} s")
            )
        else:
            runs.append(CommandRun(command=text, exit_code=code))
        if code != 0 or timed_out.is_set():
            why = f"timed out after {timeout:g} s" if timed_out.is_set() else f"exit status {code}"
            return SetupResult(
                ran=True,
                ok=False,
                commands=tuple(runs),
                message=f"setup command `{text}` failed ({why}). The worktree {worktree} is "
                "kept: fix the problem and run the setup there by hand.",
            )
    return SetupResult(ran=True, ok=True, commands=tuple(runs))


def open_command_argv(template: str, path: Path, branch: str | None = None) -> list[str]:
    """The open command for ``path``: ``template`` split like a shell would, placeholders filled.

    ``{path}``, ``{uri}`` and ``{branch}`` are replaced inside each argument (never re-split,
    never given to a shell); without any placeholder the path is appended.
    """
    try:
        argv = shlex.split(template)
    except ValueError as exc:
        raise Refused(f"the open command {template!r} cannot be split: {exc}") from exc
    if not argv:
        raise Refused("the open command is empty")
    values = {"{path}": str(path), "{uri}": path.as_uri(), "{branch}": branch or ""}
    if not any(key in arg for arg in argv for key in values):
        argv.append(str(path))
    out = []
    for arg in argv:
        for key, value in values.items():
            arg = arg.replace(key, value)
        out.append(arg)
    return out


def run_open_command(
    template: str, path: Path, *, branch: str | None = None, wait: bool
) -> int | None:
    """Run the open command for ``path``.

    ``wait=True`` (the CLI) runs it in the foreground on the terminal and returns its exit
    status; ``wait=False`` (the server, whose stdout is the LSP channel) starts it detached with
    no stdio and returns None. Raises :class:`Refused` when the command cannot start.
    """
    argv = open_command_argv(template, path, branch)
    try:
        if wait:
            return subprocess.run(argv, check=False).returncode
        subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        raise Refused(f"could not run the open command `{shlex.join(argv)}`: {exc}") from exc
    return None


def _count_files(folder: Path) -> int:
    count = 0
    for _root, dirs, files in os.walk(folder):
        if ".git" in dirs:
            dirs.remove(".git")
        count += len(files)
    return count


def _worktree_add(plan: _Plan, run_dir: Path, on_progress: Callback) -> None:
    """``git worktree add -b BRANCH -- PATH BASE``, reporting progress on large checkouts."""
    total = len(
        split_z(
            run_git(
                ["ls-tree", "-r", "-z", "--name-only", "--end-of-options", plan.base_commit],
                run_dir,
            ).stdout
        )
    )
    _say(
        on_progress,
        f"creating {plan.path} on new branch {plan.branch} from {plan.base} ({total} files)",
    )
    args = ["worktree", "add", "-b", plan.branch, "--", str(plan.path), plan.base_commit]
    if total <= LARGE_CHECKOUT or on_progress is None:
        run_git(args, run_dir, timeout=None)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(run_git, args, run_dir, timeout=None)
        while True:
            try:
                future.result(timeout=1.0)
                return
            except TimeoutError:
                done = _count_files(plan.path) if plan.path.is_dir() else 0
                _say(on_progress, f"checking out: {min(done, total)}/{total} files")


def _explain_add_failure(exc: GitError, plan: _Plan, run_dir: Path) -> Refused | None:
    """Turn a lost race (another process took the branch or path first) into a clear refusal."""
    if _ref_exists(run_dir, f"refs/heads/{plan.branch}") and "already exists" in exc.stderr:
        return Refused(
            f"branch {plan.branch} already exists (created by another process at the same time?)"
        )
    if os.path.lexists(plan.path) and "already exists" in exc.stderr:
        return Refused(f"path {plan.path} already exists (created by another process?)")
    return None


def _other_ports(repo: _Repo, exclude: Path) -> set[int]:
    taken: set[int] = set()
    for entry in repo.entries:
        if not entry.bare and entry.path != exclude:
            taken.update(read_ports(entry.path).values())
    return taken


def spawn(
    start: Path | str,
    name: str,
    *,
    base: str | None = None,
    path: Path | str | None = None,
    prompt: str | None = None,
    trusted: bool = False,
    approved_setup: Sequence[Sequence[str]] | None = None,
    open_window: bool = False,
    settings: LifecycleSettings | None = None,
    on_output: Callback = None,
    on_progress: Callback = None,
) -> SpawnResult:
    """Create a worktree for a fresh AI session and prepare it.

    ``git worktree add -b BRANCH PATH BASE``, then: copy the ignored files ``.wtls.toml``
    ``copy`` and ``.worktreeinclude`` name, assign ``ports`` (``.wtls/ports.env``), write the task
    prompt (``.wtls/task.md``), record ``.wtls/spawn.json``, run ``setup`` only when
    ``trusted``, and run the open command when ``open_window`` and one is configured.
    Refusals happen before anything is created; a failure after ``worktree add`` keeps the
    worktree and is reported in ``problems`` / ``setup``.

    The recipe is read once, under the repository lock. ``approved_setup`` is what a person
    was shown and approved (``wtls spawn``'s prompt): when the recipe read here holds other
    commands (the file changed in between), none is run and ``setup.skipped`` says why.
    """
    settings = settings or LifecycleSettings()
    start_dir = _start_dir(start)
    repo = _open_repo(start_dir)
    problems: list[str] = []
    with _repo_lock(repo.repository.common_dir):
        # Re-read the listing under the lock: a spawn that just finished is now visible.
        repo = _open_repo(start_dir)
        plan = _plan(repo, start_dir, name, settings, base, path)
        recipe = load_project_config(plan.source) if plan.source.is_dir() else ProjectConfig()
        try:
            _worktree_add(plan, repo.run_dir, on_progress)
        except GitBusy:
            raise
        except GitError as exc:
            refusal = _explain_add_failure(exc, plan, repo.run_dir)
            if refusal is not None:
                raise refusal from exc
            raise
        wtls_dir = plan.path / WTLS_DIR
        try:
            _ensure_wtls_dir(plan.path)
        except UnsafeFile as exc:
            problems.append(str(exc))
        except OSError as exc:
            problems.append(f"could not create {wtls_dir}: {exc}")
        ports: dict[str, int] = {}
        if recipe.ports:
            _say(on_progress, "assigning ports")
            try:
                ports = assign_ports(recipe.ports, plan.path, _other_ports(repo, plan.path))
                lines = "".join(f"{k}={v}\n" for k, v in ports.items())
                _write_private(
                    plan.path,
                    Path(PORTS_FILE).name,
                    f"# ports wtls assigned to this worktree\n{lines}",
                )
            except (OSError, Refused) as exc:
                problems.append(f"could not assign ports: {exc}")
                ports = {}
    copied: list[str] = []
    if recipe.copy:
        _say(on_progress, "copying ignored files (.wtls.toml copy, .worktreeinclude)")
        try:
            copied, copy_problems = copy_ignored_files(plan.source, plan.path, recipe.copy)
            problems.extend(copy_problems)
        except GitError as exc:
            problems.append(f"could not list the files to copy: {exc}")
    prompt_file: Path | None = None
    if prompt:
        try:
            prompt_file = _write_private(
                plan.path,
                Path(PROMPT_FILE).name,
                prompt if prompt.endswith("\n") else prompt + "\n",
            )
        except OSError as exc:
            problems.append(f"could not write the task prompt: {exc}")
            prompt_file = None
    info = {
        "version": 1,
        "branch": plan.branch,
        "base": plan.base,
        "baseCommit": plan.base_commit,
        "source": str(plan.source),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "promptFile": PROMPT_FILE if prompt_file else None,
        "ports": ports,
        "copied": copied,
    }
    try:
        _write_private(plan.path, Path(SPAWN_INFO_FILE).name, json.dumps(info, indent=2) + "\n")
    except OSError as exc:
        problems.append(f"could not write {SPAWN_INFO_FILE}: {exc}")
    approved = None if approved_setup is None else tuple(tuple(argv) for argv in approved_setup)
    if not recipe.setup:
        setup = SetupResult()
    elif trusted and approved is not None and approved != recipe.setup:
        setup = SetupResult(
            skipped="the setup commands changed after they were approved, so none was run "
            f"(approved: {_commands_text(approved)}; the file now says: "
            f"{_commands_text(recipe.setup)})",
            commands=tuple(CommandRun(command=shlex.join(c), exit_code=None) for c in recipe.setup),
        )
    elif not trusted:
        setup = SetupResult(
            skipped="the workspace is not trusted: setup commands were not run "
            f"({_commands_text(recipe.setup)})",
            commands=tuple(CommandRun(command=shlex.join(c), exit_code=None) for c in recipe.setup),
        )
    else:
        _say(on_progress, "running setup commands")
        setup = run_setup(
            plan.path,
            recipe.setup,
            env=_setup_env(plan.path, plan.branch, ports),
            on_output=on_output,
            timeout=settings.setup_timeout,
        )
    opened = False
    if open_window and settings.open_command:
        try:
            run_open_command(settings.open_command, plan.path, branch=plan.branch, wait=False)
            opened = True
        except Refused as exc:
            problems.append(str(exc))
    return SpawnResult(
        path=plan.path,
        branch=plan.branch,
        base=plan.base,
        base_commit=plan.base_commit,
        prompt_file=prompt_file,
        ports=ports,
        copied=tuple(copied),
        setup=setup,
        opened=opened,
        problems=tuple(problems),
    )


# ----------------------------------------------------------------------------- open
def open_worktree(
    start: Path | str,
    worktree: str | None = None,
    *,
    open_window: bool = False,
    wait: bool = False,
    settings: LifecycleSettings | None = None,
) -> OpenResult:
    """Without ``worktree``: every worktree (protocol objects) for the client to pick from.

    With it: that worktree's path and URI; with ``open_window`` and an open command configured,
    the command is run (``wait`` as in :func:`run_open_command`).
    """
    settings = settings or LifecycleSettings()
    start_dir = _start_dir(start)
    state = repository_state(discover(start_dir), settings.base_branch)
    if worktree is None:
        this = state.find(start_dir)
        return OpenResult(
            worktrees=tuple(
                w.to_json(this.path if this else None) for w in state.worktrees if not w.bare
            )
        )
    target = resolve_worktree(state, worktree, cwd=start_dir)
    if target.prunable or not target.path.is_dir():
        raise Refused(f"the folder of worktree {target.path} is gone: `wtls prune` forgets it")
    opened = False
    status: int | None = None
    if open_window and settings.open_command:
        status = run_open_command(
            settings.open_command, target.path, branch=target.branch, wait=wait
        )
        opened = True
    return OpenResult(path=target.path, branch=target.branch, opened=opened, exit_status=status)


# ----------------------------------------------------------------------------- merge
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
    settings: LifecycleSettings | None = None,
) -> MergeResult:
    """Merge a worktree's branch into the base branch, in the base branch's worktree.

    Refuses (changing nothing) when the base worktree has uncommitted tracked changes or an
    operation in progress, or the merged worktree has uncommitted work the merge would leave
    behind. On conflicts the merge is left in progress (the editor shows the markers) and
    ``conflicts`` names the files; ``abort=True`` aborts it. With ``remove`` a clean merge is
    followed by removing the worktree and (unless ``delete_branch`` is False) its branch.
    """
    settings = settings or LifecycleSettings()
    start_dir = _start_dir(start)
    repository = discover(start_dir)
    with _repo_lock(repository.common_dir):
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
        if target.dirty:
            raise Refused(
                f"worktree {target.path} has uncommitted work that a merge would leave behind: "
                f"{_files_text(list(target.status.changed_paths))}; commit it first"
            )
        if remove and target.locked:
            raise Refused(
                f"worktree {target.path} is locked"
                + (f" ({target.lock_reason})" if target.lock_reason else "")
                + ": unlock it, or merge without --remove"
            )
        before = base_wt.head
        name = _merge_name(base_wt.path, branch)
        try:
            run_git(["merge", "--no-edit", "--end-of-options", name], base_wt.path, timeout=None)
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
        message = f"merged {branch} into {base} in {base_wt.path}"
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
                )
                removed, deleted = outcome.removed, outcome.branch_deleted
                message += f"; removed {target.path}" + (
                    f" and deleted branch {branch}" if deleted else ""
                )
                if outcome.backup_ref:
                    message += f" ({outcome.message})"
                problems += [f"merged and removed, but {p}" for p in outcome.problems]
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


# ----------------------------------------------------------------------------- remove
def _backup_label(wt: WorktreeState) -> str:
    if wt.branch:
        return wt.branch
    return f"detached-{slugify(wt.path.name) or 'worktree'}"


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


class _ChangedMeanwhile(Exception):
    """The folder changed between its check and its removal; it was put back untouched."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__(", ".join(problems[:5]) + (" …" if len(problems) > 5 else ""))


#: The name a folder being removed has while it is checked for the last time:
#: ``.NAME.wtls-removing-PID`` beside where it was.
_ASIDE_MARK = ".wtls-removing-"
#: Written into a worktree's admin dir once its folder is verified and git starts deleting it;
#: holds the backup ref (if any). An interrupted removal with it is finished, not undone.
_DELETING = "wtls-deleting"


def run_dir_of(repository: Repository) -> Path:
    """Where repository-wide commands run: the main worktree when it is there, else the git dir."""
    main = repository.common_dir.parent if repository.common_dir.name == ".git" else None
    return main if main is not None and main.is_dir() else repository.common_dir


def _original_of_aside(folder: Path) -> Path | None:
    name = folder.name
    if not name.startswith(".") or _ASIDE_MARK not in name:
        return None
    base, _, pid = name[1:].rpartition(_ASIDE_MARK)
    return folder.parent / base if base and pid.isdigit() else None


@dataclass(frozen=True)
class _Recovery:
    """What :func:`recover_interrupted_removals` did for one folder."""

    note: str
    #: The worktree whose interrupted removal it finished (its folder and record are gone).
    finished: Path | None = None
    #: Its branch, when it had one.
    branch: str | None = None
    backup: str | None = None


def _finish_deletion(admin: Path, folder: Path, original: Path) -> _Recovery:
    """Finish a removal killed while it deleted a verified folder, deleting only what it may."""
    try:
        marker = json.loads((admin / _DELETING).read_text(encoding="utf-8"))
        plan = {k: marker[k] for k in ("common", "format", "tree", "nested")}
    except (OSError, ValueError, KeyError, TypeError):
        return _Recovery(
            f"an interrupted removal of {original} left {folder}: wtls cannot tell what in it "
            "is saved, so it is left as it is"
        )
    saved = marker.get("backup")
    saved_text = f" (its work is saved in {saved})" if saved else ""
    kept = (
        delete_verified(folder, plan, {"GIT_DIR": str(admin), "GIT_WORK_TREE": str(folder)})
        if folder.is_dir()
        else []
    )
    if kept:
        (admin / _DELETING).unlink(missing_ok=True)
        if not original.exists():
            os.rename(folder, original)
            folder = original
        (admin / "gitdir").write_bytes(os.fsencode(str(folder / ".git")) + b"\n")
        return _Recovery(
            f"an interrupted removal of {original} was stopped: files written into it meanwhile "
            f"are kept in {folder}, still a worktree ({_files_text(kept)}){saved_text}"
        )
    try:
        head = (admin / "HEAD").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        head = ""
    shutil.rmtree(admin, ignore_errors=True)
    return _Recovery(
        f"finished an interrupted removal of {original}{saved_text}",
        finished=original,
        branch=head.removeprefix("ref: refs/heads/")
        if head.startswith("ref: refs/heads/")
        else None,
        backup=saved if isinstance(saved, str) else None,
    )


def recover_interrupted_removals(common_dir: Path) -> list[_Recovery]:
    """Put back the worktree folders that an interrupted removal left renamed aside.

    Called under the repository lock, so no removal is running: an aside folder is left over
    from a wtls that was killed between renaming a folder and deleting it.
    """
    notes: list[_Recovery] = []
    try:
        admins = sorted(p for p in (common_dir / "worktrees").iterdir() if p.is_dir())
    except OSError:
        return notes
    for admin in admins:
        try:
            recorded = Path((admin / "gitdir").read_text(encoding="utf-8").strip())
        except (OSError, UnicodeDecodeError):
            continue
        folder = Path(
            os.path.normpath(recorded if recorded.is_absolute() else admin / recorded)
        ).parent
        original = _original_of_aside(folder)
        if original is not None and (admin / _DELETING).exists():
            notes.append(_finish_deletion(admin, folder, original))
            continue
        if original is not None:
            # Killed after the record was pointed at the aside folder, before deletion began.
            if folder.is_dir() and not original.exists():
                os.rename(folder, original)
                (admin / "gitdir").write_bytes(os.fsencode(str(original / ".git")) + b"\n")
                notes.append(
                    _Recovery(f"put {original} back (an earlier removal of it was interrupted)")
                )
            continue
        if folder.exists() or not folder.parent.is_dir():
            continue
        # Killed right after the rename: the record still names the old path.
        for entry in sorted(folder.parent.iterdir()):
            if _original_of_aside(entry) != folder:
                continue
            linked = read_gitfile(entry)
            if linked is not None and _abs(linked) == _abs(admin):
                os.rename(entry, folder)
                notes.append(
                    _Recovery(f"put {folder} back (an earlier removal of it was interrupted)")
                )
                break
    return notes


def _delete_folder(
    target: WorktreeState, inspection: Inspection, run_dir: Path, saved_in: str | None
) -> None:
    """Delete a verified worktree folder and its record, keeping writers out meanwhile.

    The folder is first renamed aside (atomic, same file system): from then on nothing can
    create a file in it by its path. It is read again there; if anything differs from what was
    checked and saved, it is renamed back and :class:`_ChangedMeanwhile` is raised with nothing
    changed. Only then does git delete it.
    """
    admin = target.gitdir
    if admin is None or not (admin / "gitdir").is_file():
        raise Refused(f"worktree {target.path} has no git record to remove: run `wtls repair`")
    aside = target.path.parent / f".{target.path.name}{_ASIDE_MARK}{os.getpid()}"
    backlink = admin / "gitdir"
    old_backlink = backlink.read_bytes()
    try:
        os.rename(target.path, aside)
    except OSError as exc:
        raise Refused(
            f"cannot move {target.path} aside to remove it safely ({exc.strerror}); nothing was "
            "removed"
        ) from exc
    try:
        backlink.write_bytes(os.fsencode(str(aside / ".git")) + b"\n")
        changed = verify_folder(aside, inspection)
    except BaseException:
        backlink.write_bytes(old_backlink)
        os.rename(aside, target.path)
        raise
    if changed:
        backlink.write_bytes(old_backlink)
        os.rename(aside, target.path)
        raise _ChangedMeanwhile(changed)
    # Everything in it is verified (and saved where needed). wtls deletes it itself, file by
    # file, only what the snapshot holds byte for byte or git ignores: a process working
    # inside may still write by a relative path, and what it wrote is kept.
    plan = deletion_plan(inspection, aside)
    (admin / _DELETING).write_text(json.dumps({"backup": saved_in, **plan}), encoding="utf-8")
    kept = delete_verified(aside, plan, {"GIT_DIR": str(admin), "GIT_WORK_TREE": str(aside)})
    if kept:
        # Stop: it stays a worktree, holding only what was written meanwhile.
        (admin / _DELETING).unlink(missing_ok=True)
        backlink.write_bytes(old_backlink)
        os.rename(aside, target.path)
        raise _WrittenMeanwhile(kept)
    shutil.rmtree(admin)


class _WrittenMeanwhile(Exception):
    """Files were written into a folder while it was being deleted; they were kept."""

    def __init__(self, kept: Sequence[str]) -> None:
        super().__init__(_files_text(list(kept)))
        self.kept = tuple(kept)


def _check_removable(
    target: WorktreeState, repository: Repository, force: bool
) -> tuple[Inspection, list[str]]:
    """Inspect ``target`` and list what a removal would lose; refuse what must not go."""
    if _inside(repository.common_dir, target.path):
        raise Refused(
            f"the repository's git data ({repository.common_dir}) lies inside {target.path}: "
            "it cannot be removed"
        )
    inspection = inspect_worktree(target.path)
    inside = inspection.worktrees_inside
    if inside:
        names = ", ".join(str(target.path / n.path) for n in inside)
        raise Refused(
            f"another worktree lies inside {target.path}: {names}. Remove or move it first "
            "(`wtls remove`, `wtls move`); removing the outer one would delete its files"
        )
    odd = inspection.unsavable
    if odd:
        what = {"bare": "a bare repository", "unknown": "a .git wtls cannot read"}
        names = ", ".join(f"{target.path / n.path} ({what[n.kind]})" for n in odd)
        raise Refused(
            f"{target.path} holds git data that wtls cannot back up: {names}. Move it out of the "
            "folder first; nothing was removed"
        )
    elsewhere = [
        (n, admin)
        for n in inspection.repositories_inside
        for admin in sorted((n.git_dir / "worktrees").glob("*"))
        if admin.is_dir()
    ]
    if elsewhere:
        names = ", ".join(f"{target.path / n.path} ({admin.name})" for n, admin in elsewhere)
        raise Refused(
            f"a repository inside {target.path} has linked worktrees of its own, whose git data "
            f"lives in it: {names}. Remove those worktrees first (`git worktree remove` in that "
            "repository); nothing was removed"
        )
    losses = inspection.losses()
    if target.operation is not None:
        losses.append(f"a {target.operation} in progress")
    if losses and not force:
        raise Refused(
            f"worktree {target.path} has uncommitted changes: {_files_text(losses)}. Commit "
            "them, or pass --force to remove it anyway (wtls first saves all of it in a backup "
            "ref and says how to restore it)"
        )
    if losses and target.head is None:
        raise Refused(
            f"worktree {target.path} has no commit yet, so wtls cannot back up its changes: "
            "commit them first"
        )
    return inspection, losses


def _remove_locked(
    repository: Repository,
    settings: LifecycleSettings,
    start_dir: Path,
    worktree: str,
    *,
    force: bool,
    delete_branch: bool,
    keep_branch: bool,
    dry_run: bool,
) -> RemoveResult:
    recoveries = [] if dry_run else recover_interrupted_removals(repository.common_dir)
    recovered = [r.note for r in recoveries]
    state = repository_state(repository, settings.base_branch)
    try:
        target = resolve_worktree(state, worktree, cwd=start_dir)
    except Refused:
        # Its own interrupted removal, finished just now: that is the removal asked for.
        spec = _abs(start_dir / Path(worktree).expanduser())
        name = worktree.removeprefix("refs/heads/")
        done = next(
            (r for r in recoveries if r.finished is not None and r.branch == name),
            None,
        )
        done = next((r for r in recoveries if r.finished == spec), done)
        if done is None or done.finished is None:
            raise
        return RemoveResult(
            path=done.finished,
            branch=done.branch,
            removed=True,
            backup_ref=done.backup,
            restore_command=(
                f"cd {shlex.quote(str(run_dir_of(repository)))} && {wtls_command()} restore "
                f"{shlex.quote(done.backup)}"
                if done.backup
                else None
            ),
            message="; ".join(recovered),
        )
    main = state.main
    run_dir = main.path if main is not None and main.path.is_dir() else repository.common_dir
    if target.is_main:
        raise Refused(f"{target.path} is the main worktree: it cannot be removed")
    if target.bare:
        raise Refused("the bare repository itself cannot be removed")
    if target.prunable or not target.path.is_dir():
        raise Refused(
            f"the folder of worktree {target.path} is already gone: `wtls prune` forgets it"
        )
    if target.broken:
        raise Refused(f"worktree {target.path} is broken ({target.broken}): run `wtls repair`")
    if target.locked and not force:
        reason = f" ({target.lock_reason})" if target.lock_reason else ""
        raise Refused(
            f"worktree {target.path} is locked{reason}: unlock it (`wtls unlock`) or pass --force"
        )
    branch = target.branch
    base = state.base_branch
    merged = target.base is not None and target.base.merged
    delete = branch is not None and branch != base and not keep_branch and (merged or delete_branch)
    inspection, losses = _check_removable(target, repository, force)
    orphaned = (
        branch is None and target.head is not None and unreachable_commits(run_dir, target.head)
    )
    if dry_run:
        return RemoveResult(
            path=target.path,
            branch=branch,
            removed=False,
            dry_run=True,
            would_delete_branch=delete,
            would_back_up=tuple(losses),
            message=f"would remove {target.path}"
            + (" after backing up its changes" if losses else "")
            + (" after saving its detached commits in a backup ref" if orphaned else "")
            + (f" and delete branch {branch}" if delete else ""),
        )
    if delete and (repository.common_dir / "packed-refs.lock").exists():
        # Deleting the branch needs this lock: say "busy" now, while nothing has changed.
        raise GitBusy(
            ["branch", "-D"],
            -1,
            f"Unable to create '{repository.common_dir / 'packed-refs.lock'}': another git "
            "process is updating refs",
            run_dir,
        )
    label = _backup_label(target)
    backup: Backup | None = None
    made_refs: list[str] = []
    for attempt in range(3):
        try:
            if losses:
                backup = save_backup(inspection, run_dir, label, branch)
                made_refs.append(backup.ref)
            _delete_folder(target, inspection, run_dir, backup.ref if backup else None)
            break
        except BackupChanged as exc:
            # Files changed while the backup was read: nothing was saved or removed; again.
            if attempt == 2:
                raise Refused(
                    f"files in {target.path} kept changing while wtls saved them ({exc}); "
                    "nothing was removed. Stop what writes there and retry"
                ) from exc
            inspection, losses = _check_removable(target, repository, force)
            continue
        except GitError as exc:
            if made_refs:
                exc.stderr = f"{exc.stderr.strip()} (its work is saved in {', '.join(made_refs)})"
            raise
        except _WrittenMeanwhile as exc:
            saved = f"; everything else is saved in {backup.ref}" if backup else ""
            return RemoveResult(
                path=target.path,
                branch=branch,
                removed=False,
                backup_ref=backup.ref if backup else None,
                restore_command=_restore_command(run_dir, target, backup, None, None, None),
                would_back_up=tuple(losses) if backup else (),
                nested_saved=backup.nested if backup else (),
                message=f"stopped removing {target.path}: files were written into it meanwhile",
                problems=(
                    f"files were written into {target.path} while wtls removed it: {exc}. They "
                    f"are kept there (it is still a worktree, holding only them){saved}",
                ),
            )
        except _ChangedMeanwhile as exc:
            if attempt == 2:
                kept = f" (backup refs made meanwhile: {', '.join(made_refs)})" if made_refs else ""
                raise Refused(
                    f"files in {target.path} kept changing while wtls removed it ({exc}); "
                    f"nothing was removed{kept}. Stop what writes there and retry"
                ) from exc
            inspection, losses = _check_removable(target, repository, force)
    head_ref: str | None = None
    problems: list[str] = []
    if orphaned and backup is None and target.head is not None:
        try:
            head_ref = save_commit(run_dir, label, target.head, "detached HEAD before removal")
        except GitError as exc:
            problems.append(f"could not save its detached commits in a ref: {exc}")
    deleted = False
    branch_ref: str | None = None
    if delete and branch is not None:
        try:
            tip = run_git(["rev-parse", "--verify", f"refs/heads/{branch}"], run_dir).text
            if not merged and (backup is None or target.head != tip):
                branch_ref = save_commit(run_dir, branch, tip, "branch before deletion")
            run_git(["branch", "-D", "--end-of-options", branch], run_dir)
            deleted = True
        except GitError as exc:
            problems.append(f"could not delete branch {branch}: {exc.stderr.strip() or exc}")
    restore = _restore_command(
        run_dir, target, backup, head_ref, branch if deleted else None, branch_ref
    )
    notes = [*recovered, f"removed {target.path}"]
    if backup is not None:
        notes.append(f"its uncommitted work is saved in {backup.ref}")
    if head_ref is not None:
        notes.append(f"its detached commits are saved in {head_ref}")
    if deleted:
        notes.append(
            f"deleted branch {branch}"
            + (f" (its tip is saved in {branch_ref})" if branch_ref else "")
        )
    elif branch is not None and branch != base:
        notes.append(f"kept branch {branch}" + ("" if merged else f" (not merged into {base})"))
    return RemoveResult(
        path=target.path,
        branch=branch,
        removed=True,
        backup_ref=backup.ref if backup else (head_ref or branch_ref),
        restore_command=restore,
        branch_deleted=deleted,
        would_back_up=tuple(losses) if backup else (),
        nested_saved=backup.nested if backup else (),
        message="; ".join(notes),
        problems=tuple(problems),
    )


def wtls_command() -> str:
    """How a printed command runs this wtls: ``wtls`` when that is on PATH, else its Python."""
    found = shutil.which("wtls")
    here = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if found is not None and (here is None or Path(found).resolve() == here or "wtls" in here.name):
        return "wtls"
    return f"{shlex.quote(sys.executable)} -m wtls"


def _restore_command(
    run_dir: Path,
    target: WorktreeState,
    backup: Backup | None,
    head_ref: str | None,
    deleted_branch: str | None,
    branch_ref: str | None,
) -> str | None:
    q = shlex.quote
    if backup is not None:
        # `wtls restore` also creates a deleted branch again at the saved HEAD.
        return f"cd {q(str(run_dir))} && {wtls_command()} restore {q(backup.ref)}"
    repo = f"git -C {q(str(run_dir))}"
    if head_ref is not None:
        return f"{repo} worktree add --detach {q(str(target.path))} {q(head_ref)}"
    if deleted_branch is not None and branch_ref is not None:
        return f"{repo} branch {q(deleted_branch)} {q(branch_ref)}"
    return None  # nothing of it is lost


def remove(
    start: Path | str,
    worktree: str,
    *,
    force: bool = False,
    delete_branch: bool = False,
    dry_run: bool = False,
    settings: LifecycleSettings | None = None,
) -> RemoveResult:
    """Remove a worktree safely.

    Refuses the main worktree, a locked one (unless ``force``), and one with uncommitted or
    untracked changes (listing them) unless ``force``; a forced removal first saves all of them
    in a verified backup ref and returns the command that restores them. The branch is deleted
    when it is merged into base (squash and rebase merges count), or on request
    (``delete_branch``; its tip is then kept in a backup ref). ``dry_run`` checks everything and
    says what would happen without changing anything.
    """
    settings = settings or LifecycleSettings()
    start_dir = _start_dir(start)
    repository = discover(start_dir)
    with _repo_lock(repository.common_dir):
        return _remove_locked(
            repository,
            settings,
            start_dir,
            worktree,
            force=force,
            delete_branch=delete_branch,
            keep_branch=False,
            dry_run=dry_run,
        )


# ----------------------------------------------------------------------------- prune, lock
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
        kept: list[dict[str, Any]] = [
            {
                "path": str(e.path),
                "branch": e.branch,
                "reason": f"locked: {e.lock_reason}" if e.lock_reason else "locked",
            }
            for e in entries
            if e.locked and not e.is_main and not e.path.exists()
        ]
        stale: list[WorktreeEntry] = []
        for e in entries:
            if not e.prunable or e.is_main or e.locked:
                continue
            if e.path in moved:
                kept.append(
                    {
                        "path": str(e.path),
                        "branch": e.branch,
                        "reason": f"moved by hand to {moved[e.path]}: "
                        f"`wtls repair --apply -- {shlex.quote(str(moved[e.path]))}` reattaches it",
                    }
                )
                continue
            stale.append(e)
        pruned: list[dict[str, Any]] = []
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
                {
                    "path": str(e.path),
                    "branch": e.branch,
                    "reason": e.prunable_reason,
                    "backupRef": saved,
                    "detachedCommits": orphaned,
                    "ownRefsSavedIn": kept_refs,
                }
            )
        return PruneResult(
            pruned=tuple(pruned), dry_run=dry_run, kept=tuple(kept), recovered=recovered
        )


def _save_own_refs(run_dir: Path, admin: Path, entry: WorktreeEntry) -> str | None:
    """Keep the refs of a worktree's own (``refs/worktree/*``, bisect) before its record goes.

    They are loose files in its admin dir; each is saved under a new
    ``refs/wtls/backup/…-own-refs-STAMP/`` folder, whose name is returned (None if none).
    """
    found: list[tuple[str, str]] = []
    for prefix in OWN_REF_PREFIXES:
        top = admin / prefix.rstrip("/")
        if not top.is_dir():
            continue
        for path in sorted(top.rglob("*")):
            if path.is_symlink() or not path.is_file():
                continue
            oid = path.read_text(encoding="utf-8", errors="replace").strip()
            if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", oid):
                found.append((oid, path.relative_to(admin).as_posix()))
    if not found:
        return None
    label = entry.branch or f"detached-{slugify(entry.path.name) or 'worktree'}"
    base = unique_ref(run_dir, BACKUP_REF_PREFIX, f"{label}-own-refs")
    script = "".join(f"create {base}/{name} {oid}\n" for oid, name in found)
    run_git(
        ["update-ref", "--stdin", "-m", "wtls: refs of a pruned worktree"],
        run_dir,
        input=script.encode(),
    )
    return base


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


# ----------------------------------------------------------------------------- disk usage
_DISK_CACHE: dict[Path, tuple[float, int]] = {}
_DISK_LOCK = threading.Lock()


def _measure(root: Path, exclude: frozenset[Path]) -> int:
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    continue
                seen.add(key)
            total += getattr(st, "st_blocks", 0) * 512 or st.st_size
            if stat.S_ISDIR(st.st_mode):
                child = Path(entry.path)
                if child not in exclude:
                    stack.append(child)
    return total


def disk_usage(path: Path, *, max_age: float = 60.0, exclude: Iterable[Path] = ()) -> int:
    """Bytes ``path`` takes on disk (blocks; hard links once; symlinks not followed).

    Blocking and proportional to the number of files: call it off the event loop. Results are
    cached per path for ``max_age`` seconds; ``exclude`` skips folders (e.g. other worktrees
    nested inside this one).
    """
    key = _abs(path)
    now = time.monotonic()
    with _DISK_LOCK:
        hit = _DISK_CACHE.get(key)
    if hit is not None and now - hit[0] <= max_age:
        return hit[1]
    size = _measure(key, frozenset(_abs(p) for p in exclude))
    with _DISK_LOCK:
        _DISK_CACHE[key] = (time.monotonic(), size)
    return size


def cached_disk_usage(path: Path) -> int | None:
    """The last measured size of ``path`` (any age), or None; never touches the disk."""
    with _DISK_LOCK:
        hit = _DISK_CACHE.get(_abs(path))
    return hit[1] if hit is not None else None


def invalidate_disk_usage(path: Path | None = None) -> None:
    """Forget the cached size of ``path`` (of every path when None)."""
    with _DISK_LOCK:
        if path is None:
            _DISK_CACHE.clear()
        else:
            _DISK_CACHE.pop(_abs(path), None)
