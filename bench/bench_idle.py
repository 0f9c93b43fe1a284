"""Idle cost (issue benchmark 3): CPU and wakeups of a server watching many worktrees, no change.

The server is started on the main worktree of a repository with the largest worktree count,
left to finish its start-up work (quiet for 2 s), then measured over ``--idle-seconds``: CPU
seconds of the process and of its git children from ``/proc/<pid>/stat``, context switches
summed over all its threads (each one a wakeup), per thread name to see who wakes, and RSS.
The floor is 0: nothing changed, so nothing needs doing.
"""

from __future__ import annotations

import asyncio

from bench.common import Context, log, sample, settle, thread_switches
from bench.driver import start_server
from bench.repo import BenchRepo


async def run(ctx: Context, repo: BenchRepo, worktrees: int) -> None:
    """Benchmark 3 for ``repo`` with ``worktrees`` worktrees."""
    repo.set_worktrees(worktrees)
    repo.reset()
    seconds = ctx.options.idle_seconds
    log(f"idle: {repo.name}, {worktrees} worktrees, {seconds:.0f} s")
    async with start_server(repo.main, env=ctx.env) as server:
        await settle([server.pid], quiet=1.5, limit=300)
        before = sample(server.pid)
        threads_before = thread_switches(server.pid)
        await asyncio.sleep(seconds)
        after = sample(server.pid)
        threads_after = thread_switches(server.pid)
        extra = len(server.states(before.at))
    elapsed = after.at - before.at
    cpu = (after.cpu - before.cpu) / elapsed
    child = (after.child_cpu - before.child_cpu) / elapsed
    wakeups = (after.switches - before.switches) / elapsed
    by_thread = {
        name: (threads_after.get(name, 0) - count) / elapsed
        for name, count in threads_before.items()
    }
    busiest = sorted(by_thread.items(), key=lambda kv: -kv[1])[:3]
    table = ctx.table(
        "idle",
        "3. idle server, no change (floor 0)",
        [
            "repo",
            "worktrees",
            "seconds",
            "CPU s/s (server)",
            "CPU s/s (git children)",
            "wakeups/s",
            "busiest threads (wakeups/s)",
            "notifications",
            "RSS MB",
        ],
    )
    table.add(
        repo.name,
        worktrees,
        f"{elapsed:.0f}",
        f"{cpu:.4f}",
        f"{child:.4f}",
        f"{wakeups:.1f}",
        ", ".join(f"{name} {rate:.1f}" for name, rate in busiest),
        extra,
        f"{after.rss_mb:.0f}",
    )
    ctx.rss[(repo.name, worktrees)] = after.rss_mb
    if repo.name == "large":
        total = cpu + child
        ctx.verdict(
            f"idle < 0.01 CPU-s/s ({worktrees} worktrees, large)",
            f"{total:.4f} CPU-s/s, {wakeups:.1f} wakeups/s",
            total < 0.01,
        )


def rss_table(ctx: Context) -> None:
    """RSS of the server on the main worktree per worktree count (from the latency runs)."""
    table = ctx.table(
        "rss", "3. server RSS by worktree count (MB)", ["repo", "worktrees", "RSS MB"]
    )
    for (name, count), rss in sorted(ctx.rss.items()):
        table.add(name, count, f"{rss:.0f}")
    large = [rss for (name, count), rss in ctx.rss.items() if name == "large" and count >= 32]
    if large:
        ctx.verdict(
            "RSS ≤ 150 MB with 32 worktrees (large)", f"{max(large):.0f} MB", max(large) <= 150
        )
