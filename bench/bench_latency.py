"""Change → state latency (issue benchmark 1), and RSS per worktree count (part of 3).

Session on A: each write toggles ``toggle.txt`` in worktree A (modified / restored), so every
write changes A's ``unstaged`` count; the latency is from just before the write to the arrival
of the first ``wtls/worktrees`` notification showing the new count. Floor: ``git status
--porcelain=v2 -z --branch`` in A (the git command the refresh needs), timed in the same run
after the same kind of write, with the environment wtls gives git.

Session on B: each write toggles line 10 of ``conflict.txt`` in A between a change that
conflicts with B's committed change and main's text; the latency is until B's session gets (or
clears) the Warning diagnostic on ``conflict.txt``. Floor: the raw git commands of a snapshot of
A (copy of A's index, ``add -A``, ``write-tree``, ``commit-tree``) plus ``merge-tree`` with B.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from lsprotocol import types

from bench.common import Context, log, ms, p50, p95, sample, settle
from bench.driver import start_server, unstaged_is
from bench.repo import CONFLICT_CLEAN, TOGGLE_CLEAN, BenchRepo, conflict_text
from wtls.engine import Engine
from wtls.git import scrubbed_env
from wtls.watch import ChangeSet
from wtls.worktrees import discover

IDENTITY = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
}


def toggle_content(i: int) -> str:
    """Write ``i`` of the same-worktree benchmark: even writes modify, odd writes restore."""
    return TOGGLE_CLEAN + f"edit {i}\n" if i % 2 == 0 else TOGGLE_CLEAN


def conflict_content(i: int) -> str:
    """Write ``i`` of the conflict benchmark: even writes conflict with B, odd ones restore."""
    return conflict_text(f"line 10 as A changed it ({i})") if i % 2 == 0 else CONFLICT_CLEAN


def conflicts_feature_present() -> bool:
    """Whether the server registers the conflict-foresight feature."""
    import importlib.util

    return importlib.util.find_spec("wtls.server.features.conflicts") is not None


def _git(cwd: Path, args: Sequence[str], env: dict[str, str], ok: Sequence[int] = (0,)) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode not in ok:
        raise RuntimeError(f"git {args[0]} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def status_floor(repo: BenchRepo, writes: int) -> list[float]:
    """``git status`` in A after each toggle write, timed (the same-worktree floor)."""
    env = scrubbed_env()
    times = []
    for i in range(writes):
        (repo.main / "toggle.txt").write_text(toggle_content(i))
        start = time.perf_counter()
        _git(repo.main, ["status", "--porcelain=v2", "-z", "--branch"], env)
        times.append(time.perf_counter() - start)
    (repo.main / "toggle.txt").write_text(TOGGLE_CLEAN)
    return times


def engine_times(repo: BenchRepo, writes: int) -> list[float]:
    """wtls's own refresh of A in-process after each toggle (no watcher, no LSP): what the
    core adds to the git floor."""
    engine = Engine(discover(repo.main))
    engine.refresh()
    times = []
    toggle = repo.main / "toggle.txt"
    for i in range(writes):
        toggle.write_text(toggle_content(i))
        change = ChangeSet(worktrees={repo.main}, files={repo.main: {toggle}})
        start = time.perf_counter()
        engine.refresh(change)
        times.append(time.perf_counter() - start)
    toggle.write_text(TOGGLE_CLEAN)
    return times


def snapshot_merge_floor(repo: BenchRepo, writes: int) -> list[float]:
    """The raw git work of one prediction update after a write in A: snapshot A, merge with B."""
    index = repo.index_file(repo.main)
    times = []
    with tempfile.TemporaryDirectory(prefix="wtls-bench-floor-") as tmp:
        temp_index = Path(tmp) / "index"
        env = scrubbed_env({"GIT_INDEX_FILE": str(temp_index)})
        commit_env = scrubbed_env(IDENTITY)
        for i in range(writes):
            (repo.main / "conflict.txt").write_text(conflict_content(i))
            start = time.perf_counter()
            shutil.copy2(index, temp_index)
            _git(repo.main, ["add", "-A"], env)
            tree = _git(repo.main, ["write-tree"], env)
            commit = _git(repo.main, ["commit-tree", tree, "-p", "HEAD", "-m", "s"], commit_env)
            _git(
                repo.main,
                ["merge-tree", "--write-tree", "--name-only", commit, "bench-b"],
                commit_env,
                ok=(0, 1),
            )
            times.append(time.perf_counter() - start)
    (repo.main / "conflict.txt").write_text(CONFLICT_CLEAN)
    return times


def has_conflict_warning(diagnostics: Sequence[types.Diagnostic]) -> bool:
    """Whether a predicted-conflict Warning is among ``diagnostics``."""
    return any(
        d.severity == types.DiagnosticSeverity.Warning
        and (d.code == "predicted-conflict" or "will conflict" in d.message)
        for d in diagnostics
    )


def conflict_warning_is(want: bool) -> Callable[[Sequence[types.Diagnostic]], bool]:
    """A diagnostics predicate: the conflict Warning is there (``want``) or not."""

    def check(diagnostics: Sequence[types.Diagnostic]) -> bool:
        return has_conflict_warning(diagnostics) == want

    return check


async def same_worktree(ctx: Context, repo: BenchRepo) -> tuple[list[float], float, float, int]:
    """Latencies of the session on A; also its CPU seconds per change, RSS and misses."""
    writes = ctx.options.writes
    latencies: list[float] = []
    missed = 0
    async with start_server(repo.main, env=ctx.env) as server:
        await settle([server.pid], quiet=0.8, limit=120)
        before = sample(server.pid)
        toggle = repo.main / "toggle.txt"
        for i in range(writes):
            want = 1 if i % 2 == 0 else 0
            start = time.perf_counter()
            toggle.write_text(toggle_content(i))
            try:
                got = await server.wait_state(
                    unstaged_is(repo.main, want),
                    start,
                    ctx.options.timeout,
                )
                latencies.append(got.at - start)
            except TimeoutError:
                missed += 1
            await settle([server.pid])
        after = sample(server.pid)
        cpu_per_change = (after.total_cpu - before.total_cpu) / writes
        rss = after.rss_mb
    toggle.write_text(TOGGLE_CLEAN)
    return latencies, cpu_per_change, rss, missed


async def conflict_in_b(ctx: Context, repo: BenchRepo) -> tuple[list[float], list[float], int]:
    """Latencies until B's session shows/clears the conflict; also A's count as seen from B."""
    writes = ctx.options.writes
    diag_latencies: list[float] = []
    state_latencies: list[float] = []
    missed = 0
    b_file = repo.b / "conflict.txt"
    a_file = repo.main / "conflict.txt"
    async with start_server(repo.b, env=ctx.env) as server:
        server.open_document(b_file)  # an agent's editor usually has the file open
        await settle([server.pid], quiet=0.8, limit=120)
        for i in range(writes):
            want_conflict = i % 2 == 0
            want_unstaged = 1 if want_conflict else 0
            start = time.perf_counter()
            a_file.write_text(conflict_content(i))
            try:
                got = await server.wait_diagnostics(
                    b_file,
                    conflict_warning_is(want_conflict),
                    start,
                    ctx.options.timeout,
                )
                diag_latencies.append(got.at - start)
            except TimeoutError:
                missed += 1
            seen = [
                m for m in server.states(start) if unstaged_is(repo.main, want_unstaged)(m.payload)
            ]
            if seen:
                state_latencies.append(seen[0].at - start)
            await settle([server.pid])
    a_file.write_text(CONFLICT_CLEAN)
    return diag_latencies, state_latencies, missed


async def run(ctx: Context, repo: BenchRepo, worktrees: int) -> None:
    """Benchmark 1 (and RSS) for ``repo`` with ``worktrees`` worktrees."""
    repo.set_worktrees(worktrees)
    repo.reset()
    writes = ctx.options.writes
    log(f"latency: {repo.name}, {worktrees} worktrees: floors")
    floor = status_floor(repo, writes)
    core = engine_times(repo, writes)
    log(f"latency: {repo.name}, {worktrees} worktrees: session on A ({writes} writes)")
    latencies, cpu, rss, missed = await same_worktree(ctx, repo)
    ctx.rss[(repo.name, worktrees)] = rss
    table = ctx.table(
        "latency",
        "1a. change in A → wtls/worktrees in A's session (ms)",
        [
            "repo",
            "worktrees",
            "writes",
            "git status floor p50/p95",
            "engine.refresh p50/p95",
            "latency p50/p95",
            "p95 − floor p95",
            "missed",
            "server CPU/change",
            "RSS MB",
        ],
    )
    table.add(
        repo.name,
        worktrees,
        len(latencies),
        f"{ms(p50(floor))} / {ms(p95(floor))}",
        f"{ms(p50(core))} / {ms(p95(core))}",
        f"{ms(p50(latencies))} / {ms(p95(latencies))}",
        ms(p95(latencies) - p95(floor)),
        missed,
        ms(cpu),
        f"{rss:.0f}",
    )
    if not table.notes:
        table.notes.append(
            "latency: write → arrival of the first notification showing it; floor: `git status "
            "--porcelain=v2 -z --branch` after the same write; engine.refresh: wtls's refresh "
            "in-process (no watcher, no LSP); server CPU/change: own + git children, incl. "
            "background work (conflict prediction, marker scan)"
        )
    if worktrees == 8 and repo.name == "large":
        over = p95(latencies) - p95(floor)
        ctx.verdict(
            "change → wtls/worktrees p95 ≤ git status floor + 150 ms (8 worktrees, large)",
            f"p95 − floor = {ms(over)} ms, {missed} missed",
            over <= 0.150 and missed == 0,
        )

    if worktrees < 2:
        return
    ctable = ctx.table(
        "conflict",
        "1b. change in A → conflict diagnostic in B's session (ms)",
        [
            "repo",
            "worktrees",
            "writes",
            "snapshot+merge floor p50/p95",
            "diagnostic p50/p95",
            "missed",
            "target 2×floor p95 + 200",
            "A's state in B's session p50/p95",
        ],
    )
    log(f"latency: {repo.name}, {worktrees} worktrees: snapshot+merge floor")
    sfloor = snapshot_merge_floor(repo, writes)
    target = 2 * p95(sfloor) + 0.200
    if not conflicts_feature_present():
        ctable.add(
            repo.name,
            worktrees,
            0,
            f"{ms(p50(sfloor))} / {ms(p95(sfloor))}",
            "pending: no conflict feature in the server yet",
            "–",
            ms(target),
            "–",
        )
        if worktrees == 8 and repo.name == "large":
            ctx.verdict("conflict diagnostic p95 ≤ 2 × floor + 200 ms", "feature missing", None)
        return
    log(f"latency: {repo.name}, {worktrees} worktrees: session on B ({writes} writes)")
    diag, seen, cmissed = await conflict_in_b(ctx, repo)
    ctable.add(
        repo.name,
        worktrees,
        len(diag) + cmissed,
        f"{ms(p50(sfloor))} / {ms(p95(sfloor))}",
        f"{ms(p50(diag))} / {ms(p95(diag))}",
        cmissed,
        ms(target),
        f"{ms(p50(seen))} / {ms(p95(seen))}",
    )
    if not ctable.notes:
        ctable.notes.append(
            "diagnostic: write in A → B's session has (or no longer has) the Warning on "
            "conflict.txt; floor: copy A's index, add -A, write-tree, commit-tree, merge-tree "
            "with B, raw git after the same write; missed: no diagnostic within the timeout"
        )
    if worktrees == 8 and repo.name == "large":
        ctx.verdict(
            "conflict diagnostic p95 ≤ 2 × snapshot+merge floor p95 + 200 ms, none missed",
            f"p95 {ms(p95(diag))} ms vs {ms(target)} ms, {cmissed} missed",
            p95(diag) <= target and cmissed == 0,
        )
