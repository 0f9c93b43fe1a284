"""The oracle for conflict-foresight tests: what a real ``git merge`` does.

Each side's working state is committed for real in a scratch clone (its files copied over a
checkout of its HEAD, then ``git add -A`` and ``git commit``), and the two commits are merged
with ``git merge``. The conflicted files come from ``git diff --name-only --diff-filter=U``, the
kinds from the ``CONFLICT (<kind>):`` lines git prints.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.gitutil import git
from wtls.predict import PairPrediction, Prediction


@dataclass(frozen=True)
class MergeResult:
    """What one real merge produced."""

    files: frozenset[str]
    kinds: frozenset[str]

    @property
    def conflicted(self) -> bool:
        return bool(self.files)


def _replace_files(src: Path, dst: Path) -> None:
    """Make ``dst``'s files (not its .git) an exact copy of ``src``'s."""
    for item in dst.iterdir():
        if item.name == ".git":
            continue
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item)
        else:
            item.unlink()
    for item in src.iterdir():
        if item.name == ".git":
            continue
        target = dst / item.name
        if item.is_dir() and not item.is_symlink():
            shutil.copytree(item, target, symlinks=True)
        else:
            shutil.copy2(item, target, follow_symlinks=False)


class Oracle:
    """A scratch clone holding one real commit per side; merges them with ``git merge``."""

    def __init__(self, repo: Path, scratch: Path) -> None:
        self.scratch = scratch
        subprocess.run(
            ["git", "clone", "-q", "--no-local", str(repo), str(scratch)],
            check=True,
            capture_output=True,
        )
        self._refs: dict[str, str] = {}

    def commit_worktree(self, worktree: Path) -> str:
        """Commit ``worktree``'s working state (tracked, untracked, not ignored) for real."""
        key = str(worktree)
        if key not in self._refs:
            head = git(worktree, "rev-parse", "HEAD")
            branch = f"side-{len(self._refs)}"
            git(self.scratch, "checkout", "-q", "-f", "-B", branch, head)
            git(self.scratch, "clean", "-q", "-fdx")
            _replace_files(worktree, self.scratch)
            git(self.scratch, "add", "-A")
            git(self.scratch, "commit", "-q", "--allow-empty", "-m", f"state of {worktree.name}")
            self._refs[key] = branch
        return self._refs[key]

    def branch_tip(self, branch: str) -> str:
        """A side that is the tip of ``branch`` (for comparisons with the base branch)."""
        return f"origin/{branch}"

    def merge(self, ours: str, theirs: str) -> MergeResult:
        """``git merge theirs`` on top of ``ours``; what conflicted and how."""
        git(self.scratch, "checkout", "-q", "-f", "--detach", ours)
        git(self.scratch, "clean", "-q", "-fdx")
        proc = subprocess.run(
            ["git", "merge", "--no-edit", "-q", theirs],
            cwd=self.scratch,
            capture_output=True,
            text=True,
            check=False,
        )
        files = frozenset(git(self.scratch, "diff", "--name-only", "--diff-filter=U").splitlines())
        kinds = frozenset(re.findall(r"CONFLICT \(([^)]*)\)", proc.stdout + proc.stderr))
        if proc.returncode != 0 and not files and not kinds:
            raise AssertionError(f"git merge failed without conflicts: {proc.stderr}")
        subprocess.run(["git", "merge", "--abort"], cwd=self.scratch, capture_output=True)
        git(self.scratch, "reset", "-q", "--hard")
        return MergeResult(files=files, kinds=kinds)


def predicted(pair: PairPrediction | None) -> MergeResult:
    """The prediction for one pair in the oracle's terms."""
    if pair is None:
        return MergeResult(files=frozenset(), kinds=frozenset())
    kinds: set[str] = set()
    for fc in pair.conflicts:
        kinds.update(k for k in fc.kinds)
    return MergeResult(files=frozenset(f.path for f in pair.conflicts), kinds=frozenset(kinds))


def find_pair(
    prediction: Prediction, a: Path, b: Path, *, against_base: bool = False
) -> PairPrediction | None:
    """The prediction's pair for ``a``/``b`` (either order), if it predicted anything."""
    for pair in prediction.pairs:
        if pair.against_base == against_base and {pair.a, pair.b} == {a, b}:
            return pair
    return None


def assert_matches_real_merges(
    prediction: Prediction,
    repo: Path,
    worktrees: Sequence[Path],
    scratch: Path,
    base_branch: str = "main",
) -> dict[tuple[str, str], MergeResult]:
    """Every pair of ``worktrees``, and each against the base tip, predicted == real merge."""
    oracle = Oracle(repo, scratch)
    results: dict[tuple[str, str], MergeResult] = {}
    for i, a in enumerate(worktrees):
        for b in worktrees[i + 1 :]:
            pair = find_pair(prediction, a, b)
            ours, theirs = (a, b) if pair is None or pair.a == a else (b, a)
            real = oracle.merge(oracle.commit_worktree(ours), oracle.commit_worktree(theirs))
            assert predicted(pair) == real, f"{a.name} + {b.name}: predicted {pair}, real {real}"
            results[(a.name, b.name)] = real
    for w in worktrees:
        if git(w, "branch", "--show-current") == base_branch:
            continue
        real = oracle.merge(oracle.branch_tip(base_branch), oracle.commit_worktree(w))
        pair = find_pair(prediction, repo, w, against_base=True)
        if pair is None:
            # The base worktree is clean, so the base comparison is its ordinary pair.
            holders = [x for x in worktrees if git(x, "branch", "--show-current") == base_branch]
            if holders and git(holders[0], "status", "--porcelain") == "":
                pair = find_pair(prediction, holders[0], w)
        assert predicted(pair) == real, f"{base_branch} + {w.name}: predicted {pair}, real {real}"
        results[(base_branch, w.name)] = real
    return results


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha1()
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in sorted(names):
            p = Path(folder) / name
            digest.update(str(p.relative_to(root)).encode())
            digest.update(p.read_bytes() if not p.is_symlink() else os.readlink(p).encode())
    return digest.hexdigest()


def _status(worktree: Path) -> str:
    """``git status`` that never rewrites the index (so it cannot disturb the comparison)."""
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=worktree,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
    ).stdout


def _observe(repo: Path, worktrees: Sequence[Path]) -> dict[str, object]:
    seen: dict[str, object] = {
        "refs": git(repo, "for-each-ref"),
        "worktrees": git(repo, "worktree", "list"),
    }
    for w in worktrees:
        index = Path(git(w, "rev-parse", "--path-format=absolute", "--git-path", "index"))
        st = index.stat()
        seen[str(w)] = (
            git(w, "rev-parse", "HEAD"),
            _status(w),
            index.read_bytes(),
            st.st_mtime_ns,
            _tree_digest(w),
            sorted(p.name for p in index.parent.iterdir() if p.name.endswith(".lock")),
        )
    return seen


@contextmanager
def untouched(repo: Path, worktrees: Sequence[Path]) -> Iterator[None]:
    """Assert that the block changes no ref, HEAD, index (bytes and mtime) or working file."""
    before = _observe(repo, worktrees)
    yield
    after = _observe(repo, worktrees)
    assert after == before
