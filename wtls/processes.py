"""Which processes use a worktree folder: working directory, open files, executable.

A removal must not pull a folder out from under a dev server, a test runner or a watcher
(issue 15). This module answers "who is in there" for a set of folders at once, read-only:

* **Linux**: ``/proc/PID/{cwd,exe,fd/*,maps}``. Processes come and go while it reads (a vanished
  one is skipped); other users' processes are normally unreadable (permission denied): they are
  counted in :attr:`ProcessScan.uninspected`, never guessed at.
* **macOS** (and other systems with it): ``lsof -n -P -F pcfn``.
* **elsewhere**: :attr:`ProcessScan.supported` is False and :attr:`ProcessScan.note` says wtls
  cannot tell.

wtls's own process is never counted (the CLI often runs with its working directory inside the
worktree it removes), nor are its children (the git commands a server runs meanwhile). Its
ancestors (the shell it was started from, an agent that ran it) are reported apart, in
:attr:`ProcessScan.ancestors`: one whose only tie is its working directory does not block a
removal (like ``git worktree remove``, it is left in a deleted folder and is told to ``cd``
out); one with files open inside does, and is never signalled by :func:`stop`.

A path belongs to the deepest folder of the scan that holds it, so a process inside a worktree
nested in another is that nested worktree's, not the outer one's.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wtls.links import folder_prefix
from wtls.safety import printable

#: How a process is tied to a folder, strongest first (one entry per process and folder).
CWD = "cwd"
EXECUTABLE = "executable"
OPEN_FILE = "open file"
_RANK = {CWD: 0, EXECUTABLE: 1, OPEN_FILE: 2}
#: Longest command line shown.
_COMMAND_LIMIT = 200
#: Seconds ``lsof`` may take.
_LSOF_TIMEOUT = 20.0


@dataclass(frozen=True, kw_only=True)
class ProcessUse:
    """One process tied to a folder, and how (``reason``: cwd, executable or open file)."""

    pid: int
    command: str
    reason: str
    #: The path inside the folder (its working directory, the executable or the open file).
    path: Path


@dataclass(frozen=True, kw_only=True)
class ProcessScan:
    """The processes found in each folder of one scan."""

    #: Folder (as given) → processes tied to it, by pid; wtls's own ancestors excluded.
    found: dict[Path, tuple[ProcessUse, ...]] = field(default_factory=dict)
    #: Folder → wtls's own ancestors tied to it (the shell it runs from, an agent that ran it).
    ancestors: dict[Path, tuple[ProcessUse, ...]] = field(default_factory=dict)
    #: Processes that could not be read (another user's: permission denied).
    uninspected: int = 0
    #: False when this system gives wtls no way to tell (then ``found`` is empty).
    supported: bool = True
    #: pid → start time, to never signal a pid reused by another process.
    starts: dict[int, str] = field(default_factory=dict)

    def of(self, folder: Path) -> tuple[ProcessUse, ...]:
        """The processes tied to ``folder`` (one of the scanned folders)."""
        return self.found.get(folder, ())

    def ancestors_of(self, folder: Path) -> tuple[ProcessUse, ...]:
        """wtls's own ancestors tied to ``folder``."""
        return self.ancestors.get(folder, ())

    @property
    def note(self) -> str | None:
        """What the scan could not see, in one sentence, or None."""
        if not self.supported:
            return "wtls cannot tell which processes use a folder on this system"
        if self.uninspected:
            return (
                f"{self.uninspected} process{'es' * (self.uninspected != 1)} of other users "
                "could not be inspected"
            )
        return None


def describe(use: ProcessUse) -> str:
    """``pid 123 (sleep 300): cwd /path``, control characters escaped."""
    return printable(f"pid {use.pid} ({use.command}): {use.reason} {use.path}", keep_newlines=False)


def _real(folder: Path) -> str:
    return os.path.realpath(folder)


class _Owners:
    """Maps a path to the deepest scanned folder holding it."""

    def __init__(self, folders: Sequence[Path]) -> None:
        reals = [(_real(f), f) for f in folders]
        self._folders = sorted(
            ((real, folder_prefix(real), f) for real, f in reals), key=lambda p: -len(p[0])
        )

    def owner(self, path: str) -> Path | None:
        path = path.removesuffix(" (deleted)")
        for real, inside, folder in self._folders:
            if path == real or path.startswith(inside):
                return folder
        return None


