"""`.wtls.toml` `share`: links instead of copies, hostile entries, and removal that never
touches what a link points at (remove, prune --merged, merge --remove)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from tests.core.lifecycle_util import disk_state, repo_snapshot, run_wtls
from tests.gitutil import commit_all, git, make_repo
from wtls.engine import ignored_dirs
from wtls.errors import Refused
from wtls.lifecycle import read_spawn_info, remove, spawn
from wtls.project_config import load_project_config
from wtls.watch import WatchTargets, classify

FILES = 300


def _shared_repo(tmp_path: Path, gitignore: str = "node_modules/\n") -> Path:
    """A repository whose main worktree has an ignored node_modules of FILES files, one of
    them a nested git repository (a trap for a walk that follows the link)."""
    repo = make_repo(
        tmp_path,
        files={
            "app.js": "console.log(1)\n",
            ".gitignore": gitignore + ".env\n",
            ".wtls.toml": 'share = ["node_modules"]\ncopy = [".env"]\n',
        },
    )
    mods = repo / "node_modules"
    for i in range(FILES):
        pkg = mods / f"pkg{i % 10}"
        pkg.mkdir(parents=True, exist_ok=True)
        (pkg / f"f{i}.js").write_text(f"module.exports = {i}\n")
    inner = mods / "pkg0"
    git(inner, "init", "-q")
    (repo / ".env").write_text("TOKEN=1\n")
    return repo


@pytest.fixture
def shared_repo(tmp_path: Path) -> Path:
    return _shared_repo(tmp_path)


def _worktree(repo: Path, name: str) -> Path:
    return repo.parent / f"{repo.name}-{name}"


def test_spawn_links_the_shared_folder_and_records_it(shared_repo: Path) -> None:
    proc = run_wtls(shared_repo, "spawn", "t1", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    wt = _worktree(shared_repo, "t1")
    link = wt / "node_modules"
    assert result["shared"] == ["node_modules"]
    assert result["copied"] == [".env"]
    assert os.readlink(link) == str(shared_repo / "node_modules")
    assert read_spawn_info(wt)["shared"] == {"node_modules": str(shared_repo / "node_modules")}  # type: ignore[index]
    # `node_modules/` ignores only folders: wtls makes git ignore the link too.
    assert git(wt, "status", "--porcelain") == ""
    assert "/node_modules" in (shared_repo / ".git" / "info" / "exclude").read_text()
    human = run_wtls(shared_repo, "spawn", "t2")
    assert human.returncode == 0, human.stderr
    assert "shared:      node_modules" in human.stdout
    # The exclude line is added once.
    exclude = (shared_repo / ".git" / "info" / "exclude").read_text()
    assert exclude.count("/node_modules\n") == 1


def test_copy_does_not_write_into_a_shared_folder(shared_repo: Path) -> None:
    (shared_repo / ".wtls.toml").write_text(
        'share = ["node_modules"]\ncopy = [".env", "node_modules/**"]\n'
    )
    before = disk_state(shared_repo / "node_modules")
    result = spawn(shared_repo, "t1")
    assert result.copied == (".env",)
    assert result.problems == ()
    assert disk_state(shared_repo / "node_modules") == before


def test_a_missing_shared_folder_is_skipped_with_a_note(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        files={".gitignore": "node_modules/\n", ".wtls.toml": 'share = ["node_modules"]\n'},
    )
    proc = run_wtls(repo, "spawn", "t1")
    assert proc.returncode == 0, proc.stderr
    assert "did not share node_modules" in proc.stderr and "does not exist" in proc.stderr
    assert not os.path.lexists(_worktree(repo, "t1") / "node_modules")


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("/etc", "absolute path"),
        ("../outside", "points outside the worktree"),
        ("node_modules/../../x", "points outside the worktree"),
        ("", "empty"),
        ("a//b", "not a plain relative path"),
        ("./node_modules", "not a plain relative path"),
        (".git", "git's own folder"),
        ("C:\\\\x", "absolute path"),
    ],
)
def test_hostile_share_entries_are_refused_with_nothing_created(
    shared_repo: Path, entry: str, says: str
) -> None:
    (shared_repo / ".wtls.toml").write_text(f'share = ["{entry}"]\n')
    before = repo_snapshot(shared_repo)
    proc = run_wtls(shared_repo, "spawn", "t1")
    assert proc.returncode != 0
    assert says in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert repo_snapshot(shared_repo) == before


def test_a_share_entry_inside_another_is_refused(shared_repo: Path) -> None:
    (shared_repo / ".wtls.toml").write_text('share = ["node_modules", "node_modules/pkg1"]\n')
    with pytest.raises(Refused, match="lies inside share entry 'node_modules'"):
        load_project_config(shared_repo)


def _refused_with_nothing_created(repo: Path, says: str) -> None:
    before = repo_snapshot(repo)
    proc = run_wtls(repo, "spawn", "t1")
    assert proc.returncode != 0
    assert says in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert repo_snapshot(repo) == before


def test_a_tracked_share_entry_is_refused(shared_repo: Path) -> None:
    (shared_repo / "vendor").mkdir()
    (shared_repo / "vendor" / "lib.js").write_text("x\n")
    commit_all(shared_repo, "vendor")
    (shared_repo / ".wtls.toml").write_text('share = ["vendor"]\n')
    _refused_with_nothing_created(shared_repo, "holds files git tracks (vendor/lib.js)")


def test_a_share_entry_git_does_not_ignore_is_refused(shared_repo: Path) -> None:
    (shared_repo / "cache").mkdir()
    (shared_repo / "cache" / "x").write_text("x\n")
    (shared_repo / ".wtls.toml").write_text('share = ["cache"]\n')
    _refused_with_nothing_created(shared_repo, "'cache' is not ignored by git")


def test_a_share_entry_tracked_only_in_the_base_commit_is_refused(
    shared_repo: Path, tmp_path: Path
) -> None:
    # Ignored in the source worktree, but the commit the new worktree checks out has it.
    git(shared_repo, "checkout", "-q", "-b", "other")
    (shared_repo / "build").mkdir()
    (shared_repo / "build" / "out.txt").write_text("x\n")
    git(shared_repo, "add", "-f", "build/out.txt")
    git(shared_repo, "commit", "-q", "-m", "build")
    git(shared_repo, "checkout", "-q", "main")
    (shared_repo / "build").mkdir(exist_ok=True)
    (shared_repo / ".gitignore").write_text("node_modules/\n.env\nbuild/\n")
    (shared_repo / ".wtls.toml").write_text('share = ["build"]\n')
    before = repo_snapshot(shared_repo)
    proc = run_wtls(shared_repo, "spawn", "t1", "--base", "other")
    assert proc.returncode != 0
    assert "holds files git tracks (build/out.txt)" in proc.stderr, proc.stderr
    assert repo_snapshot(shared_repo) == before


def test_a_share_entry_that_is_a_link_out_of_the_repository_is_refused(
    shared_repo: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret").write_text("x\n")
    os.symlink(elsewhere, shared_repo / "linked")
    (shared_repo / ".gitignore").write_text("node_modules/\n.env\nlinked\n")
    commit_all(shared_repo, "ignore linked")
    (shared_repo / ".wtls.toml").write_text('share = ["linked"]\n')
    _refused_with_nothing_created(shared_repo, "outside the worktree")
    # A parent folder that is a link out of it, too.
    (shared_repo / ".wtls.toml").write_text('share = ["linked/secret"]\n')
    _refused_with_nothing_created(shared_repo, "outside the worktree")


def test_writes_in_a_shared_folder_do_not_refresh_the_linked_worktree(tmp_path: Path) -> None:
    # The OS watcher follows the link: events come as <worktree>/cache/...; they must be
    # dropped like those of an ignored folder (not a name wtls drops anyway, like node_modules).
    repo = make_repo(
        tmp_path,
        files={".gitignore": "cache/\n", ".wtls.toml": 'share = ["cache"]\n'},
    )
    (repo / "cache").mkdir()
    wt = spawn(repo, "t1").path
    targets = WatchTargets(
        common_dir=repo / ".git",
        worktrees={repo: None, wt: None},
        ignored_dirs={repo: ignored_dirs(repo), wt: ignored_dirs(wt)},
    )
    assert wt / "cache" in targets.ignored_dirs[wt]
    change = classify([wt / "cache" / "x.o", repo / "cache" / "x.o"], targets)
    assert change.worktrees == set()


def _assert_intact(source: Path, before: dict[str, tuple[str, bytes | str]]) -> None:
    after = disk_state(source / "node_modules")
    assert len(after) == len(before) and after == before


class _Reads:
    """Counts the paths Python opened or listed below a folder (audit events of this
    process): a walk that followed the shared link would read the source's files."""

    active = False
    folder = ""
    hits: ClassVar[list[str]] = []

    @classmethod
    def hook(cls, event: str, args: tuple[object, ...]) -> None:
        if not cls.active or event not in ("open", "os.scandir", "os.listdir"):
            return
        path = args[0] if args else None
        if isinstance(path, str | bytes | os.PathLike):
            real = os.path.realpath(os.fsdecode(path))
            if real == cls.folder or real.startswith(cls.folder + os.sep):
                cls.hits.append(real)


