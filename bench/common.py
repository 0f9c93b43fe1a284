"""Shared pieces of the benchmarks: options, statistics, tables, process accounting.

Process figures come from ``/proc`` (Linux only): CPU time of the server itself
(``utime+stime``) and of the git processes it ran and reaped (``cutime+cstime``), context
switches summed over all of its threads (each one a wakeup or a preemption), and ``VmRSS``.
"""

from __future__ import annotations

import asyncio
import datetime
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Clock ticks per second of ``/proc/<pid>/stat`` times.
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, kw_only=True)
class Options:
    """What ``python -m bench`` was asked to do (see ``--help``)."""

    files: int = 10_000
    small_files: int = 50
    worktrees: tuple[int, ...] = (1, 8, 32)
    writes: int = 30
    idle_seconds: float = 60.0
    spawn_runs: int = 5
    gitpython_runs: int = 20
    flood_files: int = 50_000
    checkout_files: int = 5_000
    windows: tuple[int, ...] = (1, 4, 8)
    window_changes: int = 10
    only: tuple[str, ...] = ()
    keep: bool = False
    quick: bool = False
    markdown: Path | None = None
    #: Per-change wait before a change counts as missed.
    timeout: float = 30.0


# ----------------------------------------------------------------------------- statistics
def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) with linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def p50(values: Sequence[float]) -> float:
    """The median."""
    return percentile(values, 50)


def p95(values: Sequence[float]) -> float:
    """The 95th percentile."""
    return percentile(values, 95)


def median(values: Sequence[float]) -> float:
    """The median (nan for no values)."""
    return statistics.median(values) if values else math.nan


def ms(seconds: float) -> str:
    """Seconds as a short milliseconds figure."""
    if math.isnan(seconds):
        return "–"
    value = seconds * 1000
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.1f}"


def ratio(a: float, b: float) -> str:
    """``a / b`` as ``1.23×`` (– when undefined)."""
    if math.isnan(a) or math.isnan(b) or b <= 0:
        return "–"
    return f"{a / b:.2f}×"


def timed(fn: Callable[[], Any]) -> float:
    """Wall seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ----------------------------------------------------------------------------- tables
@dataclass
class Table:
    """A titled table of strings, printed aligned and written as Markdown."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        """Append a row (cells turned into strings)."""
        self.rows.append([str(c) for c in cells])

    def text(self) -> str:
        """Aligned plain text."""
        widths = [len(c) for c in self.columns]
        for row in self.rows:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], len(cell))
        line = "  ".join("-" * w for w in widths)
        out = [f"== {self.title}", _row(self.columns, widths), line]
        out += [_row(r, widths) for r in self.rows]
        out += [f"   {n}" for n in self.notes]
        return "\n".join(out)

    def markdown(self) -> str:
        """A Markdown table with the title as a heading and the notes below it."""
        out = [f"#### {self.title}", "", "| " + " | ".join(self.columns) + " |"]
        out.append("|" + "|".join("---" for _ in self.columns) + "|")
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in self.rows]
        if self.notes:
            out.append("")
            out += [f"- {n}" for n in self.notes]
        return "\n".join(out)


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip()


# ----------------------------------------------------------------------------- /proc
@dataclass(frozen=True, kw_only=True)
class ProcSample:
    """One reading of a process's counters."""

    at: float
    #: CPU seconds of the process itself (all threads).
    cpu: float
    #: CPU seconds of its reaped children (the git processes it ran).
    child_cpu: float
    #: Context switches summed over its threads (voluntary + involuntary).
    switches: int
    rss_mb: float

    @property
    def total_cpu(self) -> float:
        """Own plus children's CPU seconds."""
        return self.cpu + self.child_cpu


def sample(pid: int) -> ProcSample:
    """Read ``pid``'s CPU, children's CPU, context switches and RSS from ``/proc``."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    rest = stat[stat.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(x) for x in rest[11:15])
    switches = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except OSError:
            continue  # the thread ended while we looked
        switches += sum(int(m) for m in re.findall(r"ctxt_switches:\s+(\d+)", text))
    status = Path(f"/proc/{pid}/status").read_text()
    rss = re.search(r"VmRSS:\s+(\d+) kB", status)
    return ProcSample(
        at=time.perf_counter(),
        cpu=(utime + stime) / CLK_TCK,
        child_cpu=(cutime + cstime) / CLK_TCK,
        switches=switches,
        rss_mb=int(rss.group(1)) / 1024 if rss else math.nan,
    )


def thread_switches(pid: int) -> dict[str, int]:
    """Context switches per thread name (``comm``), to see which thread wakes up."""
    out: dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            text = (task / "status").read_text()
        except OSError:
            continue
        n = sum(int(m) for m in re.findall(r"ctxt_switches:\s+(\d+)", text))
        out[name] = out.get(name, 0) + n
    return out


async def settle(pids: Iterable[int], quiet: float = 0.3, limit: float = 30.0) -> float:
    """Wait until the processes used no CPU tick for ``quiet`` seconds (at most ``limit``).

    Returns the seconds waited. Background work a change started (conflict prediction, marker
    scans) must be over before the next change, or one change's cost would leak into the next.
    """
    pids = list(pids)
    start = time.perf_counter()
    last = sum(sample(p).total_cpu for p in pids)
    quiet_since = time.perf_counter()
    while time.perf_counter() - start < limit:
        await asyncio.sleep(0.05)
        now = sum(sample(p).total_cpu for p in pids)
        if now != last:
            last = now
            quiet_since = time.perf_counter()
        elif time.perf_counter() - quiet_since >= quiet:
            break
    return time.perf_counter() - start


# ----------------------------------------------------------------------------- machine
def machine() -> dict[str, str]:
    """Where the figures come from: cores, CPU model, RAM, git, Python, OS, date."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        ram = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, AttributeError):
        pass
    git = subprocess.run(["git", "--version"], capture_output=True, text=True, check=False)
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": ram,
        "git": git.stdout.strip().removeprefix("git version "),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


# ----------------------------------------------------------------------------- run context
@dataclass
class Context:
    """What every benchmark shares in one run: options, scratch folder, server env, results."""

    options: Options
    root: Path
    #: Extra environment for server processes (hermetic HOME, no system git config).
    env: dict[str, str] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    #: RSS (MB) of a server on the main worktree, per (repository name, worktree count).
    rss: dict[tuple[str, int], float] = field(default_factory=dict)
    #: (target, figure, met) lines for the summary.
    verdicts: list[tuple[str, str, bool | None]] = field(default_factory=list)
    #: Floors that do not depend on the repository, measured once per run.
    floors: dict[str, tuple[float, float]] = field(default_factory=dict)

    def table(self, key: str, title: str, columns: list[str]) -> Table:
        """The table ``key``, created on first use (both repositories add rows to it)."""
        if key not in self.tables:
            self.tables[key] = Table(title, columns)
        return self.tables[key]

    def verdict(self, target: str, figure: str, met: bool | None) -> None:
        """Record whether a target of the issue is met (None: could not be measured)."""
        self.verdicts.append((target, figure, met))
        mark = {True: "met", False: "MISSED", None: "not measured"}[met]
        print(f"   target: {target}: {figure} -> {mark}", flush=True)


def log(message: str) -> None:
    """Progress line on stderr (tables go to stdout)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
