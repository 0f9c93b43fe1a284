"""Sessions (issue 12's targets): N editor sessions on N worktrees, before and after the engine.

Each mode starts sessions the way editors do, one ``python -m wtls serve ...`` subprocess per
session over stdio with an LSP client each, one after the other on the first N worktrees of the
generated repository (``--windows``, default 1, 4, 8; the repository has max(N) worktrees):

- **before**: ``serve --no-daemon`` (one whole server per session, today's design);
- **after**: ``serve`` (a forwarder per session relaying to the repository's engine), only when
  ``python -m wtls serve --help`` lists ``--no-daemon``; otherwise only the in-process mode runs
  (``serve``) and the table says so.

Every figure counts **every wtls process**: the sessions, the engines of this run (command line
``wtls engine``, found through ``/proc`` and the run's own ``WTLS_RUNTIME_DIR``), their
descendants, and the git children they reaped (``utime+stime+cutime+cstime`` of
``/proc/<pid>/stat``, sampled before and after). Per mode and N: processes watching the
repository (an ``anon_inode:inotify`` fd), start-up CPU of the first session and of each further
one (from launch until every process is quiet again), CPU per change (a toggle of
``toggle.txt`` in the main worktree) and the arrival of the change at the last session. With
N = 1 (a session on A): change → ``wtls/worktrees`` against the ``git status`` floor, and an
unsaved edit (didChange, no save) of ``conflict.txt`` → its conflict Warning. A separate session
on B: change in A → conflict diagnostic in B against the snapshot+merge floor (both floors and
that session are ``bench_latency``'s). With the largest N: idle CPU of all processes, RSS of the
engine and of each session, and ``wtls check --json`` wall time (Python's start included) with
the sessions (hence the engine) running and alone (``--no-daemon``, when it exists) against the
raw floor: a snapshot of every worktree and ``merge-tree --stdin`` of every pair and of each
with the base branch. Last, RSS with the largest ``--worktrees`` count (32 by default).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.bench_latency import (
    IDENTITY,
    conflict_content,
    conflict_in_b,
    conflict_warning_is,
    snapshot_merge_floor,
    status_floor,
    toggle_content,
)
from bench.common import CLK_TCK, Context, log, median, ms, p50, p95
from bench.driver import Server, serving, start_server, unstaged_is
from bench.repo import CONFLICT_CLEAN, TOGGLE_CLEAN, BenchRepo
from wtls.git import scrubbed_env

#: Seconds of the idle measurement at most (the issue asks for 30–60 s; two modes run).
IDLE_CAP = 30.0
#: Unsaved edits at most (each waits for the Warning to come or go, then for quiet).
UNSAVED_EDITS = 20


def check_runs(ctx: Context) -> int:
    """Runs of ``wtls check`` (and of its floor) per variant."""
    return 2 if ctx.options.quick else 3


def refresh_indexes(repo: BenchRepo) -> None:
    """``git status`` in every worktree, as a user's own git commands would have run: a fresh
    checkout's index has racily clean entries, which make every snapshot re-read every file
    (the check floor was 3× slower on 10,000 files) until git rewrites the index."""
    for wt in repo.worktrees:
        subprocess.run(["git", "status", "--porcelain"], cwd=wt, capture_output=True, check=False)


@dataclass(frozen=True)
class Mode:
    """How sessions are started in one half of the comparison."""

    name: str
    label: str
    serve: tuple[str, ...]
    #: Whether sessions talk to an engine (processes to find, an engine to stop).
    daemon: bool


@dataclass
class ModeResult:
    """What one mode measured (for the verdicts)."""

    mode: Mode
    watchers: dict[int, int] = field(default_factory=dict)
    further_startup: dict[int, float] = field(default_factory=dict)
    cpu_per_change: dict[int, float] = field(default_factory=dict)
    last_seen: dict[int, list[float]] = field(default_factory=dict)
    missed: int = 0


# ----------------------------------------------------------------------------- /proc
def _scan() -> dict[int, tuple[int, float, str]]:
    """Every process: (parent pid, CPU seconds incl. reaped children, command name)."""
    out: dict[int, tuple[int, float, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue  # gone while we looked
        rest = text[text.rindex(")") + 2 :].split()
        ticks = sum(int(x) for x in rest[11:15])
        out[int(entry.name)] = (
            int(rest[1]),
            ticks / CLK_TCK,
            text[text.index("(") + 1 : text.rindex(")")],
        )
    return out


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (a.decode(errors="replace").partition("=") for a in raw.split(b"\0") if a)
    return {k: v for k, _, v in pairs}


def _is_engine(args: Sequence[str]) -> bool:
    """``python -m wtls engine ...`` or the ``wtls engine ...`` console script."""
    return any(os.path.basename(a) == "wtls" and b == "engine" for a, b in itertools.pairwise(args))


def rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` in MB (nan when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class Processes:
    """Every wtls process of one mode: its sessions, its engines, and their descendants."""

    def __init__(self, runtime_dir: Path, scratch: Path) -> None:
        self.runtime_dir = str(runtime_dir)
        self.scratch = str(scratch.resolve()) + os.sep

    def engines(self, table: Mapping[int, tuple[int, float, str]] | None = None) -> list[int]:
        """Engines started with this mode's ``WTLS_RUNTIME_DIR`` (never another run's)."""
        out = []
        for pid, (_, _, name) in (table if table is not None else _scan()).items():
            if not name.startswith(("python", "wtls")):
                continue  # the command line is read only where it can be an engine's
            args = _cmdline(pid)
            if _is_engine(args) and (
                _environ(pid).get("WTLS_RUNTIME_DIR") == self.runtime_dir
                or self._repository(args).startswith(self.scratch)
            ):
                out.append(pid)
        return out

    @staticmethod
    def _repository(args: Sequence[str]) -> str:
        """The engine's ``--repository`` argument (an engine whose environment was cleaned
        is still found by its repository under this run's scratch folder)."""
        for flag, value in itertools.pairwise(args):
            if flag == "--repository":
                return os.path.realpath(value)
            if flag.startswith("--repository="):
                return os.path.realpath(flag.partition("=")[2])
        return ""

    def tree(self, sessions: Iterable[int]) -> dict[int, float]:
        """CPU seconds of every wtls process and its live descendants, by pid."""
        table = _scan()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        todo = [p for p in [*sessions, *self.engines(table)] if p in table]
        out: dict[int, float] = {}
        while todo:
            pid = todo.pop()
            if pid in out:
                continue
            out[pid] = table[pid][1]
            todo += children.get(pid, [])
        return out

    def cpu(self, sessions: Iterable[int]) -> float:
        """CPU seconds of all of them (a live git child's own time: it is not reaped yet)."""
        return sum(self.tree(sessions).values())

    def inotify(self, sessions: Iterable[int]) -> dict[int, int]:
        """``anon_inode:inotify`` fds per process that has any."""
        out: dict[int, int] = {}
        for pid in self.tree(sessions):
            count = 0
            with suppress(OSError):
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    with suppress(OSError):
                        if os.readlink(fd) == "anon_inode:inotify":
                            count += 1
            if count:
                out[pid] = count
        return out

    async def settle(self, sessions: Sequence[int], quiet: float, limit: float = 60.0) -> None:
        """Wait until none of them used a CPU tick for ``quiet`` seconds (at most ``limit``)."""
        start = time.perf_counter()
        last = self.cpu(sessions)
        quiet_since = start
        while time.perf_counter() - start < limit:
            await asyncio.sleep(0.1)  # a /proc scan costs a few ms: not at 20 Hz
            now = self.cpu(sessions)
            if now != last:
                last, quiet_since = now, time.perf_counter()
            elif time.perf_counter() - quiet_since >= quiet:
                return

    def stop_engines(self, env: Mapping[str, str], folder: Path, daemon_cli: bool) -> None:
        """``wtls daemon stop`` (when it exists), then end whatever engine of ours is left."""
        if daemon_cli and self.engines():
            with suppress(subprocess.TimeoutExpired):
                subprocess.run(
                    [sys.executable, "-m", "wtls", "daemon", "stop", "-C", str(folder)],
                    env={**os.environ, **env},
                    capture_output=True,
                    check=False,
                    timeout=30,
                )
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            pids = self.engines()
            if not pids:
                return
            if sig is not None:
                for pid in pids:
                    with suppress(ProcessLookupError):
                        os.kill(pid, sig)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and set(pids) & set(self.engines()):
                time.sleep(0.05)