@pytest.fixture
def reads() -> Iterator[type[_Reads]]:
    if not getattr(sys, "_wtls_share_hook", False):
        sys.addaudithook(_Reads.hook)  # audit hooks cannot be removed: it checks `active`
        sys._wtls_share_hook = True  # type: ignore[attr-defined]
    _Reads.hits.clear()
    _Reads.active = True
    yield _Reads
    _Reads.active = False


@pytest.mark.parametrize("gitignore", ["node_modules/\n", "node_modules\n"])
def test_remove_deletes_the_link_only_without_force(
    tmp_path: Path, gitignore: str, reads: type[_Reads]
) -> None:
    repo = _shared_repo(tmp_path, gitignore)
    reads.folder = os.path.realpath(repo / "node_modules")
    before = disk_state(repo / "node_modules")
    wt = spawn(repo, "t1").path
    reads.hits.clear()
    result = remove(repo, "agent/t1")
    assert result.removed and not wt.exists()
    assert result.backup_ref is None and result.would_back_up == ()
    assert reads.hits == []  # nothing below the shared folder was opened or listed
    _assert_intact(repo, before)


def test_a_recorded_link_git_lists_as_untracked_is_not_work(shared_repo: Path) -> None:
    # Someone emptied info/exclude: git now lists the link as untracked, yet it is the link
    # spawn made (recorded in .wtls/spawn.json, same target): removing needs no --force.
    before = disk_state(shared_repo / "node_modules")
    wt = spawn(shared_repo, "t1").path
    (shared_repo / ".git" / "info" / "exclude").write_text("")
    assert git(wt, "status", "--porcelain") == "?? node_modules"
    result = remove(shared_repo, "agent/t1")
    assert result.removed and result.backup_ref is None
    _assert_intact(shared_repo, before)


