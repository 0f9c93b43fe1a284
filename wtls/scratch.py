"""Scratch worktrees that wtls owns: where test commands run, never in a user's worktree.

A small pool under the common git dir (``<common>/wtls/scratch/scratch-N``, see
:func:`wtls.worktrees.scratch_root`). Each is a detached linked worktree made by ``git worktree
add --detach`` and *locked* with a reason, so ``git worktree prune`` keeps it and ``git
worktree list`` says what it is; wtls's own listings leave it out
(:func:`wtls.worktrees.list_worktrees`), so ``wtls list/remove/prune`` and predictions never
see it. A slot is taken with an exclusive ``flock`` on ``scratch-N.lock``: two wtls processes
never share one.

Switching a slot to a commit (:meth:`Scratch.switch`) removes what the previous run wrote
(``git clean -ffdx``, keeping what the trusted setup made) and then ``git read-tree -u
--reset``: git rewrites only the files that differ (stat data says which), and a tracked file a
run modified is put back. The trusted setup (``.worktreeinclude``/``copy`` files and ``setup``
commands of ``.wtls.toml``) runs once per slot and again only when the recipe changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from wtls.git import GitError, run_git, split_z
from wtls.lifecycle.files import copy_ignored_files
from wtls.lifecycle.results import _REPO_POINTING_VARS
from wtls.lifecycle.setup import run_setup
from wtls.testplan import Recipe
from wtls.worktrees import Repository, is_scratch, list_worktrees, scratch_root

#: The lock reason ``git worktree list`` shows for a scratch worktree.
LOCK_REASON = "wtls scratch worktree for test runs (wtls owns it; `wtls check --test` reuses it)"
_PREFIX = "scratch-"
#: Most slots a repository gets (``--jobs`` above this waits for a free one).
MAX_SLOTS = 16


@dataclass(kw_only=True)
class Scratch:
    """One scratch worktree, held by this process while the context of :func:`acquire` lasts."""

    path: Path
    repo: Repository
    #: Problems of the setup (a failed setup command): runs still happen, and say so.
    problems: list[str] = field(default_factory=list)
    _keep: tuple[str, ...] = ()

    def switch(self, commit: str) -> None:
        """Make the files exactly ``commit``'s tree (plus what setup made), HEAD at ``commit``."""
        self._check_own()
        clean = ["clean", "-ffdxq"]
        for rel in self._keep:
            clean += ["-e", "/" + rel.rstrip("/")]
        run_git(clean, self.path)
        run_git(["read-tree", "-u", "--reset", "--end-of-options", commit], self.path)
        run_git(["update-ref", "--no-deref", "HEAD", commit], self.path)
        # read-tree --reset rewrote changed tracked files; files the run left behind untracked
        # were cleaned above. Nothing else remains from the previous run.

    def _check_own(self) -> None:
        """Refuse unless git sees this folder as a scratch worktree of wtls's, by its git dir.

        A run can rewrite the folder's ``.git`` file (or anyone its admin entry): cleaning and
        resetting then would act on the worktree that git dir belongs to, a user's index and
        HEAD. The git dir must be a linked worktree's, locked with :data:`LOCK_REASON`, and
        the folder its top.
        """
        out = run_git(
            ["rev-parse", "--show-toplevel", "--absolute-git-dir"], self.path
        ).text.splitlines()
        top, gitdir = Path(out[0]), Path(out[-1])
        try:
            reason = (gitdir / "locked").read_text(encoding="utf-8").strip()
        except OSError:
            reason = ""
        if (
            len(out) != 2
            or top.resolve() != self.path.resolve()
            or gitdir.parent.resolve() != (self.repo.common_dir / "worktrees").resolve()
            or reason != LOCK_REASON
        ):
            raise GitError(
                ["clean"],
                -1,
                f"{self.path} is not a wtls scratch worktree any more (its git dir is {gitdir}): "
                "nothing was cleaned or reset there",
                self.path,
            )


def _slot_paths(repo: Repository) -> list[Path]:
    return [scratch_root(repo.common_dir) / f"{_PREFIX}{n}" for n in range(MAX_SLOTS)]


def _registered(repo: Repository) -> set[Path]:
    return {e.path for e in list_worktrees(repo, scratch=True)}


def _foreign(repo: Repository) -> set[Path]:
    """Worktrees at slot paths that wtls did not make (not locked with :data:`LOCK_REASON`).

    A user's own worktree placed there is never cleaned, reset or removed: its slot is skipped.
    """
    return {
        e.path
        for e in list_worktrees(repo, scratch=True)
        if is_scratch(repo.common_dir, e.path) and e.lock_reason != LOCK_REASON
    }


