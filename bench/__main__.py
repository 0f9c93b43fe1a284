"""``python -m bench``: run the benchmarks and print their tables (see ``bench/README.md``).

Builds a large (``--files``, default 10,000) and a small (``--small-files``, default 50)
repository under a temporary folder, runs each benchmark on both (``sessions``, whose targets
are defined for 10,000 files, on the large one only), prints one table per
benchmark with the floor measured in the same run, then which targets of the issue are met.
``--quick`` is a smoke run with small numbers; ``--only NAME...`` picks benchmarks;
``--markdown FILE`` also writes the machine description and the tables as Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import (
    bench_flood,
    bench_gitpython,
    bench_idle,
    bench_latency,
    bench_sessions,
    bench_spawn,
    bench_windows,
    driver,
)
from bench.common import Context, Options, log, machine
from bench.repo import BenchRepo

BENCHMARKS = ("latency", "spawn", "idle", "flood", "windows", "sessions", "gitpython")

QUICK = Options(
    files=1_000,
    small_files=50,
    worktrees=(1, 3),
    writes=6,
    idle_seconds=3,
    spawn_runs=2,
    gitpython_runs=5,
    flood_files=2_000,
    checkout_files=300,
    windows=(1, 2),
    window_changes=2,
    quick=True,
)


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas: {text}") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive numbers: {text}")
    return values


def _settings(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def parse_options(argv: Sequence[str] | None = None) -> Options:
    """Options from the command line (``--quick`` changes the defaults, flags still win)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks of wtls under load and faults; tables go to stdout, progress "
        "to stderr. Nothing is asserted.",
    )
    parser.add_argument("--quick", action="store_true", help="fast smoke run, small numbers")
    parser.add_argument("--files", type=int, help="files of the large repository (10000)")
    parser.add_argument("--small-files", type=int, help="files of the small repository (50)")
    parser.add_argument("--worktrees", type=_ints, help="worktree counts, e.g. 1,8,32")
    parser.add_argument("--writes", type=int, help="writes per latency figure (30)")
    parser.add_argument("--idle-seconds", type=float, help="idle measurement (60)")
    parser.add_argument("--spawn-runs", type=int, help="runs of each spawn variant (5)")
    parser.add_argument("--gitpython-runs", type=int, help="runs of each GitPython variant (20)")
    parser.add_argument("--flood-files", type=int, help="files of the npm flood (50000)")
    parser.add_argument("--checkout-files", type=int, help="files the checkout rewrites (5000)")
    parser.add_argument(
        "--windows", type=_ints, help="session counts of windows and sessions, e.g. 1,4,8"
    )
    parser.add_argument("--window-changes", type=int, help="changes per server count (10)")
    parser.add_argument("--timeout", type=float, help="seconds before a change is missed (30)")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=BENCHMARKS,
        metavar="NAME",
        help=f"run only these: {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--server-settings",
        type=_settings,
        metavar="JSON",
        help="wtls settings for every server, e.g. '{\"debounceMs\": 0}' (default: none)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated repositories")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write Markdown")
    args = parser.parse_args(argv)
    options = QUICK if args.quick else Options()
    given = {
        key: value
        for key, value in vars(args).items()
        if value is not None and key not in ("quick", "only", "keep", "server_settings")
    }
    driver.SERVER_SETTINGS.update(args.server_settings or {})
    return replace(options, **given, only=tuple(args.only or ()), keep=args.keep, quick=args.quick)


def hermetic_env(root: Path) -> dict[str, str]:
    """A HOME with only a git identity, no system config, no leaked GIT_* variables."""
    home = root / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = bench\n\temail = bench@localhost\n")
    for key in [k for k in os.environ if k.startswith("GIT_")]:
        del os.environ[key]
    env = {"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"}
    os.environ.update(env)  # the benchmark's own git calls and in-process wtls calls
    return {**env, "PATH": os.environ.get("PATH", "")}


Step = tuple[int, str, Callable[[], Awaitable[None]]]


