"""The predicted merge of one file and a worktree's diff, against real `git merge` and `git diff`.

The oracle commits each worktree's working state for real in a scratch clone and runs ``git
merge`` there (:class:`tests.core.predict_oracle.Oracle`); the predicted file must be byte for
byte what that merge leaves on disk, with the sides named by branch instead of ``HEAD``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.core.predict_oracle import Oracle
from tests.core.test_predict_property import BASE, apply, edits
from tests.gitutil import add_worktree, commit_all, git, make_repo
from wtls.errors import Refused
from wtls.review import predicted_merge, worktree_diff


def real_merge(oracle: Oracle, ours: Path, theirs: Path, rel: str) -> tuple[str | None, bool]:
    """What ``git merge`` of the two working states leaves in ``rel`` (None: no such file)."""
    mine, other = oracle.commit_worktree(ours), oracle.commit_worktree(theirs)
    scratch = oracle.scratch
    git(scratch, "checkout", "-q", "-f", "--detach", mine)
    git(scratch, "clean", "-q", "-fdx")
    subprocess.run(["git", "merge", "--no-edit", "-q", other], cwd=scratch, capture_output=True)
    conflicted = rel in git(scratch, "diff", "--name-only", "--diff-filter=U").splitlines()
    file = scratch / rel
    content = file.read_text() if file.exists() else None
    subprocess.run(["git", "merge", "--abort"], cwd=scratch, capture_output=True)
    git(scratch, "reset", "-q", "--hard")
    if content is not None:
        branch_a, branch_b = (
            git(ours, "branch", "--show-current"),
            git(theirs, "branch", "--show-current"),
        )
        content = content.replace("<<<<<<< HEAD", f"<<<<<<< {branch_a}")
        content = content.replace(f">>>>>>> {other}", f">>>>>>> {branch_b}")
    return content, conflicted


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ours=edits, theirs=edits, commit_theirs=st.booleans())
def test_the_predicted_file_is_what_git_merge_leaves(
    ours: list[tuple[str, str]], theirs: list[tuple[str, str]], commit_theirs: bool
) -> None:
    root = Path(tempfile.mkdtemp(prefix="wtls-review-")).resolve()
    try:
        repo = make_repo(root, files={"f.txt": apply([("keep", "")] * len(BASE))})
        a = add_worktree(repo, root / "a", "feature/a").resolve()
        b = add_worktree(repo, root / "b", "feature/b").resolve()
        (a / "f.txt").write_text(apply(ours))
        (b / "f.txt").write_text(apply(theirs))
        if commit_theirs:
            commit_all(b, "theirs")
        merged = predicted_merge(a / "f.txt", str(b))
        expected, conflicted = real_merge(Oracle(repo, root / "scratch"), a, b, "f.txt")
        assert (merged.content, merged.conflicted, merged.path) == (expected, conflicted, "f.txt")
        assert (merged.ours, merged.theirs) == ("feature/a", "feature/b")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path, Path]:
    files = {"f.txt": "a\nb\nc\n", "keep.txt": "k\n", "bin.dat": "x"}
    repo = make_repo(tmp_path, files=files)
    a = add_worktree(repo, tmp_path / "a", "feature/a").resolve()
    b = add_worktree(repo, tmp_path / "b", "feature/b").resolve()
    return repo.resolve(), a, b


def test_a_rename_on_the_other_side_is_followed(
    pair: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    repo, a, b = pair
    (a / "f.txt").write_text("a\nONE\nc\n")
    git(b, "mv", "f.txt", "g.txt")
    (b / "g.txt").write_text("a\nb\nc\nd\n")
    merged = predicted_merge(a / "f.txt", "feature/b")
    assert merged.path == "g.txt" and not merged.conflicted
    assert merged.content == "a\nONE\nc\nd\n"
    expected, conflicted = real_merge(Oracle(repo, tmp_path / "scratch"), a, b, "g.txt")
    assert (merged.content, merged.conflicted) == (expected, conflicted)


def test_edit_against_delete_is_a_conflict_that_keeps_our_file(
    pair: tuple[Path, Path, Path],
) -> None:
    _, a, b = pair
    (a / "f.txt").write_text("a\nedited\nc\n")
    (b / "f.txt").unlink()
    merged = predicted_merge(a / "f.txt", str(b))
    assert merged.conflicted and merged.path == "f.txt" and merged.content == "a\nedited\nc\n"


def test_a_file_deleted_cleanly_by_the_merge_has_no_path(pair: tuple[Path, Path, Path]) -> None:
    _, a, b = pair
    (b / "keep.txt").unlink()
    merged = predicted_merge(a / "keep.txt", str(b))
    assert (merged.path, merged.content, merged.conflicted) == (None, "", False)


def test_binary_and_add_add(pair: tuple[Path, Path, Path], tmp_path: Path) -> None:
    repo, a, b = pair
    (a / "bin.dat").write_bytes(b"\0ours")
    (b / "bin.dat").write_bytes(b"\0theirs")
    merged = predicted_merge(a / "bin.dat", str(b))
    assert merged.binary and merged.conflicted and merged.content == ""
    (a / "new.txt").write_text("from a\n")  # untracked on both sides: add/add
    (b / "new.txt").write_text("from b\n")
    merged = predicted_merge(a / "new.txt", str(b))
    expected, conflicted = real_merge(Oracle(repo, tmp_path / "scratch"), a, b, "new.txt")
    assert merged.conflicted and conflicted and merged.content == expected
    assert "<<<<<<< feature/a" in merged.content and ">>>>>>> feature/b" in merged.content


def test_against_base_and_unsaved_buffers(pair: tuple[Path, Path, Path]) -> None:
    repo, a, b = pair
    (repo / "f.txt").write_text("a\nMAIN\nc\n")
    commit_all(repo, "main moves")
    (repo / "f.txt").write_text("a\nuncommitted in main: not the base tip\nc\n")
    (a / "f.txt").write_text("a\nA\nc\n")
    merged = predicted_merge(a / "f.txt", "base")
    assert merged.conflicted and merged.theirs == "main"
    assert "=======\nMAIN\n>>>>>>> main\n" in merged.content
    # An unsaved buffer on the other side counts, as conflict foresight counts it.
    quiet = predicted_merge(a / "keep.txt", str(b))
    assert not quiet.conflicted
    unsaved = predicted_merge(a / "keep.txt", str(b), overlays={b / "keep.txt": b"k2\n"})
    assert unsaved.content == "k2\n"
    assert (b / "keep.txt").read_text() == "k\n"


def test_bad_requests_are_refused_with_the_reason(
    pair: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    repo, a, b = pair
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "x.txt").write_text("x\n")
    cases = {
        outside / "x.txt": (str(b), "not inside a git repository"),
        a / "f.txt": ("no/such/worktree", "no worktree matches"),
        a / "keep.txt": (str(a), "own worktree"),
        a / ".git": (str(b), "not a file of worktree"),
        a / "missing-dir" / "x.txt": (str(b), "not in an existing folder"),
    }
    for file, (other, reason) in cases.items():
        with pytest.raises(Refused, match=reason):
            predicted_merge(file, other)
    statuses = {w: git(w, "status", "--porcelain") for w in (repo, a, b)}
    predicted_merge(a / "f.txt", str(b))
    assert {w: git(w, "status", "--porcelain") for w in (repo, a, b)} == statuses


def _wtls(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wtls", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_diff_shows_committed_uncommitted_and_untracked_work_only(
    pair: tuple[Path, Path, Path],
) -> None:
    repo, a, _ = pair
    (a / "f.txt").write_text("a\ncommitted\nc\n")
    commit_all(a, "committed work")
    (a / "keep.txt").write_text("k\nuncommitted\n")
    (a / "new.txt").write_text("untracked\n")
    git(a, "mv", "bin.dat", "moved.dat")
    (repo / "base-only.txt").write_text("main's own change, not this worktree's\n")
    commit_all(repo, "main moves on")
    diff = worktree_diff("feature/a", cwd=repo)
    assert diff.merge_base == git(repo, "rev-parse", "HEAD~1")
    files = {f.path: (f.status, f.old_path, f.added, f.deleted) for f in diff.files}
    assert files == {
        "f.txt": ("modified", None, 1, 1),
        "keep.txt": ("modified", None, 1, 0),
        "new.txt": ("added", None, 1, 0),
        "moved.dat": ("renamed", "bin.dat", 0, 0),
    }
    assert diff.patch is not None and "+uncommitted" in diff.patch and "base-only" not in diff.patch
    status = git(a, "status", "--porcelain")
    assert worktree_diff(str(a), cwd=repo, patch=False).patch is None
    assert git(a, "status", "--porcelain") == status, "the worktree's index is untouched"

    out = _wtls(repo, "diff", "feature/a", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["branch"] == "feature/a" and data["base"] == "main"
    assert {f["path"]: f["status"] for f in data["files"]}["moved.dat"] == "renamed"
    assert data["files"][0].keys() >= {"path", "status", "oldPath", "added", "deleted"}
    stat = _wtls(repo, "diff", "feature/a", "--stat")
    assert stat.returncode == 0 and "new.txt" in stat.stdout and "4 files" in stat.stdout
    patch = _wtls(repo, "diff", "feature/a")
    assert patch.returncode == 0 and "+uncommitted" in patch.stdout
    bad = _wtls(repo, "diff", "no-such-worktree")
    assert bad.returncode == 1 and "no worktree matches" in bad.stderr
