"""Spawn overhead (issue benchmark 2): ``wtls spawn`` end to end vs bare ``git worktree add``.

Each run creates a worktree on a new branch from ``main`` four ways, in rotating order, and
removes it again (untimed): bare ``git worktree add -b`` (the floor), the core function
``wtls.lifecycle.spawn`` in-process, the CLI ``python -m wtls spawn`` (a new Python process
each time), and the server command ``wtls.spawn`` sent to a running server. The repository has
no ``.wtls.toml``, so no setup command runs. Ratio: median over median of the floor. The first
three run with no server (a server reacting to each new worktree would slow all of them down
unevenly); the server command is timed beside a floor taken with the same server running.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import Context, log, median, ms, ratio, settle
from bench.driver import start_server
from bench.repo import BenchRepo, git
from wtls.lifecycle import spawn


def _remove(repo: BenchRepo, path: Path, branch: str) -> None:
    git(repo.main, "worktree", "remove", "--force", str(path))
    git(repo.main, "branch", "-q", "-D", branch)
    # Flush the writes of this run (its checkout, its removal) now, untimed: otherwise the next
    # run pays for them, and which way runs next decides whose figure they inflate.
    os.sync()


async def run(ctx: Context, repo: BenchRepo) -> None:
    """Benchmark 2 for ``repo`` (with only the main worktree)."""
    repo.set_worktrees(1)
    repo.reset()
    runs = ctx.options.spawn_runs
    py = sys.executable

    def floor(path: Path, branch: str) -> None:
        git(repo.main, "worktree", "add", "-q", "-b", branch, str(path), "main")

    def core(path: Path, branch: str) -> None:
        spawn(repo.main, branch, path=path)

    def cli(path: Path, branch: str) -> None:
        proc = subprocess.run(
            [py, "-m", "wtls", "spawn", branch, "--path", str(path), "--json"],
            cwd=repo.main,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"wtls spawn failed: {proc.stderr.strip()}")

    # Without a server: the floor, the core function and the CLI, interleaved.
    os.sync()
    log(f"spawn: {repo.name}, {runs} runs of git / core / CLI")
    times = _rotate(repo, runs, {"git": floor, "core": core, "cli": cli})
    # With a server on the repository (it reacts to every new worktree): the floor again, and
    # the server command, interleaved, each waiting for the server to be quiet first.
    server_times: dict[str, list[float]] = {}
    async with start_server(repo.main, env=ctx.env) as server:
        if "wtls.spawn" in server.commands:
            log(f"spawn: {repo.name}, {runs} runs of git / server command")
            server_times = {"git": [], "server": []}
            for i in range(runs):
                for kind in ("git", "server") if i % 2 == 0 else ("server", "git"):
                    path = repo.root / f"spawn-s{kind}-{i}"
                    branch = f"bench/s{kind}-{i}"
                    await settle([server.pid])
                    start = time.perf_counter()
                    if kind == "server":
                        await server.command("wtls.spawn", {"name": branch, "path": str(path)})
                    else:
                        floor(path, branch)
                    server_times[kind].append(time.perf_counter() - start)
                    await settle([server.pid])
                    _remove(repo, path, branch)
            await settle([server.pid])
    table = ctx.table(
        "spawn",
        "2. spawn end to end vs `git worktree add -b` (ms, median of runs)",
        [
            "repo",
            "files",
            "runs",
            "git worktree add",
            "wtls.lifecycle.spawn",
            "ratio",
            "CLI `wtls spawn`",
            "ratio",
            "with a server: git worktree add",
            "server `wtls.spawn`",
            "ratio",
        ],
    )
    base = median(times["git"])
    if server_times:
        sbase = median(server_times["git"])
        server_cells = (
            ms(sbase),
            ms(median(server_times["server"])),
            ratio(median(server_times["server"]), sbase),
        )
    else:
        server_cells = ("–", "pending: no wtls.spawn command in the server", "–")
    table.add(
        repo.name,
        repo.files,
        runs,
        ms(base),
        ms(median(times["core"])),
        ratio(median(times["core"]), base),
        ms(median(times["cli"])),
        ratio(median(times["cli"]), base),
        *server_cells,
    )
    if not table.notes:
        table.notes.append(
            "git / core / CLI run with no server; the CLI figure includes starting Python and "
            "importing wtls. The server command is the executeCommand round trip to a server "
            "running on the repository, against `git worktree add` timed beside it (the server "
            "reacts to each new worktree, so both are slower there)"
        )
    if repo.name == "large":
        core_ratio = median(times["core"]) / base
        figure = f"core {core_ratio:.2f}×"
        met = core_ratio <= 1.2
        if server_times:
            server_ratio = median(server_times["server"]) / median(server_times["git"])
            figure += f", server command {server_ratio:.2f}×"
            met = met and server_ratio <= 1.2
        ctx.verdict("spawn (no setup commands) ≤ 1.2 × git worktree add (large)", figure, met)


def _rotate(
    repo: BenchRepo, runs: int, ways: dict[str, Callable[[Path, str], None]]
) -> dict[str, list[float]]:
    """Time each way ``runs`` times, rotating the order, removing each worktree (untimed)."""
    times: dict[str, list[float]] = {k: [] for k in ways}
    order = list(ways)
    for i in range(runs):
        # Rotate so no way always runs first, or right after the same other one's cleanup.
        for kind in order[i % len(order) :] + order[: i % len(order)]:
            path = repo.root / f"spawn-{kind}-{i}"
            branch = f"bench/{kind}-{i}"
            start = time.perf_counter()
            ways[kind](path, branch)
            times[kind].append(time.perf_counter() - start)
            _remove(repo, path, branch)
    return times
