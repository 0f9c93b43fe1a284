"""Hostile review of the code paths merged on day s3: each test tries to lose a user's work.

Real repositories, real git. A test here failed on the code before its fix.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.lifecycle_util import run_wtls
from tests.gitutil import add_worktree, commit_all, git, make_repo
from wtls.git import GitError
from wtls.scratch import acquire
from wtls.worktrees import discover, scratch_root


def _common(repo: Path) -> Path:
    return Path(git(repo, "rev-parse", "--path-format=absolute", "--git-common-dir"))


def test_scratch_never_cleans_a_user_worktree_registered_at_a_slot_path(repo: Path) -> None:
    """A user's own worktree at <common>/wtls/scratch/scratch-0 is not a scratch worktree.

    Before the fix, acquire() took it as slot 0 and ran `git clean -ffdx` and `read-tree -u
    --reset` in it: its untracked and modified files were gone.
    """
    slot = scratch_root(_common(repo)) / "scratch-0"
    slot.parent.mkdir(parents=True)
    add_worktree(repo, slot, "mine")
    (slot / "notes.txt").write_text("untracked work\n")
    (slot / "cli.py").write_text("modified work\n")
    head = git(repo, "rev-parse", "HEAD")
    with acquire(discover(repo), head) as scratch:
        assert scratch.path != slot
    assert (slot / "notes.txt").read_text() == "untracked work\n"
    assert (slot / "cli.py").read_text() == "modified work\n"


def test_scratch_root_that_is_a_symlink_is_refused(repo: Path, tmp_path: Path) -> None:
    """<common>/wtls/scratch as a link to a folder of user worktrees: nothing there is removed.

    Before the fix, scratch-0 under the link (a user worktree git knows by its real path) was
    "not registered", so acquire() ran shutil.rmtree on it: the whole worktree was deleted.
    """
    elsewhere = tmp_path / "wts"
    elsewhere.mkdir()
    user = add_worktree(repo, elsewhere / "scratch-0", "mine")
    (user / "notes.txt").write_text("untracked work\n")
    root = scratch_root(_common(repo))
    root.parent.mkdir(parents=True)
    root.symlink_to(elsewhere)
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(GitError), acquire(discover(repo), head):
        pass
    assert (user / "notes.txt").read_text() == "untracked work\n"
    assert (user / "cli.py").is_file()


LAND_TEST = f"{sys.executable} -c pass"


def _feature(tmp_path: Path, files: dict[str, str]) -> tuple[Path, Path]:
    """A repository (main checked out, *.log and cache ignored) and a worktree adding ``files``."""
    repo = make_repo(tmp_path, files={"a.txt": "a\n", ".gitignore": "*.log\ncache\n"})
    wt = add_worktree(repo, tmp_path / "b", "feat")
    for name, text in files.items():
        (wt / name).parent.mkdir(parents=True, exist_ok=True)
        (wt / name).write_text(text)
        git(wt, "add", "-f", "--", name)
    git(wt, "commit", "-qm", "feature")
    return repo, wt


def test_land_never_overwrites_an_ignored_file_in_the_base_worktree(tmp_path: Path) -> None:
    """`git read-tree -u -m` replaces ignored files; before the fix land lost x.log's text."""
    repo, _ = _feature(tmp_path, {"x.log": "theirs\n"})
    (repo / "x.log").write_text("mine, ignored\n")
    before = git(repo, "rev-parse", "main")
    proc = run_wtls(repo, "land", "--test", LAND_TEST)
    assert "x.log" in proc.stdout + proc.stderr
    assert (repo / "x.log").read_text() == "mine, ignored\n"
    assert git(repo, "rev-parse", "main") == before


def test_land_never_replaces_an_ignored_file_where_a_new_folder_goes(tmp_path: Path) -> None:
    repo, _ = _feature(tmp_path, {"cache/x": "theirs\n"})
    (repo / "cache").write_text("mine, ignored\n")
    before = git(repo, "rev-parse", "main")
    run_wtls(repo, "land", "--test", LAND_TEST)
    assert (repo / "cache").read_text() == "mine, ignored\n"
    assert git(repo, "rev-parse", "main") == before


def test_land_still_lands_beside_ignored_files_elsewhere(tmp_path: Path) -> None:
    repo, _ = _feature(tmp_path, {"src/new.txt": "theirs\n"})
    (repo / "build.log").write_text("mine, ignored\n")
    proc = run_wtls(repo, "land", "--test", LAND_TEST)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (repo / "src/new.txt").read_text() == "theirs\n"
    assert (repo / "build.log").read_text() == "mine, ignored\n"


