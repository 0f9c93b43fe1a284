"""`wtls spawn --sparse`: a cone checkout, its record, and what status, the conflict
predictor and remove make of the files it did not check out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.core.lifecycle_util import repo_snapshot, run_wtls
from tests.gitutil import add_worktree, commit_all, git, make_repo
from wtls.arguments import ArgumentError, SpawnArgs, read_arguments
from wtls.lifecycle import read_spawn_info, remove

FILES = {
    "top.txt": "top\n",
    "app/main.py": "print('app')\n",
    "docs/guide.md": "guide\n",
    "lib/util.py": "def f():\n    return 1\n",
}


@pytest.fixture
def big(tmp_path: Path) -> Path:
    return make_repo(tmp_path, files=FILES).resolve()


def _sparse(repo: Path, name: str, *paths: str) -> Path:
    proc = run_wtls(repo, "spawn", name, "--sparse", *paths, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["sparse"] == list(paths)
    return Path(result["path"])


def test_spawn_sparse_checks_out_only_those_folders(big: Path) -> None:
    wt = _sparse(big, "s1", "app")
    assert sorted(p.name for p in wt.iterdir() if p.name not in (".git", ".wtls")) == [
        "app",
        "top.txt",
    ]
    assert git(wt, "sparse-checkout", "list") == "app"
    assert read_spawn_info(wt)["sparse"] == ["app"]  # type: ignore[index]
    assert git(wt, "status", "--porcelain") == ""
    # The main worktree stays a full checkout.
    assert (big / "lib" / "util.py").is_file()
    assert git(big, "sparse-checkout", "list", check=False) == ""
    human = run_wtls(big, "spawn", "s2", "--sparse", "app", "docs")
    assert human.returncode == 0, human.stderr
    assert "sparse:      app, docs" in human.stdout


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/etc", "absolute path"),
        ("../x", "points outside the worktree"),
        ("app/../..", "points outside the worktree"),
        ("", "empty"),
        ("a\nb", "control characters"),
    ],
)
def test_hostile_sparse_paths_are_refused_with_nothing_created(
    big: Path, path: str, says: str
) -> None:
    before = repo_snapshot(big)
    proc = run_wtls(big, "spawn", "s1", "--sparse", "app", path)
    assert proc.returncode != 0
    assert says in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert repo_snapshot(big) == before


def test_the_server_reads_sparse_as_a_list_of_strings() -> None:
    args = read_arguments("wtls.spawn", SpawnArgs, {"name": "t", "sparse": ["app", "lib"]})
    assert args.sparse == ("app", "lib")
    with pytest.raises(ArgumentError, match="sparse"):
        read_arguments("wtls.spawn", SpawnArgs, {"name": "t", "sparse": "app"})


def test_status_of_a_sparse_worktree_is_clean(big: Path) -> None:
    wt = _sparse(big, "s1", "app")
    proc = run_wtls(wt, "status", "--json")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    (me,) = [w for w in payload["worktrees"] if w["path"] == str(wt)]
    assert (me["staged"], me["unstaged"], me["untracked"]) == (0, 0, 0), me


def test_the_predictor_does_not_see_unchecked_out_files_as_deleted(big: Path) -> None:
    wt = _sparse(big, "s1", "app")
    other = add_worktree(big, big.parent / "other", "feature/lib", "main")
    (other / "lib" / "util.py").write_text("def f():\n    return 2\n")
    commit_all(other, "change lib")
    # Were lib/util.py missing from the sparse worktree's snapshot, merging it with `other`
    # would be a modify/delete conflict.
    proc = run_wtls(wt, "check", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["conflicts"] == []


def test_remove_a_sparse_worktree(big: Path) -> None:
    wt = _sparse(big, "s1", "app")
    result = remove(big, "agent/s1")
    assert result.removed and result.backup_ref is None and not wt.exists()

    wt = _sparse(big, "s2", "app")
    (wt / "app" / "new.py").write_text("new\n")
    proc = run_wtls(big, "remove", "agent/s2")
    assert proc.returncode != 0 and "app/new.py" in proc.stderr
    assert (wt / "app" / "new.py").is_file()
    forced = run_wtls(big, "remove", "agent/s2", "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    ref = json.loads(forced.stdout)["backupRef"]
    assert not wt.exists()
    restored = run_wtls(big, "restore", ref)
    assert restored.returncode == 0, restored.stderr
    # Back as it was: the same sparse cone, the new file, and nothing left out shown deleted.
    assert (wt / "app" / "new.py").read_text() == "new\n"
    assert git(wt, "sparse-checkout", "list") == "app"
    assert not (wt / "lib").exists()
    assert git(wt, "status", "--porcelain") == "?? app/new.py"
