"""Hostile review of issue 15's clean-up features (share links, exclude edits, the removal of a
worktree other worktrees link into, the sync cookie): each test failed before its fix."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.core.lifecycle_util import repo_snapshot, run_wtls
from tests.gitutil import commit_all, git, make_repo
from wtls.lifecycle import read_spawn_info, remove, spawn


def _repo(tmp_path: Path, gitignore: str, toml: str) -> Path:
    return make_repo(
        tmp_path,
        files={
            "a.txt": "a\n",
            "src/s.txt": "tracked\n",
            ".gitignore": gitignore,
            ".wtls.toml": toml,
        },
    )


def test_a_share_entry_that_is_a_link_to_a_tracked_folder_inside_is_refused(
    tmp_path: Path,
) -> None:
    # node_modules -> src: ignored (a link), inside the worktree, and not tracked itself; the
    # new worktree would write the source's tracked files through it.
    repo = _repo(tmp_path, "node_modules\n", 'share = ["node_modules"]\n')
    os.symlink("src", repo / "node_modules")
    before = repo_snapshot(repo)
    proc = run_wtls(repo, "spawn", "t1")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "symbolic link" in proc.stderr and "Traceback" not in proc.stderr
    assert repo_snapshot(repo) == before
    assert not (tmp_path / "tasks-app-t1").exists()


def test_a_share_entry_under_a_link_inside_the_worktree_is_refused(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "cache\n", 'share = ["cache/src"]\n')
    os.symlink(".", repo / "cache")  # cache/src is the tracked src
    proc = run_wtls(repo, "spawn", "t1")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "symbolic link" in proc.stderr and "Traceback" not in proc.stderr


def test_a_non_utf8_info_exclude_is_kept_and_the_links_are_recorded(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "node_modules/\n", 'share = ["node_modules"]\n')
    (repo / "node_modules").mkdir()
    (repo / "node_modules" / "x.js").write_text("x\n")
    exclude = repo / ".git" / "info" / "exclude"
    original = exclude.read_bytes() + b"# caf\xe9 (latin-1)\r\n/tmp-\xff"
    exclude.write_bytes(original)
    proc = run_wtls(repo, "spawn", "t1", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert json.loads(proc.stdout)["shared"] == ["node_modules"]
    text = exclude.read_bytes()
    assert text.startswith(original + b"\n")  # kept byte for byte, then whole lines added
    assert text.endswith(b"/node_modules\n")
    wt = tmp_path / "tasks-app-t1"
    assert read_spawn_info(wt)["shared"] == {"node_modules": str(repo / "node_modules")}  # type: ignore[index]


def test_an_unwritable_exclude_still_records_the_links(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "node_modules/\n", 'share = ["node_modules"]\n')
    (repo / "node_modules").mkdir()
    exclude = repo / ".git" / "info" / "exclude"
    exclude.unlink()
    os.symlink("exclude-missing-dir/exclude", exclude)  # appending fails: no such folder
    result = spawn(repo, "t1")
    assert result.shared == ("node_modules",)
    assert any("could not make git ignore the links" in p for p in result.problems)
    info = read_spawn_info(result.path)
    assert info is not None and info["shared"] == {"node_modules": str(repo / "node_modules")}
    # The link is not work: a plain removal deletes only the link.
    remove(repo, str(result.path))
    assert (repo / "node_modules").is_dir()


def _source_and_linked(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A linked worktree ``src1`` holding an ignored ``.env``, and ``t1`` spawned from it,
    which shares that file and has written its own line into it."""
    repo = _repo(tmp_path, ".env\n", 'share = [".env"]\n')
    src1 = spawn(repo, "src1").path
    (src1 / ".env").write_text("SECRET=1\n")
    t1 = spawn(src1, "t1").path
    assert t1.joinpath(".env").is_symlink()
    with open(t1 / ".env", "a") as handle:
        handle.write("MORE=2\n")
    return repo, src1, t1


def test_removing_a_worktree_others_link_into_is_refused_unless_forced(tmp_path: Path) -> None:
    repo, src1, t1 = _source_and_linked(tmp_path)
    proc = run_wtls(repo, "remove", "agent/src1")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"other worktrees link into {src1}" in proc.stderr
    assert str(t1 / ".env") in proc.stderr
    assert (t1 / ".env").read_text() == "SECRET=1\nMORE=2\n"
    # Merged, prune --merged would remove it: it keeps it, saying why.
    (src1 / "b.txt").write_text("b\n")
    commit_all(src1, "b")
    git(repo, "merge", "-q", "agent/src1")
    pruned = run_wtls(repo, "prune", "--merged")
    assert pruned.returncode == 0, pruned.stderr
    assert f"kept {src1}: other worktrees link into" in pruned.stdout, pruned.stdout
    assert (src1 / ".env").read_text() == "SECRET=1\nMORE=2\n"
    # Told to: removed, and the link dangles (as documented).
    forced = run_wtls(repo, "remove", "agent/src1", "--force")
    assert forced.returncode == 0, forced.stderr
    assert not src1.exists() and t1.joinpath(".env").is_symlink()


def test_removing_the_linking_worktree_first_then_the_source_needs_no_force(
    tmp_path: Path,
) -> None:
    repo, src1, t1 = _source_and_linked(tmp_path)
    remove(repo, str(t1))
    assert (src1 / ".env").read_text() == "SECRET=1\nMORE=2\n"
    remove(repo, str(src1))
    assert not src1.exists()


