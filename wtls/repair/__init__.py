"""Broken worktree links: find them, explain them in plain words, repair them; move worktrees.

All worktrees of a repository share the main worktree's ``.git`` folder. Each linked worktree
has a ``.git`` *file* (``gitdir: <common>/worktrees/<id>``) and each ``worktrees/<id>`` admin
dir has a ``gitdir`` file pointing back at that ``.git`` file. Moving a folder by hand breaks
one of the two directions; :func:`diagnose` names which one, :func:`repair` runs
``git worktree repair`` from whichever side still works and checks both directions afterwards,
and :func:`move` moves a linked worktree the way git supports.

Pure core: no LSP; every git call goes through :func:`wtls.git.run_git`. Nothing here deletes a
user's file: repairs only rewrite the two link files (reported before → after).

Modules: :mod:`~wtls.repair.diagnosis` (:class:`Breakage`, :func:`diagnose`,
:func:`check_link`), :mod:`~wtls.repair.apply` (:func:`repair`), :mod:`~wtls.repair.moving`
(:func:`move`); reading the link files is :mod:`wtls.links`.
"""

from __future__ import annotations

from wtls.links import explain_broken_link
from wtls.repair.apply import LinkChange, RepairResult, repair
from wtls.repair.diagnosis import (
    Breakage,
    BreakageKind,
    check_link,
    describe,
    diagnose,
    is_listed,
    unlisted,
)
from wtls.repair.moving import MoveResult, move

__all__ = [
    "Breakage",
    "BreakageKind",
    "LinkChange",
    "MoveResult",
    "RepairResult",
    "check_link",
    "describe",
    "diagnose",
    "explain_broken_link",
    "is_listed",
    "move",
    "repair",
    "unlisted",
]
