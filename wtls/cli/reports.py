"""What ``wtls list``, ``status`` and ``check`` print, from a state already read.

One place for both ways of answering: the CLI working alone (it reads the repository itself) and
the repository's running engine (:mod:`wtls.cli.answers`, from its live state and its
predictor's cache). Each function returns the exact text to print and the exit code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from wtls.cli.render import EXIT_OK, EXIT_REFUSED, describe_worktree, format_table
from wtls.jsontext import dumps
from wtls.predict import Prediction, format_prediction
from wtls.processes import describe as describe_process
from wtls.processes import scan as scan_processes
from wtls.safety import printable
from wtls.wire import wire_object
from wtls.worktrees import RepositoryState, repository_payload


@dataclass(frozen=True)
class Report:
    """A command's whole answer: what it prints on stdout and its exit code."""

    stdout: str
    code: int = EXIT_OK


def json_text(obj: object) -> str:
    """Stable, indented JSON (always valid UTF-8 once encoded; see :mod:`wtls.jsontext`)."""
    return dumps(obj, indent=2) + "\n"


def as_read_alone(state: RepositoryState, *, sizes: bool) -> RepositoryState:
    """``state`` as the CLI reading the repository alone has it: without what only a running
    engine knows (predicted conflicts, the merge order, the process scan), sizes only when
    measured."""
    from wtls.lifecycle import reclaimable_bytes

    worktrees = tuple(
        replace(
            w,
            conflicts=(),
            processes=None,
            disk_bytes=w.disk_bytes if sizes else None,
        )
        for w in state.worktrees
    )
    alone = replace(state, worktrees=worktrees, merge_order=None)
    return replace(alone, reclaimable_bytes=reclaimable_bytes(alone))


def list_report(state: RepositoryState, folder: Path, *, as_json: bool) -> Report:
    """``wtls list``: every worktree (the one containing ``folder`` marked)."""
    this_wt = state.find(folder)
    this = this_wt.path if this_wt else None
    if as_json:
        return Report(json_text(wire_object(repository_payload(state, this))))
    from wtls.lifecycle import reclaimable_bytes

    return Report(format_table(state, this, reclaimable_bytes(state)) + "\n")


def status_report(
    state: RepositoryState, folder: Path, *, as_json: bool, asker: int | None = None
) -> Report:
    """``wtls status`` of the worktree containing ``folder`` (a listed one: the CLI explains
    broken and unlisted worktrees itself). ``asker``: the pid of the CLI process the engine
    answers for (left out of the processes, like the CLI leaves itself out)."""
    from wtls.problems import stale_problems, worktree_problems

    wt = state.find(folder)
    problems = stale_problems(state)
    if wt is not None:
        problems = worktree_problems(state, wt) + problems
    # Scanned together, so a process in a worktree nested inside this one stays that one's.
    scan = scan_processes([w.path for w in state.worktrees if w.path.is_dir()], asker=asker)
    using = scan.of(wt.path) if wt is not None else ()
    broken = wt is not None and wt.broken is not None
    code = EXIT_REFUSED if broken else EXIT_OK
    if as_json:
        payload = wire_object(repository_payload(state, wt.path if wt else None))
        payload["processes"] = [wire_object(u) for u in using]
        payload["problems"] = [
            {
                "path": str(p.path),
                "line": p.line + 1,
                "severity": p.severity,
                "code": p.code,
                "message": p.message,
            }
            for p in problems
        ]
        return Report(json_text(payload), code)
    lines: list[str] = []
    if wt is None:
        lines.append(f"{folder} is not inside a worktree of {state.repository.common_dir}")
    else:
        lines.append(describe_worktree(wt))
    lines += [f"  process: {describe_process(use)}" for use in using]
    if scan.note and wt is not None:
        lines.append(f"  note: {scan.note}")
    lines += [f"  {p.severity}: {printable(p.message)}" for p in problems]
    return Report("".join(line + "\n" for line in lines), code)


def check_report(prediction: Prediction, *, as_json: bool, order: bool, cwd: Path) -> Report:
    """``wtls check`` without tests: the predicted conflicts (exit 1 when there are some)."""
    code = EXIT_REFUSED if prediction.has_conflicts else EXIT_OK
    if as_json:
        return Report(json_text(wire_object(prediction.check_payload())), code)
    return Report(format_prediction(prediction, cwd=cwd, order=order) + "\n", code)
