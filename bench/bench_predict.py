"""Measure conflict foresight on a throwaway copy of the course's tasks-app lab.

Run: ``.venv/bin/python bench/bench_predict.py [--files N]``. Prints the median of several runs
of: one snapshot (temp index copy, ``add -A``, ``write-tree``, ``commit-tree``), the pairwise
``merge-tree --stdin`` batch, a full prediction from scratch, and an incremental update after
one worktree changed. ``--files`` pads the repository with N more tracked files.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.gitutil import TASKS_CLI
from wtls.predict import ConflictPredictor, merge_many, snapshot_worktree
from wtls.worktrees import discover, repository_state


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def timed(fn: Callable[[], object], runs: int = 7) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="wtls-bench-"))
    env_home = root / "home"
    env_home.mkdir()
    (env_home / ".gitconfig").write_text("[user]\n\tname = b\n\temail = b@b\n")
    os.environ["HOME"] = str(env_home)
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    try:
        repo = root / "tasks-app"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        (repo / "cli.py").write_text(TASKS_CLI)
        for n in range(args.files):
            folder = repo / "pad" / f"d{n // 100}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"f{n}.txt").write_text(f"file {n}\n" * 20)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "initial")
        wipe, remaining = root / "tasks-app-wipe", root / "tasks-app-remaining"
        git(repo, "worktree", "add", "-q", "-b", "feature/wipe", str(wipe))
        git(repo, "worktree", "add", "-q", "-b", "feature/remaining", str(remaining))
        cli = wipe / "cli.py"
        cli.write_text(cli.read_text().replace("done <index>", "done <index> | wipe"))
        git(wipe, "commit", "-qam", "wipe")
        cli = remaining / "cli.py"
        cli.write_text(cli.read_text().replace("done <index>", "done <index> | remaining"))

        snap_ms = timed(lambda: snapshot_worktree(remaining))
        made = [snapshot_worktree(p) for p in (repo, wipe, remaining)]
        commits = [m[1].oid for m in made if m is not None]
        pairs = [(commits[0], commits[1]), (commits[0], commits[2]), (commits[1], commits[2])]
        merge_ms = timed(lambda: merge_many(repo / ".git", pairs))
        repository = discover(repo)
        state = repository_state(repository)
        full_ms = timed(lambda: ConflictPredictor(repository).update(state))
        predictor = ConflictPredictor(repository)
        predictor.update(state)
        counter = [0]

        spent: list[float] = []

        def incremental() -> None:
            counter[0] += 1
            text = cli.read_text()
            cli.write_text(text.replace("| remaining", f"| remaining{counter[0] % 2 or ''}", 1))
            # The engine's refresh (git status) is not part of the prediction's cost.
            fresh = repository_state(repository, previous=state, only=[remaining])
            start = time.perf_counter()
            predictor.update(fresh, changed=[remaining.resolve()])
            spent.append((time.perf_counter() - start) * 1000)

        timed(incremental)
        inc_ms = statistics.median(spent)
        unchanged_ms = timed(lambda: predictor.update(state, changed=[]))
        tracked = 1 + args.files
        print(f"git {git(repo, 'version').split()[-1]}, {tracked} tracked files, 3 worktrees")
        print(f"snapshot of one dirty worktree        {snap_ms:7.1f} ms")
        print(f"merge-tree --stdin, 3 pairs           {merge_ms:7.1f} ms")
        print(f"full prediction from scratch          {full_ms:7.1f} ms")
        print(f"update after one worktree changed     {inc_ms:7.1f} ms")
        print(f"update with nothing changed           {unchanged_ms:7.1f} ms")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
