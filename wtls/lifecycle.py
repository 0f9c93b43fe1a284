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
import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import stat
import subprocess
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

from wtls.errors import Refused
from wtls.git import GitBusy, GitError, run_git, split_z
from wtls.locations import to_path
from wtls.project_config import ProjectConfig, load_project_config
from wtls.worktrees import (
    Repository,
    RepositoryState,
    WorktreeEntry,
    WorktreeState,
    default_base_branch,
    discover,
    list_worktrees,
    repository_state,
)

#: Folder (inside each spawned worktree) holding wtls's files; it ignores itself.
WTLS_DIR = ".wtls"
#: The task prompt for the agent started in a new worktree.
PROMPT_FILE = f"{WTLS_DIR}/task.md"
#: ``NAME=port`` lines, one per port name of ``.wtls.toml``.
PORTS_FILE = f"{WTLS_DIR}/ports.env"
#: What spawn did, for ``wtls list`` and clients.
SPAWN_INFO_FILE = f"{WTLS_DIR}/spawn.json"
#: Where forced removals keep their backups.
BACKUP_REF_PREFIX = "refs/wtls/backup/"
#: Longest task or branch name accepted (folder and ref names must stay far below OS limits).
MAX_NAME_LENGTH = 100
#: Ports are drawn from this range (above most dev-server defaults, below ephemeral ports).
PORT_RANGE = (20000, 45000)
#: Checkouts with more files than this report progress while git works.
LARGE_CHECKOUT = 2000

#: wtls's own commits (backups) carry this identity, so they work without a configured user.
WTLS_IDENTITY = {
    "GIT_AUTHOR_NAME": "wtls",
    "GIT_AUTHOR_EMAIL": "wtls@localhost",
    "GIT_COMMITTER_NAME": "wtls",
    "GIT_COMMITTER_EMAIL": "wtls@localhost",
}

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
    #: Uncommitted and untracked files that are (or would be) saved in the backup ref.
    would_back_up: tuple[str, ...] = ()
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        """``{removed, backupRef, restoreCommand, branchDeleted, wouldBackUp}`` plus context."""
        return {
            "removed": self.removed,
            "backupRef": self.backup_ref,
            "restoreCommand": self.restore_command,
            "branchDeleted": self.branch_deleted,
            "wouldBackUp": list(self.would_back_up),
            "wouldDeleteBranch": self.would_delete_branch,
            "dryRun": self.dry_run,
            "path": str(self.path),
            "branch": self.branch,
            "message": self.message,
        }


