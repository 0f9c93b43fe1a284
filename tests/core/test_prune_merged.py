"""`wtls prune --merged` over real worktrees merged every way, and the ones it must keep."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.lifecycle_util import repo_snapshot, run_wtls
from tests.gitutil import add_worktree, commit_all, git


@pytest.fixture
def sleeper() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        p.kill()
        p.wait(timeout=30)


def work(repo: Path, tmp_path: Path, name: str) -> Path:
    """A worktree on feature/NAME with one commit of its own (a new file NAME.txt)."""
    wt = add_worktree(repo, tmp_path / name, f"feature/{name}", "main")
    (wt / f"{name}.txt").write_text(f"{name}\n")
    commit_all(wt, f"add {name}")
    return wt


def branches(repo: Path) -> set[str]:
    return set(git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split())


@pytest.fixture
def zoo(repo: Path, tmp_path: Path, sleeper: list[subprocess.Popen[bytes]]) -> dict[str, Path]:
    """Worktrees merged by fast-forward, merge, squash and rebase, and the ones to keep."""
    wts: dict[str, Path] = {}
    wts["ff"] = work(repo, tmp_path, "ff")
    git(repo, "merge", "-q", "--ff-only", "feature/ff")
    wts["merge"] = work(repo, tmp_path, "merge")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge", "feature/merge")
    wts["squash"] = work(repo, tmp_path, "squash")
    git(repo, "merge", "-q", "--squash", "feature/squash")
    git(repo, "commit", "-q", "-m", "squash")
    wts["rebase"] = work(repo, tmp_path, "rebase")
    git(repo, "cherry-pick", "feature/rebase")  # what a rebase merge leaves on main
    for name in ("dirty", "locked", "busy"):
        wts[name] = work(repo, tmp_path, name)
        git(repo, "merge", "-q", "--no-ff", "-m", f"merge {name}", f"feature/{name}")
    (wts["dirty"] / "notes.txt").write_text("not committed\n")
    git(repo, "worktree", "lock", "--reason", "agent at work", "--", str(wts["locked"]))
    sleeper.append(subprocess.Popen(["sleep", "300"], cwd=wts["busy"]))
    wts["fresh"] = add_worktree(repo, tmp_path / "fresh", "feature/fresh", "main")
    wts["unmerged"] = work(repo, tmp_path, "unmerged")
    return wts


def test_prune_merged_removes_what_is_merged_and_keeps_the_rest(
    repo: Path, zoo: dict[str, Path]
) -> None:
    before = repo_snapshot(repo)
    dry = run_wtls(repo, "prune", "--merged", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert repo_snapshot(repo) == before
    assert planned["dryRun"] is True
    gone = {"ff", "merge", "squash", "rebase"}
    assert {Path(r["path"]) for r in planned["removed"]} == {zoo[n] for n in gone}

    proc = run_wtls(repo, "prune", "--merged", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result) >= {"removed", "kept", "dryRun"}
    assert result["dryRun"] is False
    removed = {Path(r["path"]): r for r in result["removed"]}
    assert set(removed) == {zoo[n] for n in gone}
    for name in gone:
        assert removed[zoo[name]]["branch"] == f"feature/{name}"
        assert removed[zoo[name]]["bytes"] > 0
        assert not zoo[name].exists()
    assert [r["path"] for r in planned["removed"]] == [r["path"] for r in result["removed"]]
    assert not branches(repo) & {f"feature/{n}" for n in gone}

    kept = {Path(k["path"]): k["reason"] for k in result["kept"]}
    assert kept[repo] == "the main worktree"
    assert kept[zoo["dirty"]].startswith("uncommitted changes: notes.txt")
    assert kept[zoo["locked"]] == "locked: agent at work"
    assert kept[zoo["busy"]].startswith("busy: pid ") and "sleep 300" in kept[zoo["busy"]]
    assert kept[zoo["fresh"]].startswith("never committed")
    assert kept[zoo["unmerged"]].startswith("not merged into main (1 commit(s) of its own)")
    for name in ("dirty", "locked", "busy", "fresh", "unmerged"):
        assert zoo[name].is_dir()
        assert f"feature/{name}" in branches(repo)
    assert (zoo["dirty"] / "notes.txt").read_text() == "not committed\n"


def test_prune_merged_human_output(repo: Path, tmp_path: Path) -> None:
    wt = work(repo, tmp_path, "done")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge", "feature/done")
    dry = run_wtls(repo, "prune", "--merged", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would remove {wt} and branch feature/done (" in dry.stdout
    assert "would reclaim" in dry.stdout
    assert f"kept {repo}: the main worktree" in dry.stdout
    done = run_wtls(repo, "prune", "--merged")
    assert done.returncode == 0, done.stderr
    assert f"removed {wt} and branch feature/done" in done.stdout
    again = run_wtls(repo, "prune", "--merged")
    assert "no merged worktree to remove" in again.stdout


def test_older_than(repo: Path, tmp_path: Path) -> None:
    """Commits here are dated 2026-01-01 (hermetic dates): older than a week, not 5000 weeks."""
    wt = work(repo, tmp_path, "old")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge", "feature/old")
    young = json.loads(
        run_wtls(repo, "prune", "--merged", "--older-than", "5000w", "--json").stdout
    )
    assert young["removed"] == []
    reason = {Path(k["path"]): k["reason"] for k in young["kept"]}[wt]
    assert "newer than --older-than" in reason
    assert wt.is_dir()
    old = json.loads(run_wtls(repo, "prune", "--merged", "--older-than", "1w", "--json").stdout)
    assert [Path(r["path"]) for r in old["removed"]] == [wt]


@pytest.mark.parametrize("bad", ["soon", "10", "1y", "-1d", ""])
def test_a_bad_duration_is_a_usage_error(repo: Path, bad: str) -> None:
    before = repo_snapshot(repo)
    proc = run_wtls(repo, "prune", "--merged", f"--older-than={bad}")
    assert proc.returncode == 2
    assert "is not a duration" in proc.stderr
    assert repo_snapshot(repo) == before


def test_older_than_needs_merged(repo: Path) -> None:
    proc = run_wtls(repo, "prune", "--older-than", "1d")
    assert proc.returncode == 2
    assert "go with --merged" in proc.stderr


def test_a_nested_repository_in_an_ignored_folder_keeps_a_merged_worktree(
    repo: Path, tmp_path: Path
) -> None:
    """Clean to git, but holding a repository: the safe removal refuses, so prune keeps it."""
    wt = work(repo, tmp_path, "nested")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge", "feature/nested")
    inner = wt / "tasks.json"  # ignored by the seed's .gitignore
    inner.mkdir()
    git(inner, "init", "-q")
    (inner / "x").write_text("x\n")
    commit_all(inner, "inner work")
    result = json.loads(run_wtls(repo, "prune", "--merged", "--json").stdout)
    assert result["removed"] == []
    reason = {Path(k["path"]): k["reason"] for k in result["kept"]}[wt]
    assert "tasks.json" in reason
    assert (inner / "x").read_text() == "x\n"


def test_list_footer_shows_what_prune_merged_would_reclaim(repo: Path, tmp_path: Path) -> None:
    work(repo, tmp_path, "open")
    plain = run_wtls(repo, "list")
    assert plain.returncode == 0, plain.stderr
    assert "total size" in plain.stdout and "reclaimable" not in plain.stdout
    work(repo, tmp_path, "done")
    (tmp_path / "done" / "big.bin").write_bytes(b"x" * 300_000)
    git(tmp_path / "done", "add", "big.bin")
    git(tmp_path / "done", "commit", "-q", "-m", "big")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge", "feature/done")
    footer = run_wtls(repo, "list").stdout.splitlines()[-1]
    assert footer.startswith("3 worktrees; base branch: main; total size ")
    assert "reclaimable (`wtls prune --merged`)" in footer
    reclaim = footer.split("; ")[-1].split()[0]
    assert reclaim.endswith("K") and float(reclaim[:-1]) >= 290
