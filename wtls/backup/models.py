"""What a worktree folder holds, a backup of it, and a restore: frozen models."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Nested:
    """A git repository inside a worktree folder (at any depth, ignored folders included)."""

    #: Path relative to the worktree folder, with ``/`` separators.
    path: str
    #: ``submodule`` (a gitlink of the index), ``repository`` (any other repository) or
    #: ``worktree`` (a linked worktree, of this repository or another).
    kind: str
    #: Its git dir (resolved from a ``.git`` file when there is one).
    git_dir: Path


@dataclass(frozen=True, kw_only=True)
class NestedSnapshot:
    """A nested repository's state: HEAD, index and raw files."""

    nested: Nested
    head: str | None
    #: ``refs/heads/x`` when HEAD is a branch (born or not), else None.
    symref: str | None
    tree: str
    index_commit: str | None


@dataclass(frozen=True, kw_only=True)
class Inspection:
    """What a worktree folder holds, as the disk and git say, at one moment."""

    folder: Path
    head: str | None
    #: The raw snapshot: every non-ignored file as its bytes on disk (and nested HEADs as
    #: gitlinks).
    tree: str
    #: The index as a tree (conflicted paths as their working-tree content).
    index_tree: str
    #: Paths whose bytes a checkout of HEAD would not give back (changed, untracked, deleted).
    changed: tuple[str, ...]
    #: Whether the index differs from HEAD (something is staged).
    staged: bool
    nested: tuple[Nested, ...]
    nested_snapshots: tuple[NestedSnapshot, ...] = ()
    #: Sparse-checkout set-up: ``{"cone": bool, "patterns": [...]}`` or None.
    sparse: Mapping[str, Any] | None = None
    #: Special files (FIFOs, sockets, devices) that no backup can hold; git ignores them too.
    special: tuple[str, ...] = ()
    #: The worktree's own refs (``refs/worktree/*``, ``refs/bisect/*``): ``(oid, name)``. They
    #: live in its private git folder and go with it.
    own_refs: tuple[tuple[str, str], ...] = ()

    @property
    def worktrees_inside(self) -> tuple[Nested, ...]:
        """Other worktrees whose folders lie inside this one."""
        return tuple(n for n in self.nested if n.kind == "worktree")

    @property
    def repositories_inside(self) -> tuple[Nested, ...]:
        """Nested repositories and submodules (their git data lives in or under this folder)."""
        return tuple(n for n in self.nested if n.kind in ("repository", "submodule"))

    @property
    def unsavable(self) -> tuple[Nested, ...]:
        """What no backup of wtls holds: bare repositories, ``.git`` entries it cannot read."""
        return tuple(n for n in self.nested if n.kind in ("bare", "unknown"))

    def losses(self) -> list[str]:
        """What removing the folder without a backup would lose, one phrase per item."""
        out = list(self.changed)
        if self.staged and not out:
            out.append("staged changes")
        out += [f"{name} (a ref of this worktree only)" for _, name in self.own_refs]
        for n in self.repositories_inside:
            out.append(
                f"{n.path}/ ({'submodule' if n.kind == 'submodule' else 'a git repository'})"
            )
        return out


@dataclass(frozen=True, kw_only=True)
class Backup:
    """A verified backup: one ref that holds everything :func:`restore_backup` needs."""

    ref: str
    commit: str
    #: Changed, untracked and deleted files saved, relative to the worktree.
    files: tuple[str, ...]
    #: Nested repositories and submodules saved (relative paths).
    nested: tuple[str, ...] = ()
    #: Refs made for nested repositories (under ``refs/wtls/nested/``).
    nested_refs: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RestoreResult:
    """``wtls restore``: a worktree recreated from a backup ref."""

    path: Path
    branch: str | None
    head: str | None
    detached: bool
    files: int
    nested: tuple[str, ...] = ()
    message: str = ""
    problems: tuple[str, ...] = field(default_factory=tuple)
