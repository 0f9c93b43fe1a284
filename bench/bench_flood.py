"""Floods (issue benchmark 4): an ``npm install`` and a ``git checkout`` in one worktree.

npm: ``--flood-files`` files (50 per package, in ``lib/`` and ``dist/``) created in
``node_modules/`` (ignored by ``.gitignore``) of a linked worktree by a separate process. Floor:
no refresh at all, and the OS cost of creating the files (the same writer, timed once into an
unwatched folder). checkout: ``git checkout flood`` in that worktree rewrites
``--checkout-files`` tracked files. Floor: one refresh, and the checkout's own cost (timed once
with no server running).

Refreshes are counted exactly: the server runs with a ``git`` wrapper first on its PATH that logs
every git command; each refresh runs ``git worktree list`` once. ``wtls/worktrees`` requests are
sent mid-flood (at 25, 50 and 75 % of the npm flood; every 100 ms while the checkout runs); their
latencies are reported (median and worst) against the same request on an idle server.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.common import Context, log, median, ms, ratio, sample, settle
from bench.driver import Server, start_server
from bench.repo import BenchRepo, git, make_git_wrapper

WRITER = """
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
marks = {n // 4, n // 2, 3 * n // 4}
for i in range(n):
    pkg, k = divmod(i, 50)
    d = os.path.join(root, "pkg%04d" % pkg, "lib" if k % 2 else "dist")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%02d.js" % k), "w") as f:
        f.write("module.exports = %d;\\n" % i)
    if i in marks:
        print("mark", flush=True)
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_timed(argv: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of a blocking command (its CPU from RUSAGE_CHILDREN)."""
    cpu0 = _children_cpu()
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start, _children_cpu() - cpu0


async def _timed_request(server: Server, out: list[float]) -> None:
    start = time.perf_counter()
    await server.request_worktrees()
    out.append(time.perf_counter() - start)


async def _poll_requests(
    server: Server, stop: asyncio.Event, interval: float, out: list[float]
) -> None:
    while not stop.is_set():
        await _timed_request(server, out)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


def _git_calls(log_file: Path) -> list[str]:
    try:
        return log_file.read_text().splitlines()
    except FileNotFoundError:
        return []


async def _measure(
    server: Server,
    log_file: Path,
    proc_argv: list[str],
    cwd: Path,
    interval: float | None,
) -> dict[str, float]:
    """Run the flood process; refreshes, CPU, and request latencies during it.

    Requests go out each time the process prints a line (the npm writer marks 25, 50 and 75 %)
    and, with ``interval``, that often while it runs. Polling stops when the process ends, so
    the CPU figure (taken once the server is quiet again) includes only those few requests.
    """
    await settle([server.pid], quiet=0.8, limit=120)
    log_file.write_text("")
    before = sample(server.pid)
    latencies: list[float] = []
    stop = asyncio.Event()
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *proc_argv, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    poller = (
        asyncio.create_task(_poll_requests(server, stop, interval, latencies))
        if interval is not None
        else None
    )
    marked: list[asyncio.Task[None]] = []
    assert proc.stdout is not None and proc.stderr is not None
    while line := await proc.stdout.readline():
        if line.strip() == b"mark":
            marked.append(asyncio.create_task(_timed_request(server, latencies)))
    err = await proc.stderr.read()
    await proc.wait()
    duration = time.perf_counter() - start
    stop.set()
    if poller is not None:
        await poller
    await asyncio.gather(*marked)
    if proc.returncode != 0:
        raise RuntimeError(f"flood process failed: {err.decode().strip()}")
    await settle([server.pid], quiet=1.0, limit=300)
    after = sample(server.pid)
    calls = _git_calls(log_file)
    return {
        "duration": duration,
        "refreshes": sum(1 for c in calls if c.startswith("worktree list")),
        "status": sum(1 for c in calls if c.startswith("status")),
        "git": len(calls),
        "cpu": after.total_cpu - before.total_cpu,
        "notifications": len(server.states(start)),
        "req_median": median(latencies),
        "req_max": max(latencies) if latencies else float("nan"),
        "requests": len(latencies),
    }


async def run(ctx: Context, repo: BenchRepo) -> None:
    """Benchmark 4 for ``repo``."""
    repo.set_worktrees(max(3, min(8, max(ctx.options.worktrees))))
    repo.reset()
    target = repo.worktrees[2]
    n_files = ctx.options.flood_files
    n_checkout = min(ctx.options.checkout_files, repo.generated)
    wrapper = make_git_wrapper(ctx.root / "gitwrap")
    log_file = ctx.root / f"gitlog-{repo.name}.txt"
    env = {
        **ctx.env,
        "PATH": f"{wrapper}:{ctx.env.get('PATH', '')}",
        "WTLS_BENCH_GITLOG": str(log_file),
    }
    writer = [sys.executable, "-c", WRITER]

    log(f"flood: {repo.name}: floors ({n_files} files written, checkout of {n_checkout})")
    if "npm" not in ctx.floors:  # the OS's cost does not depend on the repository
        scratch = ctx.root / "unwatched-node_modules"
        ctx.floors["npm"] = _run_timed([*writer, str(scratch), str(n_files)], ctx.root)
        shutil.rmtree(scratch)
    npm_floor = ctx.floors["npm"]
    branch = git(target, "branch", "--show-current")
    checkout_floor = _run_timed(["git", "checkout", "-q", "flood"], target)
    git(target, "checkout", "-q", branch)

    log(f"flood: {repo.name}: with the server on {target.name}")
    async with start_server(target, env=env) as server:
        await settle([server.pid], quiet=0.8, limit=120)
        idle: list[float] = []
        for _ in range(10):
            start = time.perf_counter()
            await server.request_worktrees()
            idle.append(time.perf_counter() - start)
        npm = await _measure(
            server, log_file, [*writer, str(target / "node_modules"), str(n_files)], target, None
        )
        checkout = await _measure(server, log_file, ["git", "checkout", "-q", "flood"], target, 0.1)
        # Put things back (not measured).
        git(target, "checkout", "-q", branch)
        await asyncio.to_thread(shutil.rmtree, target / "node_modules")
        await settle([server.pid], quiet=0.5, limit=120)

    table = ctx.table(
        "flood",
        "4. floods in one worktree (server on that worktree)",
        [
            "repo",
            "flood",
            "flood time",
            "refreshes (floor)",
            "git calls",
            "notifications",
            "server CPU s (floor: the flood's own)",
            "request ms median / worst (idle)",
            "requests",
        ],
    )
    for name, figures, floor, floor_refreshes in (
        (f"npm: {n_files} ignored files", npm, npm_floor, 0),
        (f"checkout: {n_checkout} files", checkout, checkout_floor, 1),
    ):
        table.add(
            repo.name,
            name,
            f"{figures['duration']:.1f} s",
            f"{figures['refreshes']:.0f} ({floor_refreshes})",
            f"{figures['git']:.0f} ({figures['status']:.0f} status)",
            f"{figures['notifications']:.0f}",
            f"{figures['cpu']:.2f} ({floor[1]:.2f}, {ratio(figures['cpu'], floor[1])})",
            f"{ms(figures['req_median'])} / {ms(figures['req_max'])} ({ms(median(idle))})",
            f"{figures['requests']:.0f}",
        )
    if not table.notes:
        table.notes.append(
            "refreshes: `git worktree list` runs (one per refresh) counted by a logging git "
            "wrapper; server CPU: own + git children from the flood's start until 1 s quiet; "
            "requests: `wtls/worktrees` sent at 25/50/75 % of the npm flood, every 100 ms "
            "during the checkout"
        )
