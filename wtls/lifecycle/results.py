"""Lifecycle settings, constants and the frozen results each operation returns."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from wtls.processes import ProcessUse
from wtls.unsaved import UnsavedBuffer
from wtls.wire import wire
from wtls.worktrees import WorktreePayload

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


@dataclass(frozen=True, kw_only=True)
class CommandRun:
    """One setup command and how it ended."""

    command: str
    exit_code: int | None
    #: Why it did not finish normally (not found, timed out), or None.
    error: str | None = None


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


@dataclass(frozen=True, kw_only=True)
class SpawnResult:
    """A new worktree, ready for a fresh AI session."""

    path: Path
    branch: str
    base: str
    base_commit: str
    prompt_file: Path | None = None
    ports: Mapping[str, int] = field(default_factory=dict)
    #: The ignored files copied (``copy``, ``.worktreeinclude``), clones included.
    copied: tuple[str, ...] = ()
    #: How many of ``copied`` are copy-on-write clones (btrfs, XFS, APFS): no data copied.
    cloned: int = 0
    #: The ``share`` entries linked to the source worktree's folders.
    shared: tuple[str, ...] = ()
    #: The folders of a sparse checkout (``--sparse``); empty: everything is checked out.
    sparse: tuple[str, ...] = ()
    #: Things worth knowing that are not failures (a shared folder that does not exist yet).
    notes: tuple[str, ...] = ()
    setup: SetupResult = field(default_factory=SetupResult)
    #: Whether the open command was run.
    opened: bool = False
    #: Steps after ``git worktree add`` that failed (the worktree is kept); empty if none.
    problems: tuple[str, ...] = ()
    #: The agent settings file wtls wrote its hooks into (``--agent claude``), if any.
    agent_hooks: Path | None = None
    #: The new worktree's ``file://`` URI, for the client to open in a new window.
    uri: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "uri", self.path.as_uri())


@dataclass(frozen=True, kw_only=True)
class OpenResult:
    """``wtls.open``: the worktrees to pick from (``{worktrees}``), or the one chosen
    (``{path, uri, branch, opened}``)."""

    worktrees: tuple[WorktreePayload, ...] | None = field(
        default=None, metadata=wire(omit_default=True)
    )
    path: Path | None = field(default=None, metadata=wire(omit_default=True))
    uri: str | None = field(default=None, metadata=wire(omit_default=True))
    branch: str | None = None
    opened: bool = False
    #: Exit status of the open command when it was waited for (the CLI), else None.
    exit_status: int | None = field(default=None, metadata=wire(internal=True))

    def __post_init__(self) -> None:
        if self.path is not None and self.uri is None:
            object.__setattr__(self, "uri", self.path.as_uri())


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
    #: Whether removing it needs force (its work is backed up first, or it is locked).
    needs_force: bool = False
    #: What is (or would be) saved in the backup ref: changed, untracked and deleted files,
    #: nested repositories and submodules.
    would_back_up: tuple[str, ...] = ()
    #: Nested repositories and submodules saved in the backup (relative paths).
    nested_saved: tuple[str, ...] = ()
    message: str = ""
    #: Steps after the removal that failed (the removal itself happened); empty if none.
    problems: tuple[str, ...] = ()
    #: Dry run: the processes that use the folder (a removal needs ``kill``); otherwise the
    #: processes ``kill`` ended.
    processes: tuple[ProcessUse, ...] = ()
    #: The ``.wtls.toml`` ``teardown`` commands: run, skipped (untrusted; a dry run) or none.
    teardown: SetupResult = field(default_factory=SetupResult)
    #: A forced dry run: the editors' unsaved buffers of its files (the removal needs ``force``
    #: and discards those edits; no backup holds them). Without ``force`` they refuse it.
    unsaved: tuple[UnsavedBuffer, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PrunedRecord:
    """A stale worktree record that ``wtls.prune`` forgot (or would forget)."""

    path: Path
    branch: str | None
    reason: str | None
    #: Keeps a detached HEAD's own commits (None when there were none).
    backup_ref: str | None
    detached_commits: bool
    #: Where the worktree's own refs (``refs/bisect``, ...) were saved, if any.
    own_refs_saved_in: str | None


@dataclass(frozen=True, kw_only=True)
class KeptRecord:
    """A stale-looking worktree record that ``wtls.prune`` keeps, and why."""

    path: Path
    branch: str | None
    reason: str


@dataclass(frozen=True, kw_only=True)
class PruneResult:
    """``wtls.prune``: stale worktree records (folders deleted by hand)."""

    pruned: tuple[PrunedRecord, ...]
    dry_run: bool
    #: Stale-looking records kept: locked ones, and folders moved by hand.
    kept: tuple[KeptRecord, ...] = ()
    #: Folders put back that an interrupted removal had left renamed aside.
    recovered: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class LockResult:
    """``wtls.lock`` / ``wtls.unlock``."""

    path: Path
    locked: bool
    reason: str | None = None