# ----------------------------------------------------------------------------- modes
def _help(*args: str) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "wtls", *args, "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return proc.returncode, proc.stdout


@dataclass(frozen=True)
class Installed:
    """What the installed wtls offers."""

    modes: tuple[Mode, ...]
    check_alone: tuple[str, ...]
    daemon_cli: bool
    note: str


def installed() -> Installed:
    """The modes to compare, from ``python -m wtls serve --help`` and friends."""
    serve = _help("serve")[1]
    check = _help("check")[1]
    daemon_cli = _help("daemon", "stop")[0] == 0
    alone = ("--no-daemon",) if "--no-daemon" in check else ()
    if "--no-daemon" in serve:
        modes = (
            Mode("before", "serve --no-daemon", ("serve", "--no-daemon"), daemon=False),
            Mode("after", "serve (engine)", ("serve",), daemon=True),
        )
        return Installed(modes, alone, daemon_cli, "")
    note = (
        "this wtls has no `serve --no-daemon`: only the in-process mode (one server per "
        "session) was measured"
    )
    return Installed((Mode("before", "serve (in-process)", ("serve",), False),), alone, False, note)


# ----------------------------------------------------------------------------- floors
def check_floor(repo: BenchRepo, base: str = "main") -> float:
    """The raw git work of ``wtls check``: snapshot every worktree (index copy, ``add -A``,
    ``write-tree``, ``commit-tree``), then one ``merge-tree --stdin`` of every pair and of each
    with the base branch. Wall seconds."""

    def git(cwd: Path, args: Sequence[str], env: Mapping[str, str], data: str = "") -> str:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, env=dict(env), input=data, capture_output=True, text=True
        )
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"git {args[0]} failed: {proc.stderr.strip()}")
        return proc.stdout.strip()

    commit_env = scrubbed_env(IDENTITY)
    start = time.perf_counter()
    commits: list[str] = []
    with tempfile.TemporaryDirectory(prefix="wtls-bench-check-") as tmp:
        temp_index = Path(tmp) / "index"
        env = scrubbed_env({"GIT_INDEX_FILE": str(temp_index)})
        for wt in repo.worktrees:
            shutil.copy2(repo.index_file(wt), temp_index)
            git(wt, ["add", "-A"], env)
            tree = git(wt, ["write-tree"], env)
            commits.append(git(wt, ["commit-tree", tree, "-p", "HEAD", "-m", "s"], commit_env))
    pairs = [*itertools.combinations(commits, 2), *((c, base) for c in commits)]
    stdin = "".join(f"{a} {b}\n" for a, b in pairs)
    git(repo.main, ["merge-tree", "--write-tree", "--stdin", "-z"], commit_env, stdin)
    return time.perf_counter() - start


