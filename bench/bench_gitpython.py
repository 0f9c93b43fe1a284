"""GitPython vs wtls's one-subprocess ``read_status`` (the "foundation" issue's measurement).

GitPython is the designated git layer "where it helps"; wtls calls git directly
(``wtls/git.py``). This times, in the same run and interleaved, the ways GitPython would read
what ``wtls.worktrees.read_status`` reads with one ``git status --porcelain=v2 -z --branch``:

* ``Repo(path)`` + ``is_dirty(untracked_files=True)`` + ``untracked_files`` + ``active_branch``
  (its object API: several git processes, and still no counts or ahead/behind);
* ``repo.git.status("--porcelain=v2", "-z", "--branch")`` (git's porcelain through GitPython).

GitPython is not a dependency of wtls: install it into the venv to run this part
(``.venv/bin/pip install GitPython``); without it the benchmark prints a skip line.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from typing import Any

from bench.common import Context, log, ms, p50, p95, ratio
from bench.repo import BenchRepo
from wtls.worktrees import read_status


def available() -> bool:
    """Whether GitPython can be imported."""
    return importlib.util.find_spec("git") is not None


def run(ctx: Context, repo: BenchRepo) -> None:
    """Time the three ways on ``repo``'s main worktree (with one modified, one new file)."""
    table = ctx.table(
        "gitpython",
        "GitPython vs wtls.worktrees.read_status (ms, same run, interleaved)",
        [
            "repo",
            "files",
            "runs",
            "read_status p50/p95",
            "GitPython API p50/p95",
            "ratio",
            "repo.git.status p50/p95",
            "ratio",
        ],
    )
    if not available():
        print(
            "   skip: GitPython is not installed (.venv/bin/pip install GitPython to measure it)",
            flush=True,
        )
        table.add(repo.name, repo.files, 0, "–", "skipped: GitPython not installed", "–", "–", "–")
        return
    import git as gitpython  # GitPython, optional: only this benchmark uses it

    repo.set_worktrees(1)
    repo.reset()
    main = repo.main
    (main / "toggle.txt").write_text("modified for the benchmark\n")
    (main / "untracked.txt").write_text("new\n")
    runs = ctx.options.gitpython_runs
    log(f"gitpython: {repo.name}, {runs} runs")
    long_lived = gitpython.Repo(main)

    def api() -> Any:
        r = gitpython.Repo(main)
        return r.is_dirty(untracked_files=True), r.untracked_files, r.active_branch.name

    def porcelain() -> Any:
        return long_lived.git.status("--porcelain=v2", "-z", "--branch")

    def ours() -> Any:
        return read_status(main)

    ways: dict[str, Callable[[], Any]] = {"ours": ours, "api": api, "porcelain": porcelain}
    times: dict[str, list[float]] = {k: [] for k in ways}
    for fn in ways.values():
        fn()  # warm-up: imports, caches
    for _ in range(runs):
        for name, fn in ways.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    long_lived.close()
    (main / "untracked.txt").unlink()
    repo.reset([main])
    base = p50(times["ours"])
    table.add(
        repo.name,
        repo.files,
        runs,
        _pair(times["ours"]),
        _pair(times["api"]),
        ratio(p50(times["api"]), base),
        _pair(times["porcelain"]),
        ratio(p50(times["porcelain"]), base),
    )
    if not table.notes:
        table.notes.append(
            "ratio: GitPython median / read_status median; the API way still lacks the "
            "staged/unstaged counts and ahead/behind that read_status returns"
        )


def _pair(values: list[float]) -> str:
    return f"{ms(p50(values))} / {ms(p95(values))}"