def test_land_does_not_move_a_base_branch_that_is_being_rebased(tmp_path: Path) -> None:
    """Before the fix land moved main under `git rebase`: its last step failed, stuck."""
    repo, _ = _feature(tmp_path, {"new.txt": "theirs\n"})
    git(repo, "checkout", "-qb", "other")
    (repo / "a.txt").write_text("other\n")
    commit_all(repo, "other")
    git(repo, "checkout", "-q", "main")
    (repo / "a.txt").write_text("main\n")
    commit_all(repo, "main")
    rebase = subprocess.run(["git", "rebase", "other"], cwd=repo, capture_output=True, check=False)
    assert rebase.returncode != 0  # stopped at the conflict in a.txt
    before = git(repo, "rev-parse", "refs/heads/main")
    proc = run_wtls(repo, "land", "--test", LAND_TEST, "feat")
    assert proc.returncode != 0
    assert "rebas" in proc.stdout + proc.stderr
    assert git(repo, "rev-parse", "refs/heads/main") == before


def test_prune_merged_keeps_the_commits_of_a_branch_merged_only_by_content(
    tmp_path: Path,
) -> None:
    """A branch that added X and then dropped it is "merged" by content (merging changes
    nothing), but "add X" is in no other ref. Before the fix prune --merged deleted the branch
    without a backup ref: the commit was unreachable (the worktree's HEAD log went too).
    """
    repo = make_repo(tmp_path, files={"a.txt": "a\n"})
    wt = add_worktree(repo, tmp_path / "b", "feat")
    (wt / "x.txt").write_text("feature X\n")
    git(wt, "add", "x.txt")
    git(wt, "commit", "-qm", "add X")
    added = git(wt, "rev-parse", "HEAD")
    git(wt, "rm", "-q", "x.txt")
    git(wt, "commit", "-qm", "drop X for now")
    proc = run_wtls(repo, "prune", "--merged")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not wt.exists()
    assert git(repo, "for-each-ref", "--contains", added, "refs/wtls/")


def test_land_refuses_when_the_base_branch_is_checked_out_twice(tmp_path: Path) -> None:
    """Before the fix only one was brought along: the other showed the landed file as a staged
    deletion, and its next commit would have undone the landing (its own edit was unchecked).
    """
    repo, _ = _feature(tmp_path, {"new.txt": "theirs\n"})
    other = tmp_path / "main2"
    git(repo, "worktree", "add", "-q", "-f", str(other), "main")
    (other / "a.txt").write_text("my work on main\n")
    before = git(repo, "rev-parse", "main")
    proc = run_wtls(repo, "land", "--test", LAND_TEST)
    assert proc.returncode != 0
    assert "checked out in 2 worktrees" in proc.stdout + proc.stderr
    assert git(repo, "rev-parse", "main") == before
    assert git(other, "status", "--porcelain") == "M a.txt"


def test_scratch_switch_never_resets_a_user_worktree_through_a_rewritten_git_file(
    repo: Path, tmp_path: Path
) -> None:
    """A test run that points the scratch's .git file at a user worktree's git dir: before the
    fix the next switch reset that user's index (staged work gone) and detached its HEAD.
    """
    user = add_worktree(repo, tmp_path / "user", "mine")
    (user / "staged.txt").write_text("staged work\n")
    git(user, "add", "staged.txt")
    user_gitdir = git(user, "rev-parse", "--absolute-git-dir")
    head = git(repo, "rev-parse", "HEAD")
    with acquire(discover(repo), head) as scratch:
        (scratch.path / ".git").write_text(f"gitdir: {user_gitdir}\n")
        with pytest.raises(GitError):
            scratch.switch(head)
    assert git(user, "symbolic-ref", "HEAD") == "refs/heads/mine"
    assert git(user, "diff", "--cached", "--name-only") == "staged.txt"


def test_scratch_slots_of_wtls_are_still_reused(repo: Path) -> None:
    """The foreign-slot check must not skip wtls's own slots (that would use up all 16)."""
    head = git(repo, "rev-parse", "HEAD")
    with acquire(discover(repo), head) as first:
        pass
    with acquire(discover(repo), head) as second:
        assert second.path == first.path