def cached_bytecode_env(ctx: Context) -> dict[str, str]:
    """The environment of a ``wtls check`` run whose Python reads and writes bytecode caches,
    as on a normal installation: these machines set ``PYTHONDONTWRITEBYTECODE=1`` and wtls is
    installed editable (no ``.pyc`` of its own), so every other wtls process here compiles
    every module it imports again (≈ 0.2–0.3 s of a CLI call). The caches go to a private
    ``PYTHONPYCACHEPREFIX`` folder of this run (nothing else sees them); one untimed run
    fills them."""
    return {
        **ctx.env,
        "PYTHONDONTWRITEBYTECODE": "",
        "PYTHONPYCACHEPREFIX": str(ctx.root / "pycache"),
    }


def check_wall(repo: BenchRepo, env: Mapping[str, str], extra: Sequence[str] = ()) -> float:
    """Wall seconds of ``python -m wtls check --json`` in the main worktree (start included)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "wtls", "check", "--json", *extra],
        cwd=repo.main,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    took = time.perf_counter() - start
    if proc.returncode not in (0, 1) or not proc.stdout.startswith("{"):
        raise RuntimeError(f"wtls check failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    return took


# ----------------------------------------------------------------------------- the runs
def _pids(servers: Sequence[Server]) -> list[int]:
    return [s.pid for s in servers]


async def _unsaved_edits(
    ctx: Context, procs: Processes, server: Server, path: Path
) -> tuple[list[float], int]:
    """didChange of ``path`` (open in ``server``) between a conflicting line 10 and main's text:
    latencies until the conflict Warning appears or goes; nothing is saved."""
    server.open_document(path)
    await procs.settle([server.pid], quiet=0.8, limit=120)
    latencies: list[float] = []
    missed = 0
    edits = min(ctx.options.writes, UNSAVED_EDITS)
    for i in range(edits):
        want = i % 2 == 0
        start = time.perf_counter()
        server.change_document(path, conflict_content(i), version=i + 2)
        try:
            got = await server.wait_diagnostics(
                path, conflict_warning_is(want), start, ctx.options.timeout
            )
            latencies.append(got.at - start)
        except TimeoutError:
            missed += 1
        await procs.settle([server.pid], quiet=0.5)
    server.change_document(path, CONFLICT_CLEAN, version=edits + 2)
    return latencies, missed


async def _sessions(
    ctx: Context,
    repo: BenchRepo,
    found: Installed,
    mode: Mode,
    n: int,
    procs: Processes,
    result: ModeResult,
) -> None:
    """N sessions started one after another; their start-up, changes, and (N = max) idle."""
    o = ctx.options
    last_n = n == max(o.windows)
    changes = max(o.window_changes, o.writes) if n == 1 else o.window_changes
    toggle = repo.main / "toggle.txt"
    table = ctx.tables["sessions"]
    async with AsyncExitStack() as stack:
        servers: list[Server] = []
        startups: list[float] = []
        own: list[float] = []  # the session's own process (and its reaped children)
        for folder in repo.worktrees[:n]:
            before = procs.cpu(_pids(servers))
            server = await stack.enter_async_context(start_server(folder, env=ctx.env))
            servers.append(server)
            await procs.settle(_pids(servers), quiet=1.0, limit=300)
            tree = procs.tree(_pids(servers))
            startups.append(sum(tree.values()) - before)
            own.append(tree.get(server.pid, float("nan")))
        pids = _pids(servers)
        watching = procs.inotify(pids)
        result.watchers[n] = len(watching)
        log(f"sessions [{mode.name}] N={n}: started, {changes} changes")
        before = procs.cpu(pids)
        seen: list[float] = []
        missed = 0
        for i in range(changes):
            want = 1 if i % 2 == 0 else 0
            start = time.perf_counter()
            toggle.write_text(toggle_content(i))
            arrivals = []
            for server in servers:
                try:
                    got = await server.wait_state(unstaged_is(repo.main, want), start, o.timeout)
                    arrivals.append(got.at - start)
                except TimeoutError:
                    missed += 1
            if len(arrivals) == n:
                seen.append(max(arrivals))
            await procs.settle(pids, quiet=0.5)
        per_change = (procs.cpu(pids) - before) / changes
        toggle.write_text(TOGGLE_CLEAN)
        await procs.settle(pids, quiet=0.5)
        result.cpu_per_change[n] = per_change
        result.last_seen[n] = seen
        result.missed += missed
        further = startups[1:]
        if further:
            result.further_startup[n] = max(further)
        first = result.cpu_per_change.get(1)
        table.add(
            mode.label,
            n,
            f"{len(watching)} ({sum(watching.values())})",
            f"{startups[0]:.2f}",
            f"{median(further):.2f} / {max(further):.2f}" if further else "–",
            f"{median(own[1:]):.2f} / {max(own[1:]):.2f}" if further else f"{own[0]:.2f}",
            f"{sum(startups):.1f}",
            ms(per_change),
            f"{per_change / first:.2f}" if first else "–",
            f"{ms(p50(seen))} / {ms(p95(seen))}",
            missed,
        )
        if n == 1:
            await _single(ctx, repo, mode, procs, servers[0], seen, missed)
        if last_n:
            await _idle_and_check(ctx, repo, found, mode, procs, servers)


async def _single(
    ctx: Context,
    repo: BenchRepo,
    mode: Mode,
    procs: Processes,
    server: Server,
    seen: list[float],
    missed: int,
) -> None:
    """N = 1 (the session on A): change → wtls/worktrees vs git status; unsaved edit → Warning."""
    floor = ctx.floors["sessions-status"]
    edits, emissed = await _unsaved_edits(ctx, procs, server, repo.main / "conflict.txt")
    ctx.tables["sessions-latency"].add(
        mode.label,
        "change in A → wtls/worktrees in A's session",
        f"{ms(floor[0])} / {ms(floor[1])} (git status)",
        f"{ms(p50(seen))} / {ms(p95(seen))}",
        f"≤ {ms(floor[1] + 0.060)}",
        missed,
    )
    ctx.tables["sessions-latency"].add(
        mode.label,
        "unsaved edit of conflict.txt in A → its Warning in A's session",
        "–",
        f"{ms(p50(edits))} / {ms(p95(edits))}",
        "≤ 150",
        emissed,
    )
    over = p95(seen) - floor[1]
    ctx.verdict(
        f"[{mode.name}] change → wtls/worktrees p95 ≤ git status floor + 60 ms, none missed",
        f"p95 − floor = {ms(over)} ms, {missed} missed",
        over <= 0.060 and missed == 0,
    )
    ctx.verdict(
        f"[{mode.name}] unsaved edit → conflict Warning p95 ≤ 150 ms (20-line file)",
        f"p95 {ms(p95(edits))} ms, {emissed} missed",
        p95(edits) <= 0.150 and emissed == 0,
    )


async def _idle_and_check(
    ctx: Context,
    repo: BenchRepo,
    found: Installed,
    mode: Mode,
    procs: Processes,
    servers: Sequence[Server],
) -> None:
    """With every session of the largest N running: idle CPU, RSS, and ``wtls check``."""
    o = ctx.options
    pids = _pids(servers)
    seconds = min(o.idle_seconds, IDLE_CAP)
    log(f"sessions [{mode.name}]: idle {seconds:.0f} s with {len(pids)} sessions")
    await procs.settle(pids, quiet=1.5, limit=120)
    start, before = time.perf_counter(), procs.cpu(pids)
    await asyncio.sleep(seconds)
    idle = (procs.cpu(pids) - before) / (time.perf_counter() - start)
    sessions_rss = [rss_mb(p) for p in pids]
    engines = procs.engines()
    engine_rss = max((rss_mb(p) for p in engines), default=float("nan"))
    ctx.tables["sessions-idle"].add(
        mode.label,
        len(pids),
        len(repo.worktrees),
        f"{seconds:.0f}",
        f"{idle:.4f}",
        f"{engine_rss:.0f}" if engines else "– (no engine)",
        f"{min(sessions_rss):.0f} / {max(sessions_rss):.0f}",
    )
    ctx.verdict(
        f"[{mode.name}] idle: engine + {len(pids)} sessions < 0.01 CPU-s/s",
        f"{idle:.4f} CPU-s/s",
        idle < 0.01,
    )
    ctx.verdict(
        f"[{mode.name}] each session ≤ 40 MB RSS",
        f"{max(sessions_rss):.0f} MB (largest of {len(pids)})",
        max(sessions_rss) <= 40,
    )

    # wtls check: A has a change that conflicts with B, the sessions have seen it.
    log(f"sessions [{mode.name}]: wtls check --json")
    a_file = repo.main / "conflict.txt"
    a_file.write_text(conflict_content(0))
    try:
        await procs.settle(pids, quiet=1.0, limit=120)
        runs = check_runs(ctx)
        running: list[float] = []
        alone: list[float] = []
        cached: list[float] = []
        env = ctx.env
        warm = cached_bytecode_env(ctx)
        check_wall(repo, warm, found.check_alone)  # fills the bytecode caches, not timed
        for _ in range(runs):
            if mode.daemon:
                running.append(check_wall(repo, env))
            if found.check_alone or not mode.daemon:
                alone.append(check_wall(repo, env, found.check_alone))
                cached.append(check_wall(repo, warm, found.check_alone))
            await procs.settle(pids, quiet=0.5)
    finally:
        a_file.write_text(CONFLICT_CLEAN)
    floor = ctx.floors["sessions-check"][0]
    alone_label = "`wtls check --json" + "".join(f" {a}" for a in found.check_alone) + "`"
    rows = [("with the engine running: `wtls check --json`", running)] if mode.daemon else []
    rows += [(f"without an engine: {alone_label}", alone)] if alone else []
    rows += [(f"without an engine, bytecode cached: {alone_label}", cached)] if cached else []
    for label, walls in rows:
        ctx.tables["sessions-check"].add(
            mode.label,
            label,
            len(repo.worktrees),
            runs,
            ms(floor),
            ms(median(walls)),
            f"{median(walls) / floor:.2f}×",
        )
    if mode.daemon:
        ctx.verdict(
            f"[{mode.name}] wtls check --json, engine running, nothing changed ≤ 0.5× raw floor",
            f"{median(running) / floor:.2f}× ({ms(median(running))} vs {ms(floor)} ms)",
            median(running) <= 0.5 * floor,
        )
    if alone:
        ctx.verdict(
            f"[{mode.name}] wtls check --json without an engine ≤ 2× raw floor",
            f"{median(alone) / floor:.2f}× ({ms(median(alone))} vs {ms(floor)} ms)",
            median(alone) <= 2 * floor,
        )
        ctx.verdict(
            f"[{mode.name}] wtls check --json without an engine ≤ 2× raw floor, bytecode cached "
            "(as installed)",
            f"{median(cached) / floor:.2f}× ({ms(median(cached))} vs {ms(floor)} ms)",
            median(cached) <= 2 * floor,
        )


async def run(ctx: Context, repo: BenchRepo) -> None:
    """The sessions benchmark on ``repo`` (both modes when the installed wtls has them)."""
    o = ctx.options
    found = installed()
    repo.set_worktrees(max(max(o.windows), 2))
    repo.reset()
    refresh_indexes(repo)
    _tables(ctx, found)
    log(f"sessions: {repo.name}, floors; modes: {', '.join(m.label for m in found.modes)}")
    floor = status_floor(repo, o.writes)
    ctx.floors["sessions-status"] = (p50(floor), p95(floor))
    sfloor = snapshot_merge_floor(repo, o.writes)
    (repo.main / "conflict.txt").write_text(conflict_content(0))
    checks = [check_floor(repo) for _ in range(check_runs(ctx))]
    (repo.main / "conflict.txt").write_text(CONFLICT_CLEAN)
    ctx.floors["sessions-check"] = (median(checks), p95(checks))
    for mode in found.modes:
        runtime = ctx.root / f"rt-{mode.name}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        mctx = replace(
            ctx,
            env={
                **ctx.env,
                "WTLS_RUNTIME_DIR": str(runtime),
                "WTLS_ENGINE_IDLE_TIMEOUT": "300",  # a safety net; engines are stopped below
            },
        )
        procs = Processes(runtime, ctx.root)
        result = ModeResult(mode)
        try:
            with serving(mode.serve):
                for n in o.windows:
                    log(f"sessions [{mode.name}]: {n} sessions on {repo.name}")
                    await _sessions(mctx, repo, found, mode, n, procs, result)
                    procs.stop_engines(mctx.env, repo.main, found.daemon_cli)
                log(f"sessions [{mode.name}]: session on B, {o.writes} writes in A")
                diag, _, cmissed = await conflict_in_b(mctx, repo)
        except Exception as exc:  # one mode failing must not lose the other's figures
            log(f"sessions [{mode.name}] failed: {type(exc).__name__}: {exc}")
            ctx.verdict(f"[{mode.name}] sessions benchmark", f"failed: {exc}", None)
            _verdicts(ctx, result)
            repo.reset()
            continue
        finally:
            procs.stop_engines(mctx.env, repo.main, found.daemon_cli)
        target = 1.5 * p95(sfloor) + 0.100
        ctx.tables["sessions-latency"].add(
            mode.label,
            "change in A → conflict diagnostic in B's session",
            f"{ms(p50(sfloor))} / {ms(p95(sfloor))} (snapshot+merge)",
            f"{ms(p50(diag))} / {ms(p95(diag))}",
            f"≤ {ms(target)}",
            cmissed,
        )
        ctx.verdict(
            f"[{mode.name}] conflict diagnostic p95 ≤ 1.5 × snapshot+merge floor + 100 ms, "
            "none missed",
            f"p95 {ms(p95(diag))} ms vs {ms(target)} ms, {cmissed} missed",
            p95(diag) <= target and cmissed == 0,
        )
        _verdicts(ctx, result)


def _verdicts(ctx: Context, r: ModeResult) -> None:
    """The N-session targets of the issue for one mode."""
    top = max(ctx.options.windows)
    name = r.mode.name
    if top in r.watchers:
        ctx.verdict(
            f"[{name}] exactly one process watches the repository (N = {top})",
            f"{r.watchers[top]} processes with an inotify fd",
            r.watchers[top] == 1,
        )
    if top in r.further_startup:
        worst = r.further_startup[top]
        ctx.verdict(
            f"[{name}] each session after the first adds ≤ 0.3 CPU-s at start-up (N = {top})",
            f"at most {worst:.2f} CPU-s",
            worst <= 0.3,
        )
    one, many = r.cpu_per_change.get(1), r.cpu_per_change.get(top)
    if one and many is not None and top > 1:
        ctx.verdict(
            f"[{name}] CPU per change at N = {top} ≤ 1.3 × N = 1 (all processes)",
            f"{many / one:.2f}× ({ms(many)} vs {ms(one)} ms)",
            many <= 1.3 * one,
        )
    if 1 in r.last_seen and top in r.last_seen and top > 1:
        a, b = p95(r.last_seen[1]), p95(r.last_seen[top])
        ctx.verdict(
            f"[{name}] last session sees a change p95 ≤ N = 1's p95 + 50 ms (N = {top})",
            f"{ms(b)} vs {ms(a)} ms, {r.missed} missed",
            b <= a + 0.050 and r.missed == 0,
        )


def _tables(ctx: Context, found: Installed) -> None:
    table = ctx.table(
        "sessions",
        "6. N sessions on N worktrees (every wtls process: sessions, engine, git children)",
        [
            "mode",
            "N",
            "processes watching (inotify fds)",
            "start-up CPU s: first",
            "further p50 / max",
            "own process p50 / max",
            "all",
            "CPU ms/change",
            "vs N=1",
            "last session sees it p50/p95 ms",
            "missed",
        ],
    )
    if not table.notes:
        table.notes.append(
            "sessions started one after another, each with its own `python -m wtls serve` over "
            "stdio; start-up: CPU of all processes from a session's launch until all are quiet "
            "(after: the first includes the engine's start); own process: the session's process "
            "alone (further sessions; N = 1: the first); CPU/change: a toggle of "
            "toggle.txt in the main worktree, until every process is quiet"
        )
        if found.note:
            table.notes.append(found.note)
    ctx.table(
        "sessions-latency",
        "6b. latencies per mode (ms)",
        ["mode", "what", "floor p50/p95", "p50/p95", "target p95", "missed"],
    )
    ctx.table(
        "sessions-check",
        "6c. `wtls check --json` wall time (Python's start included) vs the raw floor (ms, median)",
        ["mode", "command", "worktrees", "runs", "raw floor", "wall", "vs floor"],
    ).notes[:] = [
        "raw floor: a snapshot of every worktree (index copy, add -A, write-tree, commit-tree) "
        "and one `merge-tree --stdin` of every pair and each with main, timed before any "
        "session starts; A has a change that conflicts with B, already seen by the sessions",
        "bytecode cached: Python reads and writes `.pyc` files (a private PYTHONPYCACHEPREFIX, "
        "filled by one untimed run), as on a normal installation; the other rows run as "
        "every wtls process here does, with PYTHONDONTWRITEBYTECODE=1 and an editable "
        "install, compiling each module it imports",
    ]
    ctx.table(
        "sessions-idle",
        "6d. idle, every session of the largest N open, and RSS (MB)",
        [
            "mode",
            "sessions",
            "worktrees",
            "seconds",
            "CPU-s/s (all)",
            "engine RSS",
            "session RSS min / max",
        ],
    )


async def rss_many(ctx: Context, repo: BenchRepo, worktrees: int) -> None:
    """RSS of one session (and of the engine) with ``worktrees`` worktrees, per mode."""
    found = installed()
    repo.set_worktrees(worktrees)
    repo.reset()
    table = ctx.table(
        "sessions-rss",
        "6e. RSS with many worktrees, one session on the main worktree (MB)",
        ["mode", "worktrees", "session RSS", "engine RSS"],
    )
    for mode in found.modes:
        runtime = ctx.root / f"rt-{mode.name}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        env = {**ctx.env, "WTLS_RUNTIME_DIR": str(runtime), "WTLS_ENGINE_IDLE_TIMEOUT": "300"}
        procs = Processes(runtime, ctx.root)
        log(f"sessions [{mode.name}]: RSS with {worktrees} worktrees")
        try:
            with serving(mode.serve):
                async with start_server(repo.main, env=env) as server:
                    await procs.settle([server.pid], quiet=1.5, limit=300)
                    session = rss_mb(server.pid)
                    engines = procs.engines()
                    engine = max((rss_mb(p) for p in engines), default=float("nan"))
        except Exception as exc:  # keep the other mode's figure
            log(f"sessions [{mode.name}]: RSS step failed: {type(exc).__name__}: {exc}")
            ctx.verdict(f"[{mode.name}] RSS with {worktrees} worktrees", f"failed: {exc}", None)
            continue
        finally:
            procs.stop_engines(env, repo.main, found.daemon_cli)
        table.add(mode.label, worktrees, f"{session:.0f}", f"{engine:.0f}" if engines else "–")
        # Before: the one server is what an engine replaces, so its RSS is the comparable figure.
        heavy = engine if engines else session
        ctx.verdict(
            f"[{mode.name}] engine RSS ≤ 150 MB with {worktrees} worktrees"
            + ("" if engines else " (the in-process server)"),
            f"{heavy:.0f} MB",
            heavy <= 150,
        )
