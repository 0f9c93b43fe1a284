"""`merge --remove` after a removal was killed while the folder was renamed aside."""

from __future__ import annotations

import os
from pathlib import Path

from tests.core.lifecycle_util import run_wtls
from tests.gitutil import add_worktree, commit_all, git


def test_merge_remove_puts_back_an_interrupted_removal_first(repo: Path, tmp_path: Path) -> None:
    """Found by test_kill_during_merge: the retry named the worktree by its aside name."""
    wt = add_worktree(repo, tmp_path / "wt", "feature/a")
    (wt / "a.txt").write_text("a\n")
    commit_all(wt, "a")
    # What a removal killed between its rename aside and its deletion leaves behind.
    admin = Path(git(wt, "rev-parse", "--absolute-git-dir"))
    aside = wt.parent / f".{wt.name}.wtls-removing-12345"
    os.rename(wt, aside)
    (admin / "gitdir").write_text(f"{aside / '.git'}\n")
    proc = run_wtls(repo, "merge", "feature/a", "--remove")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert f"put {wt} back" in proc.stdout
    assert "removed" in proc.stdout
    assert not wt.exists() and not aside.exists()
    assert git(repo, "show", "main:a.txt") == "a"