def _check_root(repo: Repository) -> None:
    """Refuse a scratch root reached through a symbolic link.

    Slots under a link would be the link target's folders: wtls removes and cleans slots, so a
    link to a folder of the user's worktrees would delete them.
    """
    here = repo.common_dir / "wtls"
    for folder in (here, here / "scratch"):
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise GitError(
                ["worktree", "add"],
                -1,
                f"{folder} is a symbolic link or not a folder: wtls keeps its scratch worktrees "
                "only in a real folder it owns; remove it and run again",
                repo.common_dir,
            )


def _create(repo: Repository, path: Path, commit: str) -> None:
    """Register a new locked, detached scratch worktree at ``path``."""
    if path.exists() and not (path / ".git").exists():
        # A folder left by an interrupted creation: it holds nothing of a user's.
        shutil.rmtree(path)
    if path in _registered(repo) and not path.is_dir():
        run_git(["worktree", "unlock", "--", str(path)], repo.common_dir, ok_codes=(0, 128))
        run_git(["worktree", "prune"], repo.common_dir)
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    run_git(
        [
            "worktree",
            "add",
            "--detach",
            "--lock",
            "--reason",
            LOCK_REASON,
            "--no-checkout",
            "--",
            str(path),
            commit,
        ],
        repo.common_dir,
    )


def _prepare(scratch: Scratch, recipe: Recipe, commit: str) -> None:
    """Check out ``commit`` and run the trusted recipe once (again when it changed)."""
    stamp = scratch.path.parent / f"{scratch.path.name}.setup"
    try:
        done = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        done = None
    if isinstance(done, dict) and done.get("key") == recipe.key:
        scratch._keep = tuple(str(k) for k in done.get("keep", []))
        scratch.problems.extend(str(p) for p in done.get("problems", []))
        return
    scratch._keep = ()
    scratch.switch(commit)
    problems: list[str] = []
    if recipe.source is not None and recipe.copy:
        problems += copy_ignored_files(recipe.source, scratch.path, recipe.copy).problems
    if recipe.setup:
        env = {k: v for k, v in os.environ.items() if k not in _REPO_POINTING_VARS}
        env["WTLS_WORKTREE"] = str(scratch.path)
        env["WTLS_SCRATCH"] = "1"
        result = run_setup(scratch.path, recipe.setup, env=env)
        if not result.ok:
            problems.append(
                f"setup of the scratch worktree failed: {result.message or 'see its output'}"
            )
    # What the copy and the setup made (node_modules, .venv, .env) stays between runs.
    listing = run_git(["ls-files", "-z", "--others", "--directory"], scratch.path).stdout
    keep = sorted(split_z(listing))
    scratch._keep = tuple(keep)
    scratch.problems.extend(problems)
    stamp.write_text(
        json.dumps({"key": recipe.key, "keep": keep, "problems": problems}), encoding="utf-8"
    )


@contextlib.contextmanager
def acquire(repo: Repository, commit: str, recipe: Recipe | None = None) -> Iterator[Scratch]:
    """A free scratch worktree of ``repo`` (created on first use), held until the block ends.

    ``commit`` is what a new slot checks out first. Raises :class:`GitError` when none can be
    made.
    """
    root = scratch_root(repo.common_dir)
    _check_root(repo)
    root.mkdir(parents=True, exist_ok=True)
    _check_root(repo)
    foreign = _foreign(repo)
    for path in _slot_paths(repo):
        if path in foreign or path.is_symlink():
            continue
        fd = os.open(root / f"{path.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            if not (path / ".git").is_file() or path not in _registered(repo):
                if path.exists():
                    # Ours, but git forgot it (its record was pruned by hand): start afresh.
                    shutil.rmtree(path)
                _create(repo, path, commit)
                (root / f"{path.name}.setup").unlink(missing_ok=True)
            scratch = Scratch(path=path, repo=repo)
            _prepare(scratch, recipe or Recipe(), commit)
            yield scratch
            return
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
    raise GitError(
        ["worktree", "add"], -1, f"all {MAX_SLOTS} scratch worktrees are in use", repo.common_dir
    )


def scratch_worktrees(repo: Repository) -> list[Path]:
    """The scratch worktrees git has registered for ``repo``."""
    root = scratch_root(repo.common_dir)
    return sorted(e.path for e in list_worktrees(repo, scratch=True) if e.path.parent == root)


def describe_recipe(recipe: Recipe) -> str:
    """The setup commands in words (for messages)."""
    return "; ".join(shlex.join(c) for c in recipe.setup) or "none"


__all__ = [
    "LOCK_REASON",
    "MAX_SLOTS",
    "Recipe",
    "Scratch",
    "acquire",
    "describe_recipe",
    "scratch_worktrees",
]
