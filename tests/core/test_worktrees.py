"""The worktree core on real repositories: discovery, listing and every per-worktree state."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.gitutil import add_worktree, commit_all, git, make_repo
from wtls.git import GitBusy, GitError, run_git, scrubbed_env
from wtls.wire import wire_object
from wtls.worktrees import (
    BrokenWorktreeLink,
    NotARepository,
    discover,
    list_worktrees,
    parse_status_v2,
    repository_state,
)


def state_of(path: Path):  # type: ignore[no-untyped-def]
    return repository_state(discover(path))


def test_discover_from_main_linked_file_and_subfolder(repo: Path, tmp_path: Path) -> None:
    linked = add_worktree(repo, tmp_path / "linked", "feature/x")
    (linked / "sub").mkdir()
    expected = (repo / ".git").resolve()
    for start in (repo, repo / "cli.py", linked, linked / "sub", linked / "cli.py"):
        found = discover(start)
        assert found.common_dir == expected
        assert not found.bare and found.superproject is None


def test_not_a_repository_and_missing_path(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(NotARepository, match="not inside a git repository"):
        discover(plain)
    with pytest.raises(NotARepository, match="does not exist"):
        discover(tmp_path / "nope")


def test_bare_repository_is_reported_bare(repo: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    found = discover(bare)
    assert found.bare
    entries = list_worktrees(found)
    assert entries[0].bare and entries[0].is_main
    # A linked worktree of a bare repository is a normal worktree.
    linked = tmp_path / "from-bare"
    git(bare, "worktree", "add", "-q", str(linked), "main")
    state = state_of(linked)
    wt = state.find(linked)
    assert wt is not None and wt.branch == "main" and not wt.is_main
    assert state.main is None


def test_submodule_knows_its_superproject(repo: Path, tmp_path: Path) -> None:
    lib = make_repo(tmp_path, "lib", {"lib.py": "x = 1\n"})
    git(repo, "submodule", "add", "-q", str(lib), "vendor/lib")
    commit_all(repo, "add submodule")
    found = discover(repo / "vendor" / "lib")
    assert found.superproject == repo.resolve()
    assert found.common_dir != (repo / ".git").resolve()


def test_repository_with_no_commits(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q", "-b", "main")
    (empty / "a.txt").write_text("a\n")
    state = state_of(empty)
    (wt,) = state.worktrees
    assert wt.head is None and wt.branch == "main" and not wt.detached
    assert wt.status.untracked == 1
    assert wt.base is None


def test_listing_fields_linked_detached_locked_prunable(repo: Path, tmp_path: Path) -> None:
    linked = add_worktree(repo, tmp_path / "linked", "feature/x")
    detached = tmp_path / "detached"
    git(repo, "worktree", "add", "-q", "--detach", str(detached))
    locked = add_worktree(repo, tmp_path / "locked", "feature/locked")
    git(repo, "worktree", "lock", "--reason", "agent 3 is busy", str(locked))
    gone = add_worktree(repo, tmp_path / "gone", "feature/gone")
    shutil.rmtree(gone)

    state = state_of(repo)
    by_path = {w.path: w for w in state.worktrees}
    main = by_path[repo.resolve()]
    assert main.is_main and main.branch == "main" and main.base is None
    assert main.gitdir == (repo / ".git").resolve()
    lw = by_path[linked.resolve()]
    assert not lw.is_main and lw.branch == "feature/x"
    assert lw.gitdir is not None and lw.gitdir.parent.name == "worktrees"
    dw = by_path[detached.resolve()]
    assert dw.detached and dw.branch is None and dw.head == git(repo, "rev-parse", "HEAD")
    kw = by_path[locked.resolve()]
    assert kw.locked and kw.lock_reason == "agent 3 is busy"
    pw = by_path[gone.resolve()]
    assert pw.prunable and pw.prunable_reason and "non-existent" in pw.prunable_reason
    assert pw.gitdir is not None and pw.gitdir.exists()


def test_counts_staged_unstaged_untracked(repo: Path, tmp_path: Path) -> None:
    (repo / "new.txt").write_text("new\n")
    (repo / "staged.txt").write_text("s\n")
    git(repo, "add", "staged.txt")
    (repo / "cli.py").write_text("changed\n")
    git(repo, "mv", ".gitignore", "ignore-renamed")
    wt = state_of(repo).worktrees[0]
    assert wt.status.staged == 2  # the new file and the rename
    assert wt.status.unstaged == 1
    assert wt.status.untracked == 1
    assert wt.status.conflicted == 0
    assert wt.dirty
    assert set(wt.status.changed_paths) == {"new.txt", "staged.txt", "cli.py", "ignore-renamed"}


def test_mid_merge_with_conflict(repo: Path, tmp_path: Path) -> None:
    other = add_worktree(repo, tmp_path / "other", "feature/other")
    (other / "cli.py").write_text("theirs\n")
    commit_all(other, "theirs")
    (repo / "cli.py").write_text("ours\n")
    commit_all(repo, "ours")
    git(repo, "merge", "feature/other", check=False)
    wt = state_of(repo).find(repo)
    assert wt is not None
    assert wt.operation == "merge"
    assert wt.status.conflicted == 1 and wt.status.conflicted_paths == ("cli.py",)


def test_mid_rebase_in_linked_worktree(repo: Path, tmp_path: Path) -> None:
    other = add_worktree(repo, tmp_path / "other", "feature/other")
    (other / "cli.py").write_text("theirs\n")
    commit_all(other, "theirs")
    (repo / "cli.py").write_text("ours\n")
    commit_all(repo, "ours")
    git(other, "rebase", "main", check=False)
    state = state_of(repo)
    wt = state.find(other)
    assert wt is not None and wt.operation == "rebase"
    assert state.find(repo).operation is None  # type: ignore[union-attr]
    git(other, "rebase", "--abort")
    assert state_of(repo).find(other).operation is None  # type: ignore[union-attr]


def test_cherry_pick_revert_and_bisect(repo: Path, tmp_path: Path) -> None:
    other = add_worktree(repo, tmp_path / "other", "feature/other")
    (other / "cli.py").write_text("theirs\n")
    pick = commit_all(other, "theirs")
    (repo / "cli.py").write_text("ours\n")
    commit_all(repo, "ours")
    git(repo, "cherry-pick", pick, check=False)
    assert state_of(repo).find(repo).operation == "cherry-pick"  # type: ignore[union-attr]
    git(repo, "cherry-pick", "--abort")
    git(other, "bisect", "start")
    assert state_of(repo).find(other).operation == "bisect"  # type: ignore[union-attr]
    git(other, "bisect", "reset")


def test_ahead_behind_base_and_upstream(repo: Path, tmp_path: Path) -> None:
    work = add_worktree(repo, tmp_path / "work", "feature/work")
    (work / "a.txt").write_text("a\n")
    commit_all(work, "a")
    (work / "b.txt").write_text("b\n")
    commit_all(work, "b")
    (repo / "m.txt").write_text("m\n")
    commit_all(repo, "m")
    git(work, "branch", "--set-upstream-to=main")
    wt = state_of(repo).find(work)
    assert wt is not None and wt.base is not None
    assert (wt.base.ahead, wt.base.behind, wt.base.merged) == (2, 1, False)
    assert wt.status.upstream == "main"
    assert (wt.status.ahead, wt.status.behind) == (2, 1)


def test_configured_base_branch(repo: Path, tmp_path: Path) -> None:
    git(repo, "branch", "develop")
    work = add_worktree(repo, tmp_path / "work", "feature/work", base="develop")
    (work / "a.txt").write_text("a\n")
    commit_all(work, "a")
    state = repository_state(discover(repo), "develop")
    assert state.base_branch == "develop"
    assert state.find(work).base.branch == "develop"  # type: ignore[union-attr]
    # The main worktree (on main) is compared with develop too.
    assert state.find(repo).base is not None  # type: ignore[union-attr]


def test_merged_by_merge_squash_rebase_but_not_fresh(repo: Path, tmp_path: Path) -> None:
    fresh = add_worktree(repo, tmp_path / "fresh", "agent/fresh")
    merged = add_worktree(repo, tmp_path / "merged", "feature/merged")
    squashed = add_worktree(repo, tmp_path / "squashed", "feature/squashed")
    pending = add_worktree(repo, tmp_path / "pending", "feature/pending")
    for wt, name in ((merged, "m"), (squashed, "s"), (pending, "p")):
        (wt / f"{name}.txt").write_text(f"{name}\n")
        commit_all(wt, name)
        (wt / f"{name}2.txt").write_text(f"{name}2\n")
        commit_all(wt, f"{name}2")
    git(repo, "merge", "-q", "--no-ff", "--no-edit", "feature/merged")
    git(repo, "merge", "-q", "--squash", "feature/squashed")
    git(repo, "commit", "-q", "-m", "squash")
    state = state_of(repo)
    assert state.find(fresh).base.merged is False  # type: ignore[union-attr]
    assert state.find(merged).base.merged is True  # type: ignore[union-attr]
    assert state.find(squashed).base.merged is True  # type: ignore[union-attr]
    assert state.find(pending).base.merged is False  # type: ignore[union-attr]
    # Rebased onto main and fast-forwarded: merged too.
    git(pending, "rebase", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", "feature/pending")
    assert state_of(repo).find(pending).base.merged is True  # type: ignore[union-attr]


def test_broken_link_when_main_repository_moved(repo: Path, tmp_path: Path) -> None:
    linked = add_worktree(repo, tmp_path / "linked", "feature/x")
    repo.rename(tmp_path / "moved-app")
    with pytest.raises(BrokenWorktreeLink) as err:
        discover(linked)
    assert err.value.worktree == linked
    assert "wtls repair" in str(err.value)


def test_incremental_refresh_reuses_untouched_worktrees(repo: Path, tmp_path: Path) -> None:
    a = add_worktree(repo, tmp_path / "a", "feature/a")
    b = add_worktree(repo, tmp_path / "b", "feature/b")
    found = discover(repo)
    first = repository_state(found)
    (a / "x.txt").write_text("x\n")
    (b / "y.txt").write_text("y\n")
    second = repository_state(found, previous=first, only=[a])
    assert second.find(a).status.untracked == 1  # type: ignore[union-attr]
    assert second.find(b).status.untracked == 0  # type: ignore[union-attr]  # not re-read
    # A commit on base moves it: base comparison is redone for untouched worktrees too.
    (repo / "m.txt").write_text("m\n")
    commit_all(repo, "m")
    third = repository_state(found, previous=second, only=[])
    assert third.find(b).base.behind == 1  # type: ignore[union-attr]


def test_parse_status_v2_rename_and_unmerged() -> None:
    data = (
        b"# branch.oid abc\0# branch.head feature/x y\0"
        b"2 R. N... 100644 100644 100644 1 2 R100 new name.txt\0old name.txt\0"
        b"u UU N... 100644 100644 100644 100644 1 2 3 both.txt\0? un tracked\0"
    )
    s = parse_status_v2(data)
    assert s.branch == "feature/x y" and s.oid == "abc"
    assert s.staged == 1 and s.conflicted == 1 and s.untracked == 1
    assert s.changed_paths == ("new name.txt", "both.txt", "un tracked")


def test_git_errors_are_typed_and_env_is_scrubbed(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_DIR", "/nonexistent")
    monkeypatch.setenv("GIT_INDEX_FILE", "/nonexistent/index")
    assert "GIT_DIR" not in scrubbed_env()
    # With the leaked variables scrubbed, git still finds the right repository.
    assert run_git(["rev-parse", "--show-toplevel"], repo).text == str(repo)
    with pytest.raises(GitError) as err:
        run_git(["rev-parse", "--verify", "nope"], repo)
    assert err.value.returncode != 0 and "nope" in " ".join(err.value.args_list)
    (repo / ".git" / "index.lock").write_text("")
    (repo / "x.txt").write_text("x")
    with pytest.raises(GitBusy, match="busy"):
        run_git(["add", "x.txt"], repo)


def test_a_command_whose_output_goes_to_files_keeps_its_output_status_and_timeout(
    repo: Path,
) -> None:
    """Commands that may write (output to files, not pipes) are waited for on a pidfd: their
    output, exit status and timeout are what subprocess.run gave."""
    done = run_git(["-c", "alias.says=!echo out; echo err >&2", "says"], repo)
    assert (done.stdout, done.stderr) == (b"out\n", "err\n")
    with pytest.raises(GitError) as err:
        run_git(["-c", "alias.fails=!exit 3", "fails"], repo)
    assert err.value.returncode == 3
    with pytest.raises(GitError, match=r"timed out after 0\.2 s"):
        run_git(["-c", "alias.slow=!sleep 3", "slow"], repo, timeout=0.2)


def test_the_payload_says_which_lifecycle_commands_apply(repo: Path, tmp_path: Path) -> None:
    """Clients offer merge/remove/lock by these fields and never re-derive git's rules."""
    from tests.gitutil import add_worktree, git
    from wtls.worktrees import discover, repository_payload, repository_state

    add_worktree(repo, tmp_path / "a", "feature/a")
    locked = add_worktree(repo, tmp_path / "b", "feature/b")
    git(repo, "worktree", "lock", str(locked))
    git(repo, "worktree", "add", "-q", "--detach", str(tmp_path / "c"))
    payload = wire_object(repository_payload(repository_state(discover(repo))))
    can = {
        w["path"]: (w["canMerge"], w["canRemove"], w["canLock"], w["canUnlock"])
        for w in payload["worktrees"]
    }
    assert can == {
        str(repo): (False, False, False, False),
        str(tmp_path / "a"): (True, True, True, False),
        str(locked): (True, True, False, True),
        str(tmp_path / "c"): (False, True, True, False),
    }


def test_find_matches_whole_folder_names_and_the_deepest_worktree(
    repo: Path, tmp_path: Path
) -> None:
    """``find`` compares paths as text: ``wt`` must not claim ``wt2``'s files, and a worktree
    nested inside another owns its own files."""
    outer = add_worktree(repo, tmp_path / "wt", "feature/outer")
    sibling = add_worktree(repo, tmp_path / "wt2", "feature/sibling")
    nested = add_worktree(repo, outer / "inner", "feature/inner")
    state = state_of(repo)
    assert state.find(sibling / "a.txt").path == sibling.resolve()  # type: ignore[union-attr]
    assert state.find(outer / "a.txt").path == outer.resolve()  # type: ignore[union-attr]
    assert state.find(nested / "x" / "y").path == nested.resolve()  # type: ignore[union-attr]
    assert state.find(outer).path == outer.resolve()  # type: ignore[union-attr]
    assert state.find(tmp_path / "w") is None
    assert state.find(str(sibling)).path == sibling.resolve()  # type: ignore[union-attr]