def test_merge_and_prune_do_not_stop_for_a_recorded_link_git_lists(shared_repo: Path) -> None:
    before = disk_state(shared_repo / "node_modules")
    merged, pruned = spawn(shared_repo, "m").path, spawn(shared_repo, "p").path
    for wt in (merged, pruned):
        (wt / f"{wt.name}.js").write_text("x\n")
        commit_all(wt, "work")
    (shared_repo / ".git" / "info" / "exclude").write_text("")  # git lists the links now
    for wt in (merged, pruned):
        assert git(wt, "status", "--porcelain") == "?? node_modules"
    proc = run_wtls(shared_repo, "merge", "agent/m", "--remove")
    assert proc.returncode == 0, proc.stderr
    git(shared_repo, "merge", "-q", "--no-ff", "-m", "merge p", "agent/p")
    proc = run_wtls(shared_repo, "prune", "--merged", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [r["path"] for r in json.loads(proc.stdout)["removed"]] == [str(pruned)]
    assert not merged.exists() and not pruned.exists()
    _assert_intact(shared_repo, before)


def test_remove_cli_of_a_shared_worktree(shared_repo: Path) -> None:
    before = disk_state(shared_repo / "node_modules")
    assert run_wtls(shared_repo, "spawn", "t1").returncode == 0
    proc = run_wtls(shared_repo, "remove", "agent/t1")
    assert proc.returncode == 0, proc.stderr
    assert not _worktree(shared_repo, "t1").exists()
    _assert_intact(shared_repo, before)


def test_a_forced_removal_saves_the_link_not_the_folder(shared_repo: Path) -> None:
    before = disk_state(shared_repo / "node_modules")
    wt = spawn(shared_repo, "t1").path
    (wt / "notes.txt").write_text("work\n")
    with pytest.raises(Refused, match=r"notes\.txt"):
        remove(shared_repo, "agent/t1")
    result = remove(shared_repo, "agent/t1", force=True)
    assert result.removed and result.backup_ref
    saved = git(shared_repo, "ls-tree", "-r", "--name-only", result.backup_ref)
    assert "node_modules/pkg1/f1.js" not in saved
    _assert_intact(shared_repo, before)


def test_an_unknown_or_retargeted_link_keeps_todays_rules(
    shared_repo: Path, tmp_path: Path
) -> None:
    before = disk_state(shared_repo / "node_modules")
    wt = spawn(shared_repo, "t1").path
    other = tmp_path / "other-modules"
    other.mkdir()
    (other / "keep.js").write_text("x\n")
    (wt / "node_modules").unlink()
    os.symlink(other, wt / "node_modules")  # not the link spawn made
    (shared_repo / ".git" / "info" / "exclude").write_text("")  # and git sees it
    with pytest.raises(Refused, match="node_modules"):
        remove(shared_repo, "agent/t1")
    assert wt.is_dir()
    result = remove(shared_repo, "agent/t1", force=True)
    assert result.removed
    assert (other / "keep.js").read_text() == "x\n"
    _assert_intact(shared_repo, before)


def test_prune_merged_removes_a_shared_worktree_and_keeps_the_source(
    shared_repo: Path,
) -> None:
    before = disk_state(shared_repo / "node_modules")
    wt = spawn(shared_repo, "t1").path
    (wt / "feature.js").write_text("x\n")
    commit_all(wt, "feature")
    git(shared_repo, "merge", "-q", "--no-ff", "-m", "merge", "agent/t1")
    proc = run_wtls(shared_repo, "prune", "--merged", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [r["path"] for r in json.loads(proc.stdout)["removed"]] == [str(wt)]
    assert not wt.exists()
    _assert_intact(shared_repo, before)


def test_merge_remove_of_a_shared_worktree_keeps_the_source(shared_repo: Path) -> None:
    before = disk_state(shared_repo / "node_modules")
    wt = spawn(shared_repo, "t1").path
    (wt / "feature.js").write_text("x\n")
    commit_all(wt, "feature")
    proc = run_wtls(shared_repo, "merge", "agent/t1", "--remove")
    assert proc.returncode == 0, proc.stderr
    assert not wt.exists()
    assert (shared_repo / "feature.js").is_file()
    _assert_intact(shared_repo, before)
