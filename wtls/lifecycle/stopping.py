"""Stop Processes: end the processes that use one worktree, without removing it.

The editor's Worktrees view counts the processes using each worktree (:mod:`wtls.processes`)
and offers to end them; this is that action, with the rules ``remove --kill`` uses (SIGTERM,
:data:`~wtls.lifecycle.removal.KILL_GRACE` seconds, then SIGKILL; a pid reused by another
process is left alone; wtls's own process, its children and its ancestors are never
signalled). The person confirms a list; ``pids`` limits the ending to that list, so a process
that started meanwhile is not ended unseen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wtls.errors import Refused
from wtls.lifecycle.common import _start_dir, resolve_worktree
from wtls.lifecycle.removal import KILL_GRACE, _scan_for
from wtls.processes import ProcessUse, stop
from wtls.safety import printable
from wtls.worktrees import discover, repository_state

#: Processes named in one message.
_LISTED = 10


@dataclass(frozen=True, kw_only=True)
class ProcessNotEnded:
    """A process that was asked for and still runs, and why."""

    pid: int
    command: str
    why: str


@dataclass(frozen=True, kw_only=True)
class StopProcessesResult:
    """``wtls.stopProcesses``: which processes using a worktree ended and which did not."""

    path: Path
    branch: str | None
    #: The processes that were ended (SIGTERM, or SIGKILL after the grace period).
    ended: tuple[ProcessUse, ...] = ()
    #: Those still running: permission denied, wtls runs inside it, SIGKILL did not end it.
    not_ended: tuple[ProcessNotEnded, ...] = ()
    #: pids asked for that no longer use the worktree (they ended or left on their own).
    gone: tuple[int, ...] = ()
    message: str = ""


def _names(uses: Sequence[ProcessUse]) -> str:
    shown = ", ".join(f"pid {u.pid} ({u.command})" for u in uses[:_LISTED])
    return printable(shown + (" …" if len(uses) > _LISTED else ""), keep_newlines=False)


def stop_worktree_processes(
    start: Path | str,
    worktree: str,
    *,
    pids: Sequence[int] | None = None,
    grace: float = KILL_GRACE,
) -> StopProcessesResult:
    """End the processes whose cwd, executable or open files lie in ``worktree``.

    ``pids``: end only these (the list the person confirmed); None ends every one found.
    Refused (nothing signalled) when ``worktree`` names no worktree or its folder is gone, or
    a pid is not a positive number.
    """
    if pids is not None:
        bad = [p for p in pids if p <= 0]
        if bad:
            raise Refused(f"pids: {bad[0]} is not a process id; nothing was stopped")
    start_dir = _start_dir(start)
    state = repository_state(discover(start_dir))
    target = resolve_worktree(state, worktree, cwd=start_dir)
    if target.bare or not target.path.is_dir():
        raise Refused(f"{target.path} has no folder on disk: no process can use it")
    scan = _scan_for(state, target)
    if not scan.supported:
        raise Refused(f"{scan.note}; nothing was stopped")
    found = scan.of(target.path)
    own = {u.pid: u for u in scan.ancestors_of(target.path)}
    wanted = set(pids) if pids is not None else {u.pid for u in found}
    targets = [u for u in found if u.pid in wanted]
    not_ended = [
        ProcessNotEnded(
            pid=pid, command=own[pid].command, why="wtls runs inside it: it is never ended"
        )
        for pid in sorted(wanted & own.keys())
    ]
    gone = tuple(sorted(wanted - {u.pid for u in found} - own.keys()))
    failed = stop(targets, scan.starts, grace=grace) if targets else {}
    ended = tuple(u for u in targets if u.pid not in failed)
    not_ended += [
        ProcessNotEnded(pid=u.pid, command=u.command, why=failed[u.pid])
        for u in targets
        if u.pid in failed
    ]
    parts: list[str] = []
    if ended:
        n = len(ended)
        parts.append(f"ended {n} process{'es' * (n != 1)} using {target.path}: {_names(ended)}")
    elif not not_ended:
        parts.append(f"no process to end uses {target.path}")
    if not_ended:
        listed = ", ".join(f"pid {p.pid} ({p.command}): {p.why}" for p in not_ended[:_LISTED])
        parts.append(f"could not end {printable(listed, keep_newlines=False)}")
    if gone:
        parts.append(
            f"{len(gone)} had already ended or left it ({', '.join(map(str, gone[:_LISTED]))})"
        )
    return StopProcessesResult(
        path=target.path,
        branch=target.branch,
        ended=ended,
        not_ended=tuple(not_ended),
        gone=gone,
        message="; ".join(parts),
    )
