"""How the command line shows things: exit codes, JSON, the worktree table, descriptions."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wtls.jsontext import dumps
from wtls.safety import printable
from wtls.worktrees import RepositoryState, WorktreeState

if TYPE_CHECKING:
    pass


EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_ERROR = 2

Handler = Callable[[argparse.Namespace], int]


def print_json(obj: Any) -> None:
    """Print a result object as stable, indented JSON, always valid UTF-8 (see
    :mod:`wtls.jsontext`), written as bytes so the terminal's encoding does not matter."""
    text = dumps(obj, indent=2) + "\n"
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a text-only stream (tests redirecting stdout)
        sys.stdout.write(text)
        return
    sys.stdout.flush()
    buffer.write(text.encode("utf-8"))


def _changes_text(wt: WorktreeState) -> str:
    s = wt.status
    parts = []
    if s.staged:
        parts.append(f"+{s.staged} staged")
    if s.unstaged:
        parts.append(f"~{s.unstaged} modified")
    if s.untracked:
        parts.append(f"?{s.untracked} untracked")
    if s.conflicted:
        parts.append(f"!{s.conflicted} conflicted")
    return ", ".join(parts) or "clean"


def _flags_text(wt: WorktreeState) -> str:
    flags = []
    if wt.is_main:
        flags.append("main")
    if wt.broken:
        flags.append("BROKEN")
    if wt.prunable:
        flags.append("prunable (folder gone)")
    if wt.locked:
        reason = printable(wt.lock_reason or "", keep_newlines=False)
        flags.append(f"locked: {reason}" if reason else "locked")
    if wt.operation:
        flags.append(f"{wt.operation} in progress")
    if wt.base is not None and wt.base.merged:
        flags.append(f"merged into {wt.base.branch}")
    if wt.conflicts:
        n = sum(len(c.get("files", ())) for c in wt.conflicts)
        flags.append(f"⚠ {n} predicted conflict{'s' * (n != 1)}")
    return "; ".join(flags)


def human_size(n: int | None) -> str:
    """Bytes as a short human string."""
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "K", "M", "G"):
        if size < 1024 or unit == "G":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}T"


def format_table(state: RepositoryState, this: Path | None, reclaimable: int | None = None) -> str:
    """The human table of ``wtls list`` (``reclaimable``: bytes ``prune --merged`` frees)."""
    rows = [("", "BRANCH", "HEAD", "VS BASE", "CHANGES", "SIZE", "PATH", "NOTES")]
    for wt in state.worktrees:
        branch = wt.branch or ("(bare)" if wt.bare else f"(detached {(wt.head or '')[:7]})")
        vs_base = f"↑{wt.base.ahead} ↓{wt.base.behind}" if wt.base else "-"
        notes = _flags_text(wt)
        if wt.ports:
            notes = "; ".join(filter(None, [notes, " ".join(f"{k}={v}" for k, v in wt.ports)]))
        rows.append(
            (
                "*" if this is not None and wt.path == this else "",
                branch,
                (wt.head or "-")[:7],
                vs_base,
                "-" if wt.prunable or wt.bare else _changes_text(wt),
                human_size(wt.disk_bytes),
                str(wt.path),
                notes,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r[:-1])) + "  " + r[-1]
        for r in rows
    ]
    total = sum(w.disk_bytes or 0 for w in state.worktrees)
    n = len(state.worktrees)
    footer = f"{n} worktree{'' if n == 1 else 's'}; base branch: {state.base_branch or '(none)'}"
    if any(w.disk_bytes is not None for w in state.worktrees):
        footer += f"; total size {human_size(total)}"
    if reclaimable:
        footer += f"; {human_size(reclaimable)} reclaimable (`wtls prune --merged`)"
    return "\n".join([*(line.rstrip() for line in lines), footer])


def describe_worktree(wt: WorktreeState) -> str:
    """A few readable lines about one worktree (for ``wtls status`` and the demo)."""
    branch = wt.branch or f"detached at {(wt.head or '')[:7]}"
    lines = [
        f"worktree {wt.path}",
        f"  branch:   {branch}" + (" (main worktree)" if wt.is_main else ""),
    ]
    if wt.base is not None:
        merged = ", merged" if wt.base.merged else ""
        lines.append(
            f"  vs {wt.base.branch}: ↑{wt.base.ahead} ahead, ↓{wt.base.behind} behind{merged}"
        )
    if wt.status.upstream:
        lines.append(f"  upstream: {wt.status.upstream} ↑{wt.status.ahead} ↓{wt.status.behind}")
    lines.append(f"  changes:  {_changes_text(wt)}")
    notes = _flags_text(wt)
    if notes:
        lines.append(f"  notes:    {notes}")
    return "\n".join(lines)


def say_error(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
