"""Hostile review of the code paths merged on day s3: each test tries to lose a user's work.

Real repositories, real git. A test here failed on the code before its fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gitutil import add_worktree, git
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