@dataclass(frozen=True, kw_only=True)
class PruneResult:
    """``wtls.prune``: stale worktree records (folders deleted by hand)."""

    pruned: tuple[dict[str, Any], ...]
    dry_run: bool
    #: Stale-looking records git keeps because they are locked.
    kept: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """``{pruned:[{path, reason, branch}], dryRun, kept}``."""
        return {
            "pruned": [dict(p) for p in self.pruned],
            "dryRun": self.dry_run,
            "kept": [dict(k) for k in self.kept],
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


@dataclass(frozen=True, kw_only=True)
class Backup:
    """A verified backup of a worktree's uncommitted work (a stash-shaped commit)."""

    ref: str
    commit: str
    #: Files saved (uncommitted tracked changes and untracked files), relative to the worktree.
    files: tuple[str, ...]


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


def _ensure_wtls_dir(worktree: Path) -> Path:
    """``<worktree>/.wtls/``, ignored by git through its own ``.gitignore`` (``*``).

    A self-ignoring folder touches no shared file (not ``.gitignore``, not ``info/exclude``)
    and stays ignored whatever the repository's own ignore rules say.
    """
    folder = worktree / WTLS_DIR
    folder.mkdir(exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text(_SELF_IGNORE, encoding="utf-8")
    return folder


def copy_ignored_files(
    source: Path, dest: Path, patterns: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Copy files of ``source`` that git ignores and that match ``patterns`` into ``dest``.

    Patterns use gitignore syntax, relative to the worktree's top. Returns ``(copied, problems)``;
    files already present in ``dest`` are never overwritten.
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
        src = source / rel
        dst = dest / rel
        try:
            if os.path.lexists(dst):
                problems.append(f"did not copy {rel}: it already exists in the new worktree")
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_symlink():
                os.symlink(os.readlink(src), dst)
            else:
                shutil.copy2(src, dst)
            copied.append(rel)
        except OSError as exc:
            problems.append(f"could not copy {rel}: {exc}")
    return copied, problems


def read_ports(worktree: Path) -> dict[str, int]:
    """The ports ``wtls spawn`` assigned to ``worktree`` (from ``.wtls/ports.env``); {} if none."""
    try:
        text = (worktree / PORTS_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    ports: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#") and value.strip().isdigit():
            ports[key.strip()] = int(value.strip())
    return ports


def read_spawn_info(worktree: Path) -> dict[str, Any] | None:
    """What spawn recorded in ``.wtls/spawn.json`` (branch, base, promptFile, ports...)."""
    try:
        data = json.loads((worktree / SPAWN_INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
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
        except OSError as exc:
            problems.append(f"could not create {wtls_dir}: {exc}")
        ports: dict[str, int] = {}
        if recipe.ports:
            _say(on_progress, "assigning ports")
            try:
                ports = assign_ports(recipe.ports, plan.path, _other_ports(repo, plan.path))
                lines = "".join(f"{k}={v}\n" for k, v in ports.items())
                (plan.path / PORTS_FILE).write_text(
                    f"# ports wtls assigned to this worktree\n{lines}", encoding="utf-8"
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
            prompt_file = plan.path / PROMPT_FILE
            prompt_file.write_text(
                prompt if prompt.endswith("\n") else prompt + "\n", encoding="utf-8"
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
        (wtls_dir / "spawn.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        problems.append(f"could not write {SPAWN_INFO_FILE}: {exc}")
    if not recipe.setup:
        setup = SetupResult()
    elif not trusted:
        setup = SetupResult(
            skipped="the workspace is not trusted: setup commands were not run "
            f"({'; '.join(shlex.join(c) for c in recipe.setup)})",
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
            except Refused as exc:
                problems.append(f"merged, but the worktree was not removed: {exc}")
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


# ----------------------------------------------------------------------------- backup
def _git_path_index(worktree: Path) -> Path:
    out = run_git(["rev-parse", "--path-format=absolute", "--git-path", "index"], worktree).text
    return Path(out)


def _add_paths(worktree: Path, env: Mapping[str, str], paths: Sequence[str], *flags: str) -> None:
    if not paths:
        return
    run_git(
        ["add", *flags, "--pathspec-from-file=-", "--pathspec-file-nul"],
        worktree,
        env={**env, "GIT_LITERAL_PATHSPECS": "1"},
        input=b"".join(os.fsencode(p) + b"\0" for p in paths),
    )


def _tree_entries(worktree: Path, tree: str) -> dict[str, str]:
    """``{path: "mode type oid"}`` of every blob/gitlink in ``tree``."""
    out: dict[str, str] = {}
    for item in split_z(run_git(["ls-tree", "-r", "-z", tree], worktree).stdout):
        meta, _, path = item.partition("\t")
        out[path] = meta
    return out


def _unique_backup_ref(run_dir: Path, label: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = f"{BACKUP_REF_PREFIX}{label}-{stamp}"
    ref = base
    n = 2
    while _ref_exists(run_dir, ref):
        ref = f"{base}-{n}"
        n += 1
    return ref


def backup_worktree(worktree: Path, head: str, label: str) -> Backup:
    """Save every uncommitted and untracked change of ``worktree`` under ``refs/wtls/backup/``.

    The commit is shaped like ``git stash -u`` makes it (W with parents HEAD, I = the index,
    U = the untracked files), so ``git stash apply --index REF`` in a worktree at ``REF^1``
    restores staged, unstaged and untracked changes byte for byte. Unmerged index entries are
    saved as their working-tree content. The result is verified against a snapshot of the
    whole working tree before it is returned; nothing in the worktree is changed.
    """
    real_index = _git_path_index(worktree)
    identity = dict(WTLS_IDENTITY)
    untracked = [
        p.rstrip("/")
        for p in split_z(
            run_git(["ls-files", "-z", "--others", "--exclude-standard"], worktree).stdout
        )
    ]
    with tempfile.TemporaryDirectory(prefix="wtls-backup-") as tmp:
        index_i = Path(tmp) / "index-i"
        if real_index.exists():
            shutil.copyfile(real_index, index_i)
        env_i = {**identity, "GIT_INDEX_FILE": str(index_i)}
        unmerged = sorted(
            {
                item.partition("\t")[2]
                for item in split_z(run_git(["ls-files", "-u", "-z"], worktree, env=env_i).stdout)
            }
        )
        _add_paths(worktree, env_i, unmerged, "-A")
        i_tree = run_git(["write-tree"], worktree, env=env_i).text
        i_commit = run_git(
            ["commit-tree", i_tree, "-p", head, "-m", f"index on {label}: {head[:12]}"],
            worktree,
            env=identity,
        ).text
        index_w = Path(tmp) / "index-w"
        if index_i.exists():
            shutil.copyfile(index_i, index_w)
        env_w = {**identity, "GIT_INDEX_FILE": str(index_w)}
        run_git(["add", "-u"], worktree, env=env_w)
        w_tree = run_git(["write-tree"], worktree, env=env_w).text
        parents = ["-p", head, "-p", i_commit]
        u_tree = None
        if untracked:
            env_u = {**identity, "GIT_INDEX_FILE": str(Path(tmp) / "index-u")}
            _add_paths(worktree, env_u, untracked, "-f")
            u_tree = run_git(["write-tree"], worktree, env=env_u).text
            u_commit = run_git(
                ["commit-tree", u_tree, "-m", f"untracked files on {label}: {head[:12]}"],
                worktree,
                env=identity,
            ).text
            parents += ["-p", u_commit]
        w_commit = run_git(
            [
                "commit-tree",
                w_tree,
                *parents,
                "-m",
                f"On {label}: wtls backup of {worktree} before removal",
            ],
            worktree,
            env=identity,
        ).text
        # Verify: W plus U must be exactly the whole working tree (a fresh `add -A` snapshot).
        index_f = Path(tmp) / "index-f"
        if index_w.exists():
            shutil.copyfile(index_w, index_f)
        env_f = {**identity, "GIT_INDEX_FILE": str(index_f)}
        run_git(["add", "-A"], worktree, env=env_f)
        full = _tree_entries(worktree, run_git(["write-tree"], worktree, env=env_f).text)
        saved = _tree_entries(worktree, w_tree)
        if u_tree is not None:
            saved.update(_tree_entries(worktree, u_tree))
        if saved != full:
            missing = sorted(set(full.items()) ^ set(saved.items()))
            raise GitError(
                ["backup"],
                -1,
                f"the backup of {worktree} does not match its files ({missing[:3]}); "
                "nothing was removed",
                worktree,
            )
    run_dir = worktree
    ref = _unique_backup_ref(run_dir, label)
    run_git(["update-ref", "-m", "wtls: backup before removal", ref, w_commit, ""], run_dir)
    if run_git(["rev-parse", "--verify", ref], run_dir).text != w_commit:
        raise GitError(["update-ref"], -1, f"backup ref {ref} does not hold {w_commit}", run_dir)
    changed = run_git(["diff", "--name-only", "-z", head, w_commit, "--"], worktree).stdout
    staged = run_git(["diff", "--name-only", "-z", head, i_commit, "--"], worktree).stdout
    files = sorted({*split_z(changed), *split_z(staged), *untracked})
    return Backup(ref=ref, commit=w_commit, files=tuple(files))


# ----------------------------------------------------------------------------- remove
def _backup_label(wt: WorktreeState) -> str:
    if wt.branch:
        return wt.branch
    return f"detached-{slugify(wt.path.name) or 'worktree'}"


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
    state = repository_state(repository, settings.base_branch)
    target = resolve_worktree(state, worktree, cwd=start_dir)
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
    dirty = target.dirty or target.operation is not None
    changed = list(target.status.changed_paths)
    if dirty and not force:
        what = f"{_files_text(changed)}" if changed else f"a {target.operation} in progress"
        raise Refused(
            f"worktree {target.path} has uncommitted changes: {what}. Commit them, or pass "
            "--force to remove it anyway (wtls first saves them in a backup ref)"
        )
    if dirty and target.head is None:
        raise Refused(
            f"worktree {target.path} has no commit yet, so wtls cannot back up its changes: "
            "commit them first"
        )
    branch = target.branch
    base = state.base_branch
    merged = target.base is not None and target.base.merged
    delete = branch is not None and branch != base and not keep_branch and (merged or delete_branch)
    if dry_run:
        return RemoveResult(
            path=target.path,
            branch=branch,
            removed=False,
            dry_run=True,
            would_delete_branch=delete,
            would_back_up=tuple(changed) if dirty else (),
            message=f"would remove {target.path}"
            + (" after backing up its changes" if dirty else "")
            + (f" and delete branch {branch}" if delete else ""),
        )
    backup: Backup | None = None
    if dirty:
        assert target.head is not None
        backup = backup_worktree(target.path, target.head, _backup_label(target))
    args = ["worktree", "remove"]
    if force:
        args += ["--force", "--force"] if target.locked else ["--force"]
    try:
        run_git([*args, "--", str(target.path)], run_dir)
    except GitBusy:
        raise
    except GitError as exc:
        if not force and target.path.is_dir():
            raise Refused(f"git would not remove {target.path}: {exc.stderr or exc}") from exc
        raise
    deleted = False
    branch_ref: str | None = None
    if delete and branch is not None:
        tip = run_git(["rev-parse", "--verify", f"refs/heads/{branch}"], run_dir).text
        if not merged and (backup is None or target.head != tip):
            branch_ref = _unique_backup_ref(run_dir, branch)
            run_git(
                ["update-ref", "-m", "wtls: branch before deletion", branch_ref, tip, ""], run_dir
            )
        run_git(["branch", "-D", "--end-of-options", branch], run_dir)
        deleted = True
    restore = _restore_command(run_dir, target, backup, branch if deleted else None, branch_ref)
    notes = [f"removed {target.path}"]
    if backup is not None:
        notes.append(f"its uncommitted changes are saved in {backup.ref}")
    if deleted:
        notes.append(
            f"deleted branch {branch}"
            + (f" (its tip is saved in {branch_ref})" if branch_ref else "")
        )
    elif branch is not None and branch != base:
        notes.append(f"kept branch {branch}" + ("" if merged else f" (not merged into {base})"))
    message = "; ".join(notes)
    return RemoveResult(
        path=target.path,
        branch=branch,
        removed=True,
        backup_ref=backup.ref if backup else branch_ref,
        restore_command=restore,
        branch_deleted=deleted,
        would_back_up=backup.files if backup else (),
        message=message,
    )


def _restore_command(
    run_dir: Path,
    target: WorktreeState,
    backup: Backup | None,
    deleted_branch: str | None,
    branch_ref: str | None,
) -> str | None:
    q = shlex.quote
    repo = f"git -C {q(str(run_dir))}"
    steps: list[str] = []
    if deleted_branch is not None:
        source = branch_ref or (f"{backup.ref}^1" if backup else None)
        if source is None:
            return None  # merged: nothing of it is lost
        steps.append(f"{repo} branch {q(deleted_branch)} {q(source)}")
    if backup is not None:
        if target.branch is not None:
            steps.append(f"{repo} worktree add {q(str(target.path))} {q(target.branch)}")
        else:
            steps.append(
                f"{repo} worktree add --detach {q(str(target.path))} {q(backup.ref + '^1')}"
            )
        steps.append(f"git -C {q(str(target.path))} stash apply --index {q(backup.ref)}")
    return " && ".join(steps) if steps else None


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
    """Forget worktree records whose folders were deleted by hand (``git worktree prune``).

    ``dry_run`` only lists them. Locked records are kept by git and listed in ``kept``.
    """
    start_dir = _start_dir(start)
    repository = discover(start_dir)
    with _repo_lock(repository.common_dir):
        entries = list_worktrees(repository)
        stale = [e for e in entries if e.prunable and not e.is_main]
        kept = tuple(
            {
                "path": str(e.path),
                "branch": e.branch,
                "reason": f"locked: {e.lock_reason}" if e.lock_reason else "locked",
            }
            for e in entries
            if e.locked and not e.is_main and not e.prunable and not e.path.exists()
        )
        if stale and not dry_run:
            run_git(["worktree", "prune"], repository.common_dir)
            still = {e.path for e in list_worktrees(repository) if e.prunable}
            stale = [e for e in stale if e.path not in still]
        return PruneResult(
            pruned=tuple(
                {"path": str(e.path), "branch": e.branch, "reason": e.prunable_reason}
                for e in stale
            ),
            dry_run=dry_run,
            kept=kept,
        )


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
