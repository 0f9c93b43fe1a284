"""Many windows (issue benchmark 5): N servers on N worktrees of one repository.

One editor window per agent means one server per worktree, each watching every worktree of the
repository. Each change toggles ``toggle.txt`` in the main worktree; the figure is the CPU all
servers together spend on it (own + git children, until every server is quiet again), divided
by the number of changes. Linear growth in N is inherent (every window must learn of the
change); growth like N² would mean each server does work proportional to the number of servers.
Floor: one ``git status`` of the changed worktree per server (what each must at least learn).
"""

from __future__ import annotations

import time

from bench.bench_latency import toggle_content
from bench.common import Context, log, median, ms, p95, sample, settle
from bench.driver import start_servers, unstaged_is
from bench.repo import TOGGLE_CLEAN, BenchRepo, git


async def run(ctx: Context, repo: BenchRepo) -> None:
    """Benchmark 5 for ``repo``."""
    counts = ctx.options.windows
    repo.set_worktrees(max(counts))
    repo.reset()
    changes = ctx.options.window_changes
    toggle = repo.main / "toggle.txt"
    status_cpu = _status_cpu(repo)
    table = ctx.table(
        "windows",
        "5. N servers (one per worktree window), one change in the main worktree",
        [
            "repo",
            "worktrees",
            "servers N",
            "changes",
            "total CPU ms/change",
            "per server",
            "vs N=1 (linear = N)",
            "floor: N × git status CPU",
            "last server sees it p50/p95 ms",
            "start-up CPU s (all servers)",
        ],
    )
    if not table.notes:
        table.notes.append(
            "CPU: own + git children of all servers, from the write until all are quiet again; "
            "linear growth means every server repeats the same work (a git status and a "
            "conflict-prediction snapshot of the changed worktree); start-up: what the servers "
            "used from launch until quiet (each reads and snapshots every worktree)"
        )
    first: float | None = None
    for n in counts:
        log(f"windows: {repo.name}, {n} servers, {changes} changes")
        async with start_servers(repo.worktrees[:n], env=ctx.env) as servers:
            pids = [s.pid for s in servers]
            await settle(pids, quiet=1.0, limit=300)
            before = sum(sample(p).total_cpu for p in pids)
            startup = before  # each server's CPU since it started: reading and predicting
            seen: list[float] = []
            for i in range(changes):
                want = 1 if i % 2 == 0 else 0
                start = time.perf_counter()
                toggle.write_text(toggle_content(i))
                arrivals = []
                for server in servers:
                    got = await server.wait_state(
                        unstaged_is(repo.main, want), start, ctx.options.timeout
                    )
                    arrivals.append(got.at - start)
                seen.append(max(arrivals))
                await settle(pids, quiet=0.5)
            after = sum(sample(p).total_cpu for p in pids)
        toggle.write_text(TOGGLE_CLEAN)
        per_change = (after - before) / changes
        if first is None:
            first = per_change
        table.add(
            repo.name,
            len(repo.worktrees),
            n,
            changes,
            ms(per_change),
            ms(per_change / n),
            f"{per_change / first:.1f}" if first else "–",
            ms(n * status_cpu),
            f"{ms(median(seen))} / {ms(p95(seen))}",
            f"{startup:.1f}",
        )


def _status_cpu(repo: BenchRepo, runs: int = 5) -> float:
    """CPU seconds of one ``git status`` in the main worktree after a toggle write."""
    import resource

    toggle = repo.main / "toggle.txt"
    total = 0.0
    for i in range(runs):
        toggle.write_text(toggle_content(i))
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        git(repo.main, "status", "--porcelain=v2", "-z", "--branch")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        total += (after.ru_utime + after.ru_stime) - (usage.ru_utime + usage.ru_stime)
    toggle.write_text(TOGGLE_CLEAN)
    return total / runs
