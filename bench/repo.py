"""Generated repositories for the benchmarks: deterministic content, real worktrees.

Layout of a repository of ``files`` files (dates, names and contents are fixed, so two runs
build the same commits)::

    .gitignore        node_modules/ and *.log
    toggle.txt        the file the latency benchmark modifies and restores in worktree A
    conflict.txt      20 lines; branch ``bench-b`` changes line 10, worktree A toggles it
    src/pNN/mMM/fNNNNN.py  the rest, 25 files per folder

Worktrees: index 0 is the main worktree (A, branch ``main``), 1 is B (branch ``bench-b``, one
commit ahead of ``main``), the others fill up to the count asked for (``bench-wNN``). Branch
``flood`` rewrites ``checkout_files`` tracked files (the ``git checkout`` flood).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Files per leaf folder, and leaf folders per top folder.
PER_DIR = 25
DIRS_PER_TOP = 20
FIXED_DATE = "2026-01-01T12:00:00+0000"
CONFLICT_LINE = 10
CONFLICT_LINES = 20


def git(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    """Run git (the benchmark's own set-up calls; wtls's calls go through ``wtls.git``)."""
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def file_text(i: int, edit: int = 0) -> str:
    """Deterministic content of generated file ``i`` (``edit`` > 0: a rewritten version)."""
    lines = [f"# generated file {i}\n"]
    lines += [
        f"def f_{i}_{k}() -> int:\n    return {(k * 7919 + i + edit) % 9973}\n" for k in range(6)
    ]
    if edit:
        lines.append(f"# rewritten {edit}\n")
    return "".join(lines)


def conflict_text(line10: str) -> str:
    """``conflict.txt`` with its line 10 set to ``line10``."""
    return "".join(
        f"{line10}\n" if n == CONFLICT_LINE else f"shared line {n}\n"
        for n in range(1, CONFLICT_LINES + 1)
    )


TOGGLE_CLEAN = "toggle\n"
CONFLICT_CLEAN = conflict_text("line 10 as on main")
CONFLICT_B = conflict_text("line 10 as worktree B changed it")


def generated_path(i: int) -> str:
    """Relative path of generated file ``i``."""
    leaf = i // PER_DIR
    return f"src/p{leaf // DIRS_PER_TOP:03d}/m{leaf % DIRS_PER_TOP:02d}/f{i:05d}.py"


@dataclass
class BenchRepo:
    """A generated repository and its worktrees, under ``root``."""

    name: str
    root: Path
    files: int
    checkout_files: int
    worktrees: list[Path] = field(default_factory=list)

    @property
    def main(self) -> Path:
        """The main worktree (A)."""
        return self.root / "main"

    @property
    def b(self) -> Path:
        """Worktree B (branch ``bench-b``); exists once there are two worktrees."""
        return self.root / "wt-01"

    @property
    def generated(self) -> int:
        """How many ``src/`` files there are."""
        return max(self.files - 4, 1)

    def create(self) -> None:
        """Build the repository and its branches (``main``, ``bench-b``, ``flood``)."""
        env = {"GIT_AUTHOR_DATE": FIXED_DATE, "GIT_COMMITTER_DATE": FIXED_DATE}
        main = self.main
        main.mkdir(parents=True)
        git(main, "init", "-q", "-b", "main")
        git(main, "config", "gc.auto", "0")  # no surprise gc in the middle of a measurement
        git(main, "config", "user.name", "bench")
        git(main, "config", "user.email", "bench@localhost")
        (main / ".gitignore").write_text("node_modules/\n*.log\n")
        (main / "toggle.txt").write_text(TOGGLE_CLEAN)
        (main / "conflict.txt").write_text(CONFLICT_CLEAN)
        (main / "README.md").write_text(f"# {self.name}\n\nA generated benchmark repository.\n")
        for i in range(self.generated):
            path = main / generated_path(i)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(file_text(i))
        git(main, "add", "-A")
        git(main, "commit", "-q", "-m", "Generated content", env=env)
        # B: one commit changing conflict.txt's line 10 (A's toggle conflicts with it).
        git(main, "switch", "-q", "-c", "bench-b")
        (main / "conflict.txt").write_text(CONFLICT_B)
        git(main, "commit", "-q", "-am", "B changes line 10", env=env)
        # flood: many tracked files rewritten (what a branch switch rewrites).
        git(main, "switch", "-q", "-c", "flood", "main")
        for i in range(min(self.checkout_files, self.generated)):
            (main / generated_path(i)).write_text(file_text(i, edit=1))
        git(main, "commit", "-q", "-am", "Rewrite many files", env=env)
        git(main, "switch", "-q", "main")
        self.worktrees = [main]

    def set_worktrees(self, count: int) -> None:
        """Add or remove linked worktrees until there are ``count`` (the main one included)."""
        count = max(count, 1)
        while len(self.worktrees) > count:
            path = self.worktrees.pop()
            git(self.main, "worktree", "remove", "--force", str(path))
        while len(self.worktrees) < count:
            index = len(self.worktrees)
            path = self.root / f"wt-{index:02d}"
            if index == 1:
                git(self.main, "worktree", "add", "-q", str(path), "bench-b")
            else:
                branch = f"bench-w{index:02d}"
                exists = subprocess.run(
                    ["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
                    cwd=self.main,
                    capture_output=True,
                    check=False,
                )
                if exists.returncode == 0:
                    git(self.main, "worktree", "add", "-q", str(path), branch)
                else:
                    git(self.main, "worktree", "add", "-q", "-b", branch, str(path), "main")
            self.worktrees.append(path)

    def reset(self, worktrees: Sequence[Path] | None = None) -> None:
        """Put the benchmark files back (clean) in ``worktrees`` (default: all)."""
        for wt in worktrees or self.worktrees:
            (wt / "toggle.txt").write_text(TOGGLE_CLEAN)
            want = CONFLICT_B if wt == self.b else CONFLICT_CLEAN
            (wt / "conflict.txt").write_text(want)
            modules = wt / "node_modules"
            if modules.exists():
                shutil.rmtree(modules)

    def index_file(self, worktree: Path) -> Path:
        """The real index file of ``worktree``."""
        rel = Path(git(worktree, "rev-parse", "--git-path", "index"))
        return rel if rel.is_absolute() else worktree / rel


def make_git_wrapper(folder: Path) -> Path:
    """A ``git`` that logs each invocation's arguments to ``$WTLS_BENCH_GITLOG``, then runs git.

    Put ``folder`` first on the server's PATH to count the git commands (hence refreshes) it
    runs. Costs one ``sh`` start per git call, so it is used only where calls are counted.
    """
    real = shutil.which("git")
    if real is None:
        raise RuntimeError("git is not on PATH")
    folder.mkdir(parents=True, exist_ok=True)
    wrapper = folder / "git"
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ -n "$WTLS_BENCH_GITLOG" ]; then printf \'%s\\n\' "$*" >> "$WTLS_BENCH_GITLOG"; fi\n'
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    return folder