@pytest.mark.parametrize("path", ["src*", "!src", "s?c", "[s]rc"])
def test_a_sparse_pattern_is_refused_before_anything_is_created(tmp_path: Path, path: str) -> None:
    repo = _repo(tmp_path, "", "")
    before = repo_snapshot(repo)
    proc = run_wtls(repo, "spawn", "t1", "--sparse", path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "looks like a pattern" in proc.stderr and "Traceback" not in proc.stderr
    assert repo_snapshot(repo) == before
    assert not (tmp_path / "tasks-app-t1").exists()
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_the_exclude_line_never_hides_a_users_file_in_another_worktree(tmp_path: Path) -> None:
    # `data/` ignores only folders: spawn would add `/data` to the shared info/exclude, which
    # also ignores a *file* named data in every other worktree; a plain remove then deleted
    # that file unsaved (ignored = disposable).
    repo = _repo(tmp_path, "data/\n", 'share = ["data"]\n')
    (repo / "data").mkdir()
    (repo / "data" / "x").write_text("x\n")
    other = tmp_path / "other"
    git(repo, "worktree", "add", "-q", "-b", "other", str(other))
    (other / "data").write_text("precious notes\n")
    result = spawn(repo, "t1")
    assert result.shared == ("data",)
    assert any(
        f"{other / 'data'} (in another worktree) is not ignored" in p for p in result.problems
    )
    assert b"/data\n" not in (repo / ".git" / "info" / "exclude").read_bytes()
    assert git(other, "status", "--porcelain") == "?? data"
    proc = run_wtls(repo, "remove", "other")
    assert proc.returncode == 1 and "uncommitted changes: data" in proc.stderr, proc.stderr
    assert (other / "data").read_text() == "precious notes\n"
    # The link git now lists as untracked is still one spawn made: removing it needs no force.
    remove(repo, str(result.path))
    assert (repo / "data" / "x").exists()


def test_merging_a_branch_that_commits_its_share_link_is_refused(tmp_path: Path) -> None:
    # `git add -A` / `git add -f` in the linked worktree commits the link; git merge then
    # deleted the base worktree's ignored shared folder and put the link in its place.
    repo = _repo(tmp_path, "data/\n", 'share = ["data"]\n')
    (repo / "data").mkdir()
    (repo / "data" / "x").write_text("precious\n")
    wt = spawn(repo, "t1").path
    git(wt, "add", "-f", "data")
    (wt / "b.txt").write_text("b\n")
    commit_all(wt, "the agent commits everything")
    before = git(repo, "rev-parse", "HEAD")
    proc = run_wtls(repo, "merge", "agent/t1", "--remove")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "commits data, the path of a `share` link" in proc.stderr, proc.stderr
    assert (repo / "data" / "x").read_text() == "precious\n"
    assert git(repo, "rev-parse", "HEAD") == before and wt.is_dir()
    # Fixed on the branch as the message says: the merge goes through, the folder stays.
    git(wt, "rm", "-q", "--cached", "--", "data")
    commit_all(wt, "untrack the link")
    proc = run_wtls(repo, "merge", "agent/t1", "--remove")
    assert proc.returncode == 0, proc.stderr
    assert (repo / "data" / "x").read_text() == "precious\n" and not wt.exists()


def test_merging_never_overwrites_an_ignored_file_of_the_base_worktree(tmp_path: Path) -> None:
    # The agent force-adds its own .env; git merge replaced the user's ignored .env in the
    # base worktree with it, silently (ignored files are expendable to git).
    repo = _repo(tmp_path, ".env\nbuild/\n", "")
    (repo / ".env").write_text("MY_REAL_SECRET=1\n")
    (repo / "build").mkdir()
    (repo / "build" / "cache.bin").write_text("hours of work\n")
    wt = spawn(repo, "t1").path
    (wt / ".env").write_text("AGENT=1\n")
    (wt / "build").mkdir()
    (wt / "build" / "cache.bin").write_text("agent\n")
    git(wt, "add", "-f", ".env", "build/cache.bin")
    commit_all(wt, "agent adds its env")
    before = repo_snapshot(repo)
    proc = run_wtls(repo, "merge", "agent/t1")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "would overwrite files of the base worktree" in proc.stderr, proc.stderr
    assert ".env, build/cache.bin" in proc.stderr
    assert (repo / ".env").read_text() == "MY_REAL_SECRET=1\n"
    assert (repo / "build" / "cache.bin").read_text() == "hours of work\n"
    assert repo_snapshot(repo) == before
    # Moved away: the merge goes through.
    (repo / ".env").rename(tmp_path / "env.saved")
    (repo / "build" / "cache.bin").unlink()
    assert run_wtls(repo, "merge", "agent/t1").returncode == 0


def test_merging_never_replaces_an_ignored_folder_by_a_file(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "cache/\n", "")
    (repo / "cache").mkdir()
    (repo / "cache" / "db").write_text("hours of work\n")
    wt = spawn(repo, "t1").path
    (wt / "cache").write_text("a file now\n")
    commit_all(wt, "cache becomes a file")
    proc = run_wtls(repo, "merge", "agent/t1")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "would overwrite files of the base worktree" in proc.stderr
    assert (repo / "cache" / "db").read_text() == "hours of work\n"


def test_a_recorded_share_path_like_pathspec_magic_does_not_block_a_merge(
    tmp_path: Path,
) -> None:
    repo = _repo(tmp_path, "", "")
    wt = spawn(repo, "t1").path
    record = wt / ".wtls" / "spawn.json"
    info = json.loads(record.read_text())
    info["shared"] = {":(glob)*": str(repo / "x")}
    record.write_text(json.dumps(info))
    (wt / "b.txt").write_text("b\n")
    commit_all(wt, "b")
    proc = run_wtls(repo, "merge", "agent/t1")
    assert proc.returncode == 0, proc.stderr
    assert (repo / "b.txt").exists()