def _ancestors(me: int | None = None) -> set[int]:
    """The pids of wtls's parent (or ``me``'s), its parent, and so on (Linux ``/proc``; ``ps``
    elsewhere)."""
    found: set[int] = set()
    pid = os.getppid() if me is None else (_parent_of(me) or 0)
    for _ in range(64):
        if pid <= 1 or pid in found:
            break
        found.add(pid)
        parent = _parent_of(pid)
        if parent is None:
            break
        pid = parent
    return found


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
        return int(stat.rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        pass
    ps = shutil.which("ps")
    if ps is None:
        return None
    try:
        out = subprocess.run(
            [ps, "-o", "ppid=", "-p", str(pid)], capture_output=True, text=True, timeout=5
        ).stdout
        return int(out.strip())
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def _descends_from(pid: int, ancestor: int) -> bool:
    """Whether ``ancestor`` is ``pid``'s parent, grandparent, ... (Linux ``/proc``)."""
    seen: set[int] = set()
    current: int | None = pid
    while current is not None and current > 1 and current not in seen:
        seen.add(current)
        try:
            stat = Path(f"/proc/{current}/stat").read_text(encoding="utf-8", errors="replace")
            current = int(stat.rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if current == ancestor:
            return True
    return False


def _proc_command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        raw = b""
    args = [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]
    if not args:
        try:
            return Path(f"/proc/{pid}/comm").read_text(errors="replace").strip() or "?"
        except OSError:
            return "?"
    text = shlex.join(args)
    return text if len(text) <= _COMMAND_LIMIT else text[: _COMMAND_LIMIT - 1] + "…"


def _has_proc() -> bool:
    """Whether this system has Linux's ``/proc`` (pids' start times can be read)."""
    return sys.platform.startswith("linux") and Path("/proc/self/stat").exists()


def _proc_start(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
        return stat.rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return None


def _links_of(pid: int) -> list[tuple[str, str]]:
    """What :func:`_proc_links` finds for ``pid``, through a live thread if its first ended.

    A process whose first thread called ``pthread_exit`` shows that thread as a zombie with no
    cwd, open files or executable, while its other threads run on (and write) with them: they
    are read from ``/proc/PID/task/TID``. Raises as :func:`_proc_links` does.
    """
    try:
        return list(_proc_links(f"/proc/{pid}"))
    except (FileNotFoundError, PermissionError) as exc:
        first = exc
    try:
        threads = [t for t in os.listdir(f"/proc/{pid}/task") if t != str(pid)]
    except OSError:
        threads = []
    for tid in threads:
        with contextlib.suppress(FileNotFoundError, PermissionError):
            return list(_proc_links(f"/proc/{pid}/task/{tid}"))
    raise first


def _proc_links(base: str) -> Iterator[tuple[str, str]]:
    """``(reason, target)`` for a process's cwd, executable, open files and mapped files.

    ``base``: its ``/proc/PID`` (or one thread's ``/proc/PID/task/TID``). Raises
    PermissionError when the process is not ours to read, FileNotFoundError when it is gone.
    """
    yield CWD, os.readlink(f"{base}/cwd")
    try:
        exe: str | None = os.readlink(f"{base}/exe")
    except FileNotFoundError:
        exe = None  # a kernel thread, or a zombie
    if exe is not None:
        yield EXECUTABLE, exe
    try:
        fds = os.listdir(f"{base}/fd")
    except FileNotFoundError:
        fds = []
    for fd in fds:
        try:
            target = os.readlink(f"{base}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("/"):
            yield OPEN_FILE, target
    try:
        with open(f"{base}/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[5].startswith("/"):
                    yield OPEN_FILE, parts[5].rstrip("\n")
    except OSError:
        pass


def _scan_proc(
    owners: _Owners, asker: int | None
) -> tuple[list[tuple[Path, ProcessUse]], int, dict[int, str]]:
    hits: list[tuple[Path, ProcessUse]] = []
    uninspected = 0
    starts: dict[int, str] = {}
    left_out = {os.getpid(), asker}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in left_out:
            continue
        pid = int(name)
        best: dict[Path, tuple[str, str]] = {}
        try:
            for reason, target in _links_of(pid):
                folder = owners.owner(target)
                if folder is None:
                    continue
                known = best.get(folder)
                if known is None or _RANK[reason] < _RANK[known[0]]:
                    best[folder] = (reason, target.removesuffix(" (deleted)"))
        except PermissionError:
            uninspected += 1
            continue
        except (FileNotFoundError, ProcessLookupError):
            continue  # it ended meanwhile
        except OSError:
            uninspected += 1
            continue
        if not best or any(_descends_from(pid, p) for p in left_out if p is not None):
            continue  # wtls's own children (and the asker's): the git commands run meanwhile
        command = _proc_command(pid)
        start = _proc_start(pid)
        if start is not None:
            starts[pid] = start
        for folder, (reason, target) in best.items():
            hits.append(
                (folder, ProcessUse(pid=pid, command=command, reason=reason, path=Path(target)))
            )
    return hits, uninspected, starts


def parse_lsof(text: str, owners_of: Sequence[Path]) -> list[tuple[Path, ProcessUse]]:
    """Processes tied to ``owners_of`` in ``lsof -F pcfn`` output (p, c, f and n lines)."""
    owners = _Owners(owners_of)
    me = os.getpid()
    hits: list[tuple[Path, ProcessUse]] = []
    pid = 0
    command = "?"
    fd = ""
    best: dict[tuple[int, Path], tuple[str, str, str]] = {}
    for line in text.splitlines():
        tag, value = line[:1], line[1:]
        if tag == "p":
            pid = int(value) if value.isdigit() else 0
            command = "?"
        elif tag == "c":
            command = value
        elif tag == "f":
            fd = value
        elif tag == "n" and pid and pid != me:
            folder = owners.owner(value)
            if folder is None:
                continue
            reason = CWD if fd == "cwd" else EXECUTABLE if fd == "txt" else OPEN_FILE
            known = best.get((pid, folder))
            if known is None or _RANK[reason] < _RANK[known[0]]:
                best[(pid, folder)] = (reason, value, command)
    for (pid, folder), (reason, path, command) in best.items():
        hits.append((folder, ProcessUse(pid=pid, command=command, reason=reason, path=Path(path))))
    return hits


def _scan_lsof(lsof: str, folders: Sequence[Path]) -> list[tuple[Path, ProcessUse]] | None:
    try:
        proc = subprocess.run(
            [lsof, "-n", "-P", "-w", "-F", "pcfn"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_LSOF_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    # lsof exits 1 when some files could not be listed; its output is still good.
    if proc.returncode not in (0, 1):
        return None
    return parse_lsof(proc.stdout, folders)


def scan(folders: Iterable[Path], *, asker: int | None = None) -> ProcessScan:
    """The processes whose cwd, executable or open files lie in each of ``folders``.

    ``asker``: scan for that process (the engine answering a CLI call): it is left out and its
    ancestors are the ones set apart, as wtls's own are when it scans for itself. Blocking
    (reads every process once); call it off the event loop.
    """
    wanted = list(dict.fromkeys(folders))
    owners = _Owners(wanted)
    starts: dict[int, str] = {}
    uninspected = 0
    if sys.platform.startswith("linux") and Path("/proc/self/cwd").exists():
        hits, uninspected, starts = _scan_proc(owners, asker)
    else:
        lsof = shutil.which("lsof")
        found = _scan_lsof(lsof, wanted) if lsof is not None else None
        if found is None:
            return ProcessScan(supported=False)
        hits = found
    parents = _ancestors(asker)
    found_map: dict[Path, list[ProcessUse]] = {}
    ancestor_map: dict[Path, list[ProcessUse]] = {}
    for folder, use in sorted(hits, key=lambda h: h[1].pid):
        target = ancestor_map if use.pid in parents else found_map
        target.setdefault(folder, []).append(use)
    return ProcessScan(
        found={k: tuple(v) for k, v in found_map.items()},
        ancestors={k: tuple(v) for k, v in ancestor_map.items()},
        uninspected=uninspected,
        starts=starts,
    )


def blockers(scan_result: ProcessScan, folder: Path) -> tuple[ProcessUse, ...]:
    """What keeps ``folder`` from being removed: its processes, and ancestors with files open."""
    return scan_result.of(folder) + tuple(
        u for u in scan_result.ancestors_of(folder) if u.reason != CWD
    )


def _alive(pid: int, start: str | None) -> bool:
    """Whether ``pid`` still runs as the same process (a zombie does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return False
    except OSError:
        stat = ""
    if stat:
        fields = stat.rpartition(")")[2].split()
        if fields and fields[0] in ("Z", "X") and not _threads_left(pid):
            return False
        # A different start time: the pid now belongs to another process.
        return start is None or len(fields) <= 19 or fields[19] == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: Why a pid whose start time cannot be read is not signalled.
UNVERIFIED = (
    "its start time could not be read, so it cannot be told apart from a process that took "
    "its pid later: not signalled"
)


def _threads_left(pid: int) -> bool:
    """Whether a zombie ``pid`` still has running threads (its first thread ended alone)."""
    try:
        return any(t != str(pid) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return False


def _signal(pid: int, sig: int, start: str | None) -> str | None:
    """Send ``sig``; None when sent (or the process is already gone), else why not.

    Where ``/proc`` gives start times, a pid is signalled only while its start time is the
    scanned one: a pid whose start time was not read at the scan, or cannot be read now (a
    hidden ``/proc``, a race with its end), is left alone rather than risk another process.
    """
    if not _alive(pid, start):
        return None
    if _has_proc() and (start is None or _proc_start(pid) != start):
        return UNVERIFIED
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return None
    except PermissionError:
        return "permission denied"
    return None


def _wait_gone(pids: Iterable[int], starts: dict[int, str], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    left = [p for p in pids if _alive(p, starts.get(p))]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if _alive(p, starts.get(p))]
    return left


def stop(
    uses: Sequence[ProcessUse], starts: dict[int, str], *, grace: float = 5.0
) -> dict[int, str]:
    """End ``uses``: SIGTERM, up to ``grace`` seconds, then SIGKILL; pid → why it still runs.

    A pid whose start time differs from the scan's (reused by another process) is left alone.
    """
    pids = list(dict.fromkeys(u.pid for u in uses))
    failed: dict[int, str] = {}
    for pid in pids:
        why = _signal(pid, signal.SIGTERM, starts.get(pid))
        if why is not None:
            failed[pid] = why
    left = _wait_gone([p for p in pids if p not in failed], starts, grace)
    for pid in left:
        why = _signal(pid, signal.SIGKILL, starts.get(pid))
        if why is not None:
            failed[pid] = why
    for pid in _wait_gone([p for p in left if p not in failed], starts, 5.0):
        failed[pid] = "still running after SIGKILL"
    return failed
