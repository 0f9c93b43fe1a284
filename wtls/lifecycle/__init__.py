"""Worktree lifecycle: spawn, open, merge back, remove safely, prune, lock and unlock.

One implementation shared by the CLI (``wtls spawn`` ...) and the server's
``workspace/executeCommand`` handlers. Every public function takes a starting path (any folder
of the repository), returns a frozen result whose wire form (``wtls.wire.to_wire``) is the
command contract's result object, and either does the whole job or raises
:class:`~wtls.errors.Refused` having changed nothing. Git failures surface as
:class:`~wtls.git.GitError`, and a lock held by another git process as
:class:`~wtls.git.GitBusy` ("busy, retry").

Safety rules kept here:

* every git call goes through :func:`wtls.git.run_git` with ``--`` / ``--end-of-options``
  before user-supplied paths and refs; user text never reaches a shell;
* lifecycle operations of one repository are serialised by a lock file in its common git dir,
  so two spawns of the same name at once cannot both win (git's own atomic ref creation and
  ``index.lock`` protect against other tools);
* a removal first proves that everything it would delete is saved (:mod:`wtls.backup`) and
  deletes only that (see docs/safety.md);
* "merged" is :func:`wtls.worktrees.is_merged` (content-based, so squash and rebase merges
  count), the one place that concept lives.
"""

from __future__ import annotations

from wtls.lifecycle.admin import (
    lock,
    prune,
    unlock,
)
from wtls.lifecycle.common import (
    _repo_lock,
    resolve_worktree,
)
from wtls.lifecycle.disk import (
    cached_disk_usage,
    disk_usage,
    invalidate_disk_usage,
    size_text,
)
from wtls.lifecycle.files import (
    copy_ignored_files,
    read_ports,
    read_spawn_info,
    read_spawn_record,
    spawn_recipe,
)
from wtls.lifecycle.merge import (
    merge_back,
)
from wtls.lifecycle.names import (
    names_for,
    slugify,
    validate_name,
)
from wtls.lifecycle.pruning import (
    KeptWorktree,
    PrunedWorktree,
    PruneMergedResult,
    parse_duration,
    prune_candidates,
    prune_merged,
    prune_notice,
    prune_summary,
    reclaimable_bytes,
)
from wtls.lifecycle.removal import (
    recover_interrupted_removals,
    remove,
    run_dir_of,
    wtls_command,
)
from wtls.lifecycle.results import (
    LARGE_CHECKOUT,
    MAX_NAME_LENGTH,
    PORT_RANGE,
    PORTS_FILE,
    PROMPT_FILE,
    SPAWN_INFO_FILE,
    WTLS_DIR,
    Callback,
    CommandRun,
    LifecycleSettings,
    LockResult,
    MergeResult,
    NameCheck,
    OpenResult,
    PruneResult,
    RemoveResult,
    SetupResult,
    SpawnResult,
)
from wtls.lifecycle.setup import (
    assign_ports,
    open_command_argv,
    run_open_command,
    run_setup,
)
from wtls.lifecycle.spawning import (
    _worktree_add,
    open_worktree,
    spawn,
)
from wtls.lifecycle.stopping import (
    ProcessNotEnded,
    StopProcessesResult,
    stop_worktree_processes,
)

__all__ = [
    "LARGE_CHECKOUT",
    "MAX_NAME_LENGTH",
    "PORTS_FILE",
    "PORT_RANGE",
    "PROMPT_FILE",
    "SPAWN_INFO_FILE",
    "WTLS_DIR",
    "Callback",
    "CommandRun",
    "KeptWorktree",
    "LifecycleSettings",
    "LockResult",
    "MergeResult",
    "NameCheck",
    "OpenResult",
    "ProcessNotEnded",
    "PruneMergedResult",
    "PruneResult",
    "PrunedWorktree",
    "RemoveResult",
    "SetupResult",
    "SpawnResult",
    "StopProcessesResult",
    "_repo_lock",
    "_worktree_add",
    "assign_ports",
    "cached_disk_usage",
    "copy_ignored_files",
    "disk_usage",
    "invalidate_disk_usage",
    "lock",
    "merge_back",
    "names_for",
    "open_command_argv",
    "open_worktree",
    "parse_duration",
    "prune",
    "prune_candidates",
    "prune_merged",
    "prune_notice",
    "prune_summary",
    "read_ports",
    "read_spawn_info",
    "read_spawn_record",
    "reclaimable_bytes",
    "recover_interrupted_removals",
    "remove",
    "resolve_worktree",
    "run_dir_of",
    "run_open_command",
    "run_setup",
    "size_text",
    "slugify",
    "spawn",
    "spawn_recipe",
    "stop_worktree_processes",
    "unlock",
    "validate_name",
    "wtls_command",
]
