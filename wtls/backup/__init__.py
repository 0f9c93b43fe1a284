"""Byte-exact backups of a worktree's work, their proof, their restore, and careful deletion.

A removal may only delete what can be brought back. This package answers four questions for a
worktree folder, and knows nothing of LSP or the CLI:

* **What is in it?** :func:`inspect_worktree` (``snapshot``) walks the folder on disk (ignored
  folders included) for nested repositories, submodules and other worktrees, and takes a *raw
  snapshot*: every file git does not ignore (tracked, untracked, and tracked files outside a
  sparse-checkout cone that exist on disk) hashed as the bytes on disk, with no clean filter or
  end-of-line conversion, so what comes back is exactly what was there.
* **What would be lost?** :meth:`Inspection.losses` compares that snapshot with what checking
  out HEAD would write (through git's own filters), with the index, and lists nested
  repositories, submodules and the worktree's own refs, whose git data goes with the folder.
* **Is it saved?** :func:`save_backup` (``store``) stores the snapshot, the index and every
  nested repository (all its objects, refs, reflogs, index and files) under one ref,
  ``refs/wtls/backup/…`` (nested refs under ``refs/wtls/nested/…``), and
  :func:`verify_folder` proves by reading the disk again, with hashes computed here and not by
  git, that every byte is in it. :func:`restore_backup` (``restore``) recreates the worktree.
* **What may go?** :func:`delete_verified` (``delete``) deletes only what the snapshot holds
  byte for byte, or what git ignores; anything written meanwhile is kept.

A backup commit ``B`` has the worktree's HEAD, an index commit ``I`` (tree = the saved index),
a manifest commit (``manifest.json``) and one commit per nested repository as parents, so the
one ref keeps all of it alive; ``git diff HEAD B`` shows the saved changes.

Modules: ``models`` (frozen results), ``gitdata`` (reading a folder as git data), ``snapshot``,
``store``, ``restore``, ``delete``.
"""

from __future__ import annotations

from wtls.backup.delete import delete_verified, deletion_plan, mount_points_inside
from wtls.backup.gitdata import (
    BACKUP_REF_PREFIX,
    NESTED_REF_PREFIX,
    WTLS_IDENTITY,
    BackupChanged,
    BackupError,
    blob_id,
    find_nested,
    object_format,
)
from wtls.backup.models import Backup, Inspection, Nested, NestedSnapshot, RestoreResult
from wtls.backup.restore import branch_checked_out, read_manifest, restore_backup
from wtls.backup.snapshot import OWN_REF_PREFIXES, inspect_worktree, own_refs, verify_folder
from wtls.backup.store import (
    admin_head,
    admin_refs,
    save_backup,
    save_commit,
    save_refs,
    unique_ref,
    unreachable_commits,
)

__all__ = [
    "BACKUP_REF_PREFIX",
    "NESTED_REF_PREFIX",
    "OWN_REF_PREFIXES",
    "WTLS_IDENTITY",
    "Backup",
    "BackupChanged",
    "BackupError",
    "Inspection",
    "Nested",
    "NestedSnapshot",
    "RestoreResult",
    "admin_head",
    "admin_refs",
    "blob_id",
    "branch_checked_out",
    "delete_verified",
    "deletion_plan",
    "find_nested",
    "inspect_worktree",
    "mount_points_inside",
    "object_format",
    "own_refs",
    "read_manifest",
    "restore_backup",
    "save_backup",
    "save_commit",
    "save_refs",
    "unique_ref",
    "unreachable_commits",
    "verify_folder",
]
