"""Branch and worktree problems, as editor-neutral models.

The server turns each :class:`Problem` into an LSP diagnostic; ``wtls status`` and ``wtls demo``
print them. Where they are placed is part of the protocol (see README "Diagnostics"):

* problems of a worktree's branch or state sit on line 1 of that worktree's ``HEAD`` file in
  its git dir (``.git/HEAD`` for the main worktree, ``.git/worktrees/<id>/HEAD`` for a linked
  one): the file that records what is checked out there;
* a broken link sits on the linked worktree's ``.git`` file, the file that is broken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from wtls.safety import printable
from wtls.worktrees import RepositoryState, WorktreeState

Severity = Literal["error", "warning", "information", "hint"]

_OPERATION_ADVICE = {
    "merge": "resolve the conflicts and `git commit`, or `git merge --abort`",
    "rebase": "resolve, `git add`, then `git rebase --continue`, or `git rebase --abort`",
    "am": "`git am --continue` after resolving, or `git am --abort`",
    "cherry-pick": "resolve and `git cherry-pick --continue`, or `git cherry-pick --abort`",
    "revert": "resolve and `git revert --continue`, or `git revert --abort`",
    "bisect": "mark commits with `git bisect good|bad`, finish with `git bisect reset`",
}


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One thing a user should know, anchored to a file and a line range (0-based)."""

    path: Path
    severity: Severity
    code: str
    message: str
    line: int = 0
    end_line: int | None = None
    character: int = 0
    #: None means "to the end of the line".
    end_character: int | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for a terminal: ``severity path:line: message``."""
        return f"{self.severity:<11} {self.path}:{self.line + 1}: {self.message}"


def anchor_file(worktree: WorktreeState) -> Path | None:
    """Where a worktree's own problems are shown: its git dir's ``HEAD`` file."""
    if worktree.gitdir is None:
        return None
    return worktree.gitdir / "HEAD"


def short(oid: str | None) -> str:
    """A commit id shortened for messages."""
    return oid[:7] if oid else "(none)"


def worktree_problems(
    state: RepositoryState, worktree: WorktreeState, *, far_behind: int = 50
) -> list[Problem]:
    """Problems of one worktree's branch and state."""
    if worktree.broken is not None:
        dotgit = worktree.path / ".git"
        return [
            Problem(
                path=dotgit,
                severity="error",
                code="broken-link",
                message=f"git cannot use this worktree: {worktree.broken}. "
                f"Run `wtls repair {worktree.path}` to see what can be fixed.",
                data={"worktree": str(worktree.path)},
            )
        ]
    anchor = anchor_file(worktree)
    if anchor is None or worktree.bare or worktree.prunable:
        return []
    found: list[Problem] = []
    name = worktree.branch or f"detached HEAD at {short(worktree.head)}"

    def add(severity: Severity, code: str, message: str) -> None:
        found.append(
            Problem(
                path=anchor,
                severity=severity,
                code=code,
                message=message,
                data={"worktree": str(worktree.path)},
            )
        )

    if worktree.agent is not None and worktree.agent.others:
        sessions = ", ".join([worktree.agent.session or "?", *worktree.agent.others])
        add(
            "warning",
            "two-agents",
            f"Two agent sessions ({printable(sessions, keep_newlines=False)}) worked in this "
            "worktree within a minute: they overwrite each other's files. Give each agent its "
            "own worktree (`wtls spawn NAME`).",
        )
    if worktree.head is None:
        add(
            "information",
            "no-commits",
            "This repository has no commits yet: make a first "
            "commit before adding worktrees or predicting conflicts.",
        )
    if worktree.detached and worktree.head is not None and worktree.operation is None:
        add(
            "warning",
            "detached-head",
            f"HEAD is detached at {short(worktree.head)} in {worktree.path}: new commits here "
            "belong to no branch and are easy to lose. Create a branch with "
            "`git switch -c <name>`.",
        )
    if worktree.operation is not None:
        conflicted = worktree.status.conflicted
        extra = f" with {conflicted} conflicted file{'s' * (conflicted != 1)}" if conflicted else ""
        add(
            "warning",
            f"{worktree.operation}-in-progress",
            f"A {worktree.operation} is in progress in {worktree.path}{extra}: "
            f"{_OPERATION_ADVICE[worktree.operation]}.",
        )
    if worktree.locked:
        reason = f": {worktree.lock_reason}" if worktree.lock_reason else ""
        add(
            "information",
            "locked",
            f"Worktree {worktree.path} is locked{reason}. It cannot be removed, moved or "
            f"pruned until `wtls unlock {worktree.path}`.",
        )
    base = worktree.base
    if base is not None and base.merged and worktree.operation is None:
        if worktree.dirty:
            add(
                "information",
                "merged",
                f"{name} is already merged into {base.branch}, but this worktree has "
                "uncommitted changes: commit or discard them before removing it.",
            )
        else:
            add(
                "information",
                "merged",
                f"{name} is already merged into {base.branch}: this worktree is safe to remove "
                f"(`wtls remove {worktree.path}`).",
            )
    if base is not None and base.behind >= far_behind:
        add(
            "warning",
            "far-behind",
            f"{name} is {base.behind} commits behind {base.branch}: merge or rebase "
            f"{base.branch} soon, or the merge back will be hard.",
        )
    return found


def stale_problems(state: RepositoryState) -> list[Problem]:
    """Problems that concern the whole repository: stale (prunable) worktree entries."""
    found: list[Problem] = []
    for wt in state.worktrees:
        if not wt.prunable:
            continue
        anchor = anchor_file(wt)
        if anchor is None:
            continue
        why = f" ({wt.prunable_reason})" if wt.prunable_reason else ""
        locked = (
            " It is locked, so prune keeps it until `wtls unlock` — or restore the folder."
            if wt.locked
            else ""
        )
        found.append(
            Problem(
                path=anchor,
                severity="warning",
                code="prunable",
                message=f"The folder of worktree {wt.path} is gone{why}, but git still records "
                f"it (branch {wt.branch or short(wt.head)} cannot be checked out elsewhere). "
                f"If you moved the folder, run `wtls repair <new path>` to reconnect it; if "
                f"you deleted it, run `wtls prune` to forget it.{locked}",
                data={"worktree": str(wt.path)},
            )
        )
    return found
