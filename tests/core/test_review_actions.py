"""Take into Base and Discard in Worktree on real repositories (one file each, nothing else)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gitutil import add_worktree, commit_all, git, make_repo
from wtls.errors import Refused
from wtls.review_actions import discard_in_worktree, take_into_base

FILES = {"f.txt": "a\nb\nc\n", "keep.txt": "k\n", "gone.txt": "bye\n", "old.txt": "x\n" * 20}


@pytest.fixture
def repo_a(tmp_path: Path) -> tuple[Path, Path]:
    repo = make_repo(tmp_path, files=FILES).resolve()
    a = add_worktree(repo, tmp_path / "a", "feature/a").resolve()
    # Committed and uncommitted work: both are the worktree's working state.
    (a / "f.txt").write_text("a\nB\nc\n")
    commit_all(a, "edit f")
    (a / "new.txt").write_text("new\n")
    (a / "gone.txt").unlink()
    git(a, "mv", "old.txt", "renamed.txt")
    (a / "keep.txt").write_text("k\nmore\n")  # changed, never acted on
    return repo, a


def status(worktree: Path) -> list[str]:
    out = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=worktree,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.splitlines()


def test_take_applies_each_kind_of_change_to_base_uncommitted(repo_a: tuple[Path, Path]) -> None:
    repo, a = repo_a
    head = git(repo, "rev-parse", "HEAD")
    done = take_into_base("feature/a", "f.txt", cwd=repo)
    assert (done.status, done.changed) == ("modified", repo)
    assert (repo / "f.txt").read_text() == "a\nB\nc\n"
    assert status(repo) == [" M f.txt"]
    take_into_base(str(a), str(a / "new.txt"), cwd=repo)  # an absolute path inside works
    assert (repo / "new.txt").read_text() == "new\n"
    take_into_base("feature/a", "gone.txt", cwd=repo)
    assert not (repo / "gone.txt").exists()
    done = take_into_base("feature/a", "old.txt", cwd=repo)  # the old path names the rename
    assert (done.status, done.path, done.old_path) == ("renamed", "renamed.txt", "old.txt")
    assert not (repo / "old.txt").exists() and (repo / "renamed.txt").read_text() == "x\n" * 20
    assert sorted(status(repo)) == [
        " D gone.txt",
        " D old.txt",
        " M f.txt",
        "?? new.txt",
        "?? renamed.txt",
    ]
    # Nothing else moved: base's HEAD and index, keep.txt, and the reviewed worktree.
    assert git(repo, "rev-parse", "HEAD") == head
    assert (repo / "keep.txt").read_text() == "k\n"
    assert (a / "f.txt").read_text() == "a\nB\nc\n" and (a / "keep.txt").read_text() == "k\nmore\n"


@pytest.mark.parametrize("kind", ["unstaged", "staged", "untracked-target", "ignored-target"])
def test_take_is_refused_when_base_has_changes_in_the_file(
    repo_a: tuple[Path, Path], kind: str
) -> None:
    repo, _ = repo_a
    path = "f.txt"
    if kind == "unstaged":
        (repo / "f.txt").write_text("mine\n")
    elif kind == "staged":
        (repo / "f.txt").write_text("staged\n")
        git(repo, "add", "f.txt")
        (repo / "f.txt").write_text("a\nb\nc\n")
    elif kind == "untracked-target":
        path = "old.txt"
        (repo / "renamed.txt").write_text("someone else's\n")
    else:
        path = "new.txt"
        (repo / ".gitignore").write_text("new.txt\n")  # in base only, untracked
        (repo / "new.txt").write_text("ignored but here\n")
    before = status(repo), {p.name: p.read_bytes() for p in repo.iterdir() if p.is_file()}
    with pytest.raises(Refused, match="has changes in"):
        take_into_base("feature/a", path, cwd=repo)
    after = status(repo), {p.name: p.read_bytes() for p in repo.iterdir() if p.is_file()}
    assert after == before


def test_take_is_refused_when_base_moved_that_file(repo_a: tuple[Path, Path]) -> None:
    repo, _ = repo_a
    (repo / "f.txt").write_text("a\nb\nc\nbase moved on\n")
    commit_all(repo, "base edits f")
    with pytest.raises(Refused, match="not a clean take"):
        take_into_base("feature/a", "f.txt", cwd=repo)
    assert (repo / "f.txt").read_text() == "a\nb\nc\nbase moved on\n" and status(repo) == []


@pytest.mark.parametrize("bad", ["../x", ".git/config", "/etc/passwd", "", "nothing.txt"])
def test_bad_paths_are_refused(repo_a: tuple[Path, Path], bad: str) -> None:
    repo, _ = repo_a
    for action in (take_into_base, discard_in_worktree):
        with pytest.raises(Refused):
            action("feature/a", bad, cwd=repo)
    assert status(repo) == [] and git(repo, "for-each-ref", "refs/wtls/") == ""


def test_a_path_below_a_symbolic_link_is_refused(repo_a: tuple[Path, Path], tmp_path: Path) -> None:
    repo, a = repo_a
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.txt").write_text("outside\n")
    (a / "link").symlink_to(outside)
    with pytest.raises(Refused, match="symbolic link"):
        discard_in_worktree("feature/a", "link/f.txt", cwd=repo)
    assert (outside / "f.txt").read_text() == "outside\n"


def test_discard_restores_the_merge_base_and_the_backup_holds_the_work(
    repo_a: tuple[Path, Path],
) -> None:
    repo, a = repo_a
    (a / "f.txt").write_text("a\nB\nc\nuncommitted too\n")
    git(a, "add", "f.txt")  # staged: the index entry goes back too, the backup keeps it
    done = discard_in_worktree("feature/a", "f.txt", cwd=repo)
    assert (a / "f.txt").read_text() == "a\nb\nc\n"
    assert done.backup_ref and done.backup_ref.startswith("refs/wtls/backup/feature/a-discard-")
    assert done.backup_ref in done.message and done.restore_command in done.message
    saved = git(repo, "show", f"{done.backup_ref}:f.txt")
    assert saved == "a\nB\nc\nuncommitted too"
    # The staged content is in the backup's index commit (parent 2).
    assert git(repo, "show", f"{done.backup_ref}^2:f.txt") == "a\nB\nc\nuncommitted too"
    # Other files are untouched, and the restore command gives the file back.
    assert (a / "keep.txt").read_text() == "k\nmore\n" and (a / "new.txt").exists()
    subprocess.run(done.restore_command or "", shell=True, check=True)
    assert (a / "f.txt").read_text() == "a\nB\nc\nuncommitted too\n"


def test_discard_an_added_deleted_and_renamed_file(repo_a: tuple[Path, Path]) -> None:
    repo, a = repo_a
    discard_in_worktree("feature/a", "new.txt", cwd=repo)
    assert not (a / "new.txt").exists()
    discard_in_worktree("feature/a", "gone.txt", cwd=repo)
    assert (a / "gone.txt").read_text() == "bye\n"
    done = discard_in_worktree("feature/a", "renamed.txt", cwd=repo)
    assert done.status == "renamed"
    assert (a / "old.txt").read_text() == "x\n" * 20 and not (a / "renamed.txt").exists()
    assert status(a) == [" M keep.txt"]
    refs = git(repo, "for-each-ref", "--format=%(refname)", "refs/wtls/backup/").splitlines()
    assert len(refs) == 3


def test_wtls_restore_brings_the_discarded_worktree_back(
    repo_a: tuple[Path, Path], tmp_path: Path
) -> None:
    repo, _ = repo_a
    done = discard_in_worktree("feature/a", "new.txt", cwd=repo)
    copy = tmp_path / "restored"
    subprocess.run(
        [sys.executable, "-m", "wtls", "restore", done.backup_ref or "", "--path", str(copy)],
        cwd=repo,
        check=True,
        capture_output=True,
    )
    assert (copy / "new.txt").read_text() == "new\n"


def test_the_cli_takes_and_discards(repo_a: tuple[Path, Path]) -> None:
    repo, a = repo_a
    wtls = [sys.executable, "-m", "wtls"]
    took = subprocess.run([*wtls, "take", "feature/a", "f.txt"], cwd=repo, capture_output=True)
    assert took.returncode == 0 and b"Took f.txt (modified)" in took.stdout
    again = subprocess.run([*wtls, "take", "feature/a", "f.txt"], cwd=repo, capture_output=True)
    assert again.returncode == 1 and b"refused: the base worktree" in again.stderr
    out = subprocess.run(
        [*wtls, "discard", str(a), "new.txt", "--json"], cwd=repo, capture_output=True, check=True
    )
    answer = json.loads(out.stdout)
    assert answer["action"] == "discard" and answer["backupRef"] in answer["message"]
    assert not (a / "new.txt").exists()


def test_discard_never_deletes_a_folder_or_file_in_the_way(repo_a: tuple[Path, Path]) -> None:
    repo, a = repo_a
    (a / "keep.txt").unlink()
    (a / "keep.txt").mkdir()  # the file became a folder holding other work
    (a / "keep.txt" / "inner.txt").write_text("other work\n")
    with pytest.raises(Refused, match="is a folder"):
        discard_in_worktree("feature/a", "keep.txt", cwd=repo)
    assert (a / "keep.txt" / "inner.txt").read_text() == "other work\n"


def test_discard_never_replaces_a_file_standing_where_a_folder_was(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, files={"d/f.txt": "f\n"}).resolve()
    a = add_worktree(repo, tmp_path / "a", "feature/a").resolve()
    git(a, "rm", "-q", "-r", "d")
    (a / "d").write_text("a file now, with work in it\n")
    with pytest.raises(Refused, match="is a file"):
        discard_in_worktree("feature/a", "d/f.txt", cwd=repo)
    assert (a / "d").read_text() == "a file now, with work in it\n"