def steps_for(ctx: Context, repo: BenchRepo) -> list[Step]:
    """The benchmarks for one repository, ordered by the worktree count they need."""
    o = ctx.options
    wanted = set(o.only or BENCHMARKS)
    steps: list[Step] = []

    async def sync(fn: Callable[[], None]) -> None:
        fn()

    if "gitpython" in wanted:
        steps.append((1, "gitpython", lambda: sync(lambda: bench_gitpython.run(ctx, repo))))
    if "spawn" in wanted:
        steps.append((1, "spawn", lambda: bench_spawn.run(ctx, repo)))
    if "latency" in wanted:
        for count in sorted(o.worktrees):
            steps.append(
                (count, "latency", lambda c=count: bench_latency.run(ctx, repo, c))  # type: ignore[misc]
            )
    if "windows" in wanted:
        steps.append((max(o.windows), "windows", lambda: bench_windows.run(ctx, repo)))
    if "sessions" in wanted and repo.name == "large":
        # Issue 12's targets are for the large repository; RSS with many worktrees comes last.
        steps.append((max(o.windows), "sessions", lambda: bench_sessions.run(ctx, repo)))
        many = max(max(o.worktrees), max(o.windows))
        steps.append((many, "sessions", lambda: bench_sessions.rss_many(ctx, repo, many)))
    if "flood" in wanted:
        steps.append(
            (max(3, min(8, max(o.worktrees))), "flood", lambda: bench_flood.run(ctx, repo))
        )
    if "idle" in wanted:
        steps.append(
            (max(o.worktrees), "idle", lambda: bench_idle.run(ctx, repo, max(o.worktrees)))
        )
    return sorted(steps, key=lambda s: s[0])  # stable: adds worktrees, rarely removes them


async def run_all(ctx: Context) -> None:
    """Generate the repositories and run every selected benchmark on each."""
    o = ctx.options
    for name, files in (("small", o.small_files), ("large", o.files)):
        repo = BenchRepo(
            name=name,
            root=ctx.root / name,
            files=files,
            checkout_files=min(o.checkout_files, max(files - 4, 1)),
        )
        start = time.perf_counter()
        repo.create()
        log(f"{name} repository: {files} files in {time.perf_counter() - start:.1f} s")
        for _, label, step in steps_for(ctx, repo):
            started = time.perf_counter()
            await step()
            log(f"{label} on {name} took {time.perf_counter() - started:.0f} s")
        if not o.keep:
            shutil.rmtree(repo.root, ignore_errors=True)
    if "idle" in (o.only or BENCHMARKS) or "latency" in (o.only or BENCHMARKS):
        bench_idle.rss_table(ctx)


def report(ctx: Context, info: dict[str, str], elapsed: float) -> str:
    """Print the tables and the targets; return them as Markdown."""
    order = ["latency", "conflict", "spawn", "idle", "rss", "flood", "windows"]
    order += ["sessions", "sessions-latency", "sessions-check", "sessions-idle", "sessions-rss"]
    order += ["gitpython"]
    tables = [ctx.tables[k] for k in order if k in ctx.tables]
    print()
    for table in tables:
        print(table.text(), end="\n\n")
    lines = [
        f"Machine: {info['nproc']} cores ({info['cpu']}), {info['ram']} RAM, git {info['git']}, "
        f"Python {info['python']}, {info['os']}; {info['date']}; `python -m bench"
        f"{' --quick' if ctx.options.quick else ''}` took {elapsed / 60:.1f} min"
        + (
            f"; server settings {json.dumps(driver.SERVER_SETTINGS)}"
            if driver.SERVER_SETTINGS
            else ""
        )
        + ".",
        "",
    ]
    print(lines[0])
    if ctx.verdicts:
        caveat = (
            " (--quick: smaller sizes than the targets are defined for; indicative only)"
            if ctx.options.quick
            else ""
        )
        print(f"\nTargets{caveat}:")
        lines += [f"#### Targets{caveat}", "", "| target | figure | met |", "|---|---|---|"]
        for target, figure, met in ctx.verdicts:
            mark = {True: "met", False: "MISSED", None: "not measured"}[met]
            print(f"  {mark:>12}  {target}: {figure}")
            lines.append(f"| {target} | {figure} | {mark} |")
        lines.append("")
    for table in tables:
        lines += [table.markdown(), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench``."""
    if not sys.platform.startswith("linux"):
        print("bench: needs Linux (/proc accounting)", file=sys.stderr)
        return 2
    options = parse_options(argv)
    root = Path(tempfile.mkdtemp(prefix="wtls-bench-"))
    started = time.perf_counter()
    ctx = Context(options=options, root=root, env=hermetic_env(root))
    info = machine()
    log(f"scratch folder {root}; {info['nproc']} cores, {info['cpu']}, git {info['git']}")
    try:
        asyncio.run(run_all(ctx))
    finally:
        if options.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    text = report(ctx, info, time.perf_counter() - started)
    if options.markdown is not None:
        options.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
