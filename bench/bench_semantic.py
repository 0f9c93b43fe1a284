"""Measure semantic foresight (``wtls check --test``): test runs per check, cached re-check time.

Run: ``.venv/bin/python bench/bench_semantic.py [--worktrees 2,4,8]``. For each N, a small
Python project with N agent worktrees (each adds a module and its unittest; committed), with and
without a semantic conflict (worktree 1 renames ``total`` and worktree 2 calls it by its old
name), then ``semantic.test_merges`` twice in-process: the first check (every run real) and a
re-check with nothing changed (every run cached). Prints a markdown table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wtls import semantic
from wtls.predict.commits import commit_info
from wtls.worktrees import discover, repository_state

CALC = "LIMIT = 10\n\n\ndef total(items):\n    return sum(items)\n"
TEST = (
    "import unittest\n\nimport {mod}\n\n\nclass T(unittest.TestCase):\n"
    "    def test_it(self):\n        self.assertEqual({mod}.VALUE, {n})\n"
)


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def build(root: Path, n: int, conflict: bool) -> Path:
    repo = root / "proj"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "calc.py").write_text(CALC)
    (repo / ".gitignore").write_text("__pycache__/\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "init")
    for i in range(n):
        wt = root / f"wt{i}"
        git(repo, "worktree", "add", "-q", "-b", f"feature/{i}", str(wt))
        mod = f"mod{i}"
        if conflict and i == 0:
            (wt / "calc.py").write_text(CALC.replace("def total(", "def sum_all("))
            (wt / f"{mod}.py").write_text("VALUE = 0\n")
        elif conflict and i == 1:
            (wt / f"{mod}.py").write_text(f"import calc\n\nVALUE = calc.total([{i}])\n")
        else:
            (wt / f"{mod}.py").write_text(f"VALUE = {i}\n")
        value = 0 if conflict and i == 0 else i
        (wt / f"test_{mod}.py").write_text(TEST.format(mod=mod, n=value))
        git(wt, "add", "-A")
        git(wt, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", f"work {i}")
    return repo


def check(repo: Path) -> tuple[float, semantic.TestsReport]:
    state = repository_state(discover(repo))
    tip = commit_info(repo, "refs/heads/main")
    assert tip is not None
    cmd = (tuple(shlex.split(f"{shlex.quote(sys.executable)} -m unittest discover -q")),)
    tester = semantic.Tester(repo=state.repository, commands=cmd)
    start = time.monotonic()
    report = semantic.test_merges(state, tester, base_tip=tip)
    return time.monotonic() - start, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--worktrees", default="2,4,8")
    args = parser.parse_args()
    print("| worktrees | semantic conflict | test runs | found | first check s | re-check s |")
    print("|---|---|---|---|---|---|")
    for n in (int(x) for x in args.worktrees.split(",")):
        for conflict in (False, True):
            with tempfile.TemporaryDirectory(prefix="wtls-bench-semantic-") as tmp:
                repo = build(Path(tmp), n, conflict)
                first, report = check(repo)
                again, cached = check(repo)
                real = sum(1 for r in report.runs if not r.cached)
                assert all(r.cached for r in cached.runs)
                print(
                    f"| {n} | {'yes' if conflict else 'no'} | {real} | "
                    f"{len(report.semantic_conflicts)} | {first:.2f} | {again:.2f} |"
                )


if __name__ == "__main__":
    main()
