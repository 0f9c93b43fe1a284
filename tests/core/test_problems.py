"""Branch and worktree problems: which appear, where, and what they tell the user to do."""

from __future__ import annotations

from pathlib import Path

from tests.gitutil import add_worktree, commit_all, git
from wtls.problems import stale_problems, worktree_problems
from wtls.worktrees import discover, repository_state


def codes_for(repo: Path, worktree: Path, far_behind: int = 50) -> dict[str, str]:
    state = repository_state(discover(repo))
    wt = state.find(worktree)
    assert wt is not None
    return {p.code: p.message for p in worktree_problems(state, wt, far_behind=far_behind)}


def test_clean_branch_has_no_problems(repo: Path, tmp_path: Path) -> None:
    fresh = add_worktree(repo, tmp_path / "fresh", "agent/fresh")
    assert codes_for(repo, fresh) == {}
    assert codes_for(repo, repo) == {}


def test_detached_locked_and_far_behind(repo: Path, tmp_path: Path) -> None:
    det = tmp_path / "det"
    git(repo, "worktree", "add", "-q", "--detach", str(det))
    git(repo, "worktree", "lock", "--reason", "agent busy", str(det))
    for i in range(3):
        (repo / f"m{i}.txt").write_text("m\n")
        commit_all(repo, f"m{i}")
    found = codes_for(repo, det, far_behind=3)
    assert "git switch -c" in found["detached-head"]
    assert "agent busy" in found["locked"] and "wtls unlock" in found["locked"]
    assert "3 commits behind main" in found["far-behind"]


def test_merged_branch_is_safe_to_remove_unless_dirty(repo: Path, tmp_path: Path) -> None:
    done = add_worktree(repo, tmp_path / "done", "feature/done")
    (done / "a.txt").write_text("a\n")
    commit_all(done, "a")
    git(repo, "merge", "-q", "--no-edit", "feature/done")
    found = codes_for(repo, done)
    assert "safe to remove" in found["merged"] and f"wtls remove {done}" in found["merged"]
    (done / "scratch.txt").write_text("uncommitted\n")
    found = codes_for(repo, done)
    assert "uncommitted changes" in found["merged"] and "safe to remove" not in found["merged"]


def test_problems_sit_on_the_worktree_head_file(repo: Path, tmp_path: Path) -> None:
    det = tmp_path / "det"
    git(repo, "worktree", "add", "-q", "--detach", str(det))
    state = repository_state(discover(repo))
    wt = state.find(det)
    assert wt is not None
    problems = worktree_problems(state, wt)
    assert {p.code for p in problems} == {"detached-head", "merged"}
    problem = problems[0]
    assert problem.path == Path(git(det, "rev-parse", "--absolute-git-dir")) / "HEAD"
    assert problem.path.is_file()


def test_stale_entries_tell_how_to_prune(repo: Path, tmp_path: Path) -> None:
    gone = add_worktree(repo, tmp_path / "gone", "feature/gone")
    import shutil

    shutil.rmtree(gone)
    (problem,) = stale_problems(repository_state(discover(repo)))
    assert problem.code == "prunable" and "wtls prune" in problem.message
    assert "feature/gone" in problem.message
