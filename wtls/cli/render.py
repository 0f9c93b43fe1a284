"""How the command line shows things: exit codes, JSON, the worktree table, descriptions."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wtls.errors import Fix
from wtls.jsontext import dumps
from wtls.safety import printable
from wtls.worktrees import RepositoryState, WorktreeState

if TYPE_CHECKING:
    from wtls.semantic import TestsReport


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
        n = sum(len(c.files) for c in wt.conflicts)
        flags.append(f"⚠ {n} predicted conflict{'s' * (n != 1)}")
    return "; ".join(flags)


def agent_text(wt: WorktreeState, *, width: int = 40) -> str:
    """A worktree's agent in a few words: ``waiting: Allow Bash?``, ``working``, ``-``."""
    agent = wt.agent
    if agent is None:
        return "-"
    text = agent.state
    if agent.message and agent.state == "waiting":
        message = printable(agent.message, keep_newlines=False)
        text += f": {message[:width] + '…' if len(message) > width else message}"
    return text


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
    rows = [("", "BRANCH", "HEAD", "VS BASE", "CHANGES", "AGENT", "SIZE", "PATH", "NOTES")]
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
                agent_text(wt),
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
    if wt.agent is not None:
        tool = printable(f"{wt.agent.tool}, " if wt.agent.tool else "", keep_newlines=False)
        lines.append(f"  agent:    {agent_text(wt, width=200)} ({tool}since {wt.agent.since})")
    notes = _flags_text(wt)
    if notes:
        lines.append(f"  notes:    {notes}")
    return "\n".join(lines)


def fix_words(fix: Fix) -> str:
    """A refusal's fix in the terminal: the flag to add (``pass --force``) or the command to
    run (```wtls unlock```)."""
    if fix.option is not None:
        return "pass --" + re.sub(r"([A-Z])", lambda m: "-" + m.group(1).lower(), fix.option)
    return f"`wtls {fix.action}`"


def say_error(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _tail_lines(text: str, n: int = 15) -> list[str]:
    lines = [printable(x, keep_newlines=False) for x in text.rstrip().splitlines()]
    return lines[-n:]


def format_tests(report: TestsReport, *, cwd: Path | None = None) -> str:
    """The human report of ``wtls check --test``: runs, semantic conflicts, failing worktrees."""
    import os

    def where(path: Path) -> str:
        return os.path.relpath(path, cwd) if cwd is not None else str(path)

    def names(paths: tuple[Path, ...], branches: tuple[str | None, ...]) -> str:
        pairs = zip(paths, branches, strict=False)
        return " + ".join(f"{b or 'detached'} ({where(p)})" for p, b in pairs)

    if report.not_run:
        return f"Tests not run: {printable(report.not_run)}"
    out = [f"Tests: {printable(report.command, keep_newlines=False)}"]
    for run in report.runs:
        what = names(run.worktrees, run.branches) if run.worktrees else "base tip"
        status = run.status.upper() if run.status != "pass" else "pass"
        cached = ", cached" if run.cached else ""
        out.append(f"  {status:7} {what} on base ({run.seconds:.1f} s{cached})")
    for c in report.semantic_conflicts:
        out.append(
            f"SEMANTIC CONFLICT: {names(c.worktrees, c.branches)}: each passes alone, "
            "together the tests fail"
        )
        for f in c.failures:
            at = f" ({f.path}:{f.line})" if f.path and f.line else f" ({f.path})" if f.path else ""
            out.append(f"  failing: {printable(f.name, keep_newlines=False)}{at}")
        if not c.failures:
            out.extend(f"  | {line}" for line in _tail_lines(c.output))
    for path in report.failing_alone:
        alone = next((r for r in report.runs if r.worktrees == (path,)), None)
        label = names(alone.worktrees, alone.branches) if alone else where(path)
        out.append(f"FAILS ALONE: {label} fails its tests merged onto base on its own")
        if alone is not None:
            for f in alone.failures:
                at = f" ({f.path}:{f.line})" if f.path and f.line else ""
                out.append(f"  failing: {printable(f.name, keep_newlines=False)}{at}")
            if not alone.failures:
                out.extend(f"  | {line}" for line in _tail_lines(alone.output))
    if report.base_fails:
        out.append("the base branch's tip fails its tests on its own too")
    for skipped, reason in report.skipped:
        out.append(f"not tested {skipped}: {reason}")
    for note in report.notes:
        out.append(f"note: {printable(note)}")
    if report.cancelled:
        out.append("cancelled: the results above are partial")
    elif not report.runs:
        out.append("Nothing to test: no worktree has work of its own.")
    elif not report.has_problems and not any(r.status == "error" for r in report.runs):
        n = len(report.runs)
        out.append(f"No semantic conflict: every test run passed ({n} run{'s' * (n != 1)}).")
    return "\n".join(out)
