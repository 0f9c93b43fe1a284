"""The lifecycle core on real repositories: spawn, open, merge, remove, prune, lock, disk."""

from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from tests.core.lifecycle_util import disk_state, repo_snapshot, run_printed, run_wtls
from tests.gitutil import add_worktree, commit_all, git
from wtls import lifecycle as lc
from wtls.cli.render import fix_words
from wtls.errors import Fix, Refused
from wtls.git import GitBusy
from wtls.lifecycle import LifecycleSettings
from wtls.lifecycle import spawning as spawn_module
from wtls.wire import wire_object
from wtls.worktrees import discover, repository_state


def _refused(match: str, fn: object, *args: object, **kwargs: object) -> Refused:
    with pytest.raises(Refused, match=match) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    return info.value


def assert_refused_unchanged(
    repo: Path, match: str, fn: object, *args: object, **kw: object
) -> str:
    """Call ``fn``; it must raise Refused matching ``match`` and change nothing at all."""
    before = repo_snapshot(repo)
    exc = _refused(match, fn, *args, **kw)
    assert repo_snapshot(repo) == before
    return str(exc)


def worktree_paths(repo: Path) -> list[str]:
    return [
        line.removeprefix("worktree ")
        for line in git(repo, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]


# ----------------------------------------------------------------------------- names
@pytest.mark.parametrize(
    ("name", "branch", "slug"),
    [
        ("fix login", "agent/fix-login", "fix-login"),
        ("Fix Login!", "agent/fix-login", "fix-login"),
        ("tâche été", "agent/tache-ete", "tache-ete"),
        ("a;b", "agent/a-b", "a-b"),
        ("$(touch pwned)", "agent/touch-pwned", "touch-pwned"),
        ("feature/wipe", "feature/wipe", "wipe"),
        ("refs/heads/feature/x", "feature/x", "x"),
        ("v1.2", "agent/v1.2", "v1.2"),
    ],
)
def test_names_for(name: str, branch: str, slug: str) -> None:
    assert lc.names_for(name, LifecycleSettings()) == (branch, slug)


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("-b", "cannot start with '-'"),
        ("--force", "cannot start with '-'"),
        ("a\nb", "control character"),
        ("x" * 101, "too long"),
        ("日本語", "empty folder name"),
        ("!!!", "empty folder name"),
    ],
)
def test_names_for_refuses(name: str, match: str) -> None:
    _refused(match, lc.names_for, name, LifecycleSettings())


def test_branch_template_must_use_slug() -> None:
    _refused("must contain", lc.names_for, "x", LifecycleSettings(branch_template="agent/fixed"))


# ----------------------------------------------------------------------------- spawn
def test_spawn_defaults(repo: Path) -> None:
    result = lc.spawn(repo, "Fix Login", prompt="Make login work.")
    expected = repo.parent / "tasks-app-fix-login"
    assert result.path == expected
    assert result.branch == "agent/fix-login"
    assert result.uri == expected.as_uri()
    assert result.base == "main"
    assert result.base_commit == git(repo, "rev-parse", "main")
    assert git(expected, "rev-parse", "--abbrev-ref", "HEAD") == "agent/fix-login"
    assert str(expected) in worktree_paths(repo)
    # The prompt is in an ignored file: the new worktree is clean for git.
    assert (expected / ".wtls" / "task.md").read_text() == "Make login work.\n"
    assert result.prompt_file == expected / ".wtls" / "task.md"
    assert git(expected, "status", "--porcelain", "--untracked-files=all") == ""
    info = lc.read_spawn_info(expected)
    assert info is not None and info["branch"] == "agent/fix-login"
    assert info["promptFile"] == ".wtls/task.md"
    payload = wire_object(result)
    for key in ("path", "branch", "uri", "promptFile", "ports", "copied", "setup"):
        assert key in payload
    # No shared file was touched to ignore .wtls/.
    assert (
        not (repo / ".git" / "info" / "exclude").exists()
        or ".wtls" not in (repo / ".git" / "info" / "exclude").read_text()
    )
    assert git(repo, "status", "--porcelain") == ""


def test_spawn_with_branch_name_base_and_path(repo: Path, tmp_path: Path) -> None:
    git(repo, "switch", "-q", "-c", "dev")
    (repo / "dev.txt").write_text("dev\n")
    commit_all(repo, "dev work")
    git(repo, "switch", "-q", "main")
    target = tmp_path / "elsewhere" / "wt"
    result = lc.spawn(repo, "feature/wipe", base="dev", path=target)
    assert result.branch == "feature/wipe"
    assert result.path == target
    assert (target / "dev.txt").read_text() == "dev\n"
    assert result.base == "dev"


def test_spawn_relative_path_is_relative_to_start(repo: Path) -> None:
    result = lc.spawn(repo, "rel", path="../rel-wt")
    assert result.path == repo.parent / "rel-wt"


def test_spawn_path_template(repo: Path, tmp_path: Path) -> None:
    settings = LifecycleSettings(path_template=str(tmp_path / "trees" / "{repo}" / "{slug}"))
    result = lc.spawn(repo, "x", settings=settings)
    assert result.path == tmp_path / "trees" / "tasks-app" / "x"


def test_spawn_nested_in_ignored_folder_is_allowed(repo: Path) -> None:
    (repo / ".gitignore").write_text("tasks.json\n.worktrees/\n")
    commit_all(repo, "ignore .worktrees")
    result = lc.spawn(repo, "nested", path=repo / ".worktrees" / "nested")
    assert result.path.is_dir()
    (repo / ".gitignore").write_text("tasks.json\n.worktrees/\nside/\n")
    commit_all(repo, "ignore side/")
    assert lc.spawn(repo, "side", path=repo / "side").path.is_dir()
    assert git(repo, "status", "--porcelain") == ""


def test_spawn_copies_ignored_files_and_assigns_ports(repo: Path) -> None:
    (repo / ".gitignore").write_text(".env\nconfig/local.json\nsecret.key\nbuild/\n")
    (repo / ".wtls.toml").write_text('copy = [".env"]\nports = ["PORT", "DB_PORT"]\n')
    (repo / ".worktreeinclude").write_text("# local config\nconfig/local.json\nbuild/\n")
    commit_all(repo, "recipe")
    (repo / ".env").write_text("TOKEN=1\n")
    (repo / "config").mkdir()
    (repo / "config" / "local.json").write_text("{}\n")
    (repo / "secret.key").write_text("not listed: stays\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.bin").write_bytes(b"\x00\x01")
    (repo / "notes.txt").write_text("untracked but not ignored: not copied\n")
    result = lc.spawn(repo, "one")
    assert sorted(result.copied) == [".env", "build/out.bin", "config/local.json"]
    assert (result.path / ".env").read_text() == "TOKEN=1\n"
    assert (result.path / "build" / "out.bin").read_bytes() == b"\x00\x01"
    assert not (result.path / "secret.key").exists()
    assert not (result.path / "notes.txt").exists()
    assert set(result.ports) == {"PORT", "DB_PORT"}
    assert lc.read_ports(result.path) == dict(result.ports)
    assert len(set(result.ports.values())) == 2
    assert all(lc.PORT_RANGE[0] <= p < lc.PORT_RANGE[1] for p in result.ports.values())
    # The copies are ignored in the new worktree too.
    assert git(result.path, "status", "--porcelain") == ""
    other = lc.spawn(repo, "two")
    assert not set(other.ports.values()) & set(result.ports.values())


def test_assign_ports_is_stable_and_skips_busy_ports(tmp_path: Path) -> None:
    first = lc.assign_ports(["PORT"], tmp_path / "a")
    assert lc.assign_ports(["PORT"], tmp_path / "a") == first
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", first["PORT"]))
        busy.listen()
        moved = lc.assign_ports(["PORT"], tmp_path / "a")
    assert moved["PORT"] != first["PORT"]
    assert lc.assign_ports(["PORT"], tmp_path / "a", taken=[first["PORT"]]) != first


def test_setup_runs_only_when_trusted(repo: Path) -> None:
    (repo / ".wtls.toml").write_text(
        'ports = ["PORT"]\nsetup = ["sh -c \\"echo port=$PORT > setup.out; echo done\\""]\n'
    )
    (repo / ".gitignore").write_text("tasks.json\nsetup.out\n")
    commit_all(repo, "setup")
    untrusted = lc.spawn(repo, "untrusted")
    assert not untrusted.setup.ran
    assert untrusted.setup.skipped is not None and "not trusted" in untrusted.setup.skipped
    assert not (untrusted.path / "setup.out").exists()
    lines: list[str] = []
    trusted = lc.spawn(repo, "trusted", trusted=True, on_output=lines.append)
    assert trusted.setup.ran and trusted.setup.ok
    assert (trusted.path / "setup.out").read_text() == f"port={trusted.ports['PORT']}\n"
    assert "done" in lines
    assert trusted.setup.commands[0].exit_code == 0


def test_setup_failure_keeps_the_worktree(repo: Path) -> None:
    (repo / ".wtls.toml").write_text('setup = ["sh -c \\"echo boom; exit 3\\"", "touch never"]\n')
    commit_all(repo, "failing setup")
    result = lc.spawn(repo, "broken-setup", trusted=True)
    assert result.path.is_dir()
    assert str(result.path) in worktree_paths(repo)
    assert not result.setup.ok
    assert result.setup.message is not None
    assert "`sh -c 'echo boom; exit 3'` failed (exit status 3)" in result.setup.message
    assert "kept" in result.setup.message
    assert len(result.setup.commands) == 1  # stopped at the first failure
    assert not (result.path / "never").exists()
    missing = lc.run_setup(result.path, [["no-such-command-wtls"]], env=dict(os.environ))
    assert not missing.ok and missing.message and "could not start" in missing.message


def test_setup_timeout(repo: Path, tmp_path: Path) -> None:
    result = lc.run_setup(tmp_path, [["sleep", "30"]], env=dict(os.environ), timeout=0.5)
    assert not result.ok
    assert result.message is not None and "timed out" in result.message


def test_invalid_wtls_toml_refuses_before_creating(repo: Path) -> None:
    (repo / ".wtls.toml").write_text("setup = 'npm ci'\n")
    commit_all(repo, "bad recipe")
    assert_refused_unchanged(repo, "`setup` must be a list", lc.spawn, repo, "x")
    (repo / ".wtls.toml").write_text("copyy = []\n")
    assert_refused_unchanged(repo, "unknown key 'copyy'", lc.spawn, repo, "x")
    (repo / ".wtls.toml").write_text("ports = [\n")
    assert_refused_unchanged(repo, "not valid TOML", lc.spawn, repo, "x")
    (repo / ".wtls.toml").write_text('ports = ["1PORT"]\n')
    assert_refused_unchanged(repo, "environment variable name", lc.spawn, repo, "x")


def test_spawn_refusals_change_nothing(repo: Path, tmp_path: Path) -> None:
    other = add_worktree(repo, tmp_path / "other", "feature/taken")
    git(repo, "branch", "agent/exists")
    git(repo, "branch", "grp")
    (repo.parent / "tasks-app-occupied").mkdir()
    msg = assert_refused_unchanged(
        repo, "already checked out in worktree", lc.spawn, repo, "feature/taken"
    )
    assert str(other) in msg
    assert_refused_unchanged(repo, "branch agent/exists already exists", lc.spawn, repo, "exists")
    assert_refused_unchanged(
        repo, "path .*tasks-app-occupied already exists", lc.spawn, repo, "occupied"
    )
    assert_refused_unchanged(repo, "base 'nope' does not exist", lc.spawn, repo, "x", base="nope")
    assert_refused_unchanged(repo, "empty folder name", lc.spawn, repo, "???")
    assert_refused_unchanged(repo, "not a valid branch name", lc.spawn, repo, "x.lock")
    assert_refused_unchanged(repo, "branch grp exists, so no branch", lc.spawn, repo, "grp/x")
    git(repo, "branch", "deep/a/b")
    assert_refused_unchanged(repo, "branch deep/a/b exists", lc.spawn, repo, "deep/a")
    assert_refused_unchanged(
        repo, "inside worktree .* not ignored", lc.spawn, repo, "x", path=repo / "sub"
    )


def test_validate_name(repo: Path) -> None:
    ok = lc.validate_name(repo, "new task")
    assert ok.ok and ok.branch == "agent/new-task"
    assert ok.path == repo.parent / "tasks-app-new-task"
    assert wire_object(ok)["path"] == str(repo.parent / "tasks-app-new-task")
    bad = lc.validate_name(repo, "x..y/z")
    assert not bad.ok and "not a valid branch name" in bad.message
    assert wire_object(lc.validate_name(repo, ""))["ok"] is False
    lc.spawn(repo, "new task")
    taken = lc.validate_name(repo, "new task")
    assert not taken.ok and "already checked out" in taken.message


def test_two_spawns_of_the_same_name_at_once(repo: Path) -> None:
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def go() -> None:
        barrier.wait(timeout=10)
        try:
            outcomes.append(lc.spawn(repo, "race"))
        except Exception as exc:  # the loser's refusal is the point of the test
            outcomes.append(exc)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    wins = [o for o in outcomes if isinstance(o, lc.SpawnResult)]
    losses = [o for o in outcomes if isinstance(o, Refused)]
    assert len(wins) == 1 and len(losses) == 1, outcomes
    assert "agent/race" in str(losses[0])
    assert worktree_paths(repo) == [str(repo), str(wins[0].path)]
    assert git(wins[0].path, "status", "--porcelain") == ""


def test_lifecycle_lock_held_elsewhere_is_busy(repo: Path) -> None:
    import fcntl

    lock_path = repo / ".git" / "wtls-lifecycle.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(GitBusy, match="busy"), lc._repo_lock(repo / ".git", timeout=0.2):
            pass
    finally:
        os.close(fd)


def test_index_lock_gives_busy_and_changes_nothing(repo: Path, tmp_path: Path) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature/a")
    (wt / "a.txt").write_text("a\n")
    commit_all(wt, "a")
    (repo / ".git" / "index.lock").write_text("")
    before = repo_snapshot(repo)
    with pytest.raises(GitBusy, match="busy") as info:
        lc.merge_back(repo, "feature/a")
    assert "index.lock" in str(info.value)
    assert repo_snapshot(repo) == before
    (repo / ".git" / "index.lock").unlink()


# ----------------------------------------------------------------------------- open
def test_open_lists_and_resolves(repo: Path, tmp_path: Path) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature/a")
    listing = wire_object(lc.open_worktree(repo))
    assert [w["path"] for w in listing["worktrees"]] == [str(repo), str(wt)]
    assert listing["worktrees"][0]["isThis"] is True
    chosen = wire_object(lc.open_worktree(repo, "feature/a"))
    assert chosen == {"path": str(wt), "uri": wt.as_uri(), "branch": "feature/a", "opened": False}
    marker = tmp_path / "opened.txt"
    settings = LifecycleSettings(open_command=f"sh -c 'echo \"$0\" > {marker}' {{path}}")
    result = lc.open_worktree(repo, str(wt), open_window=True, wait=True, settings=settings)
    assert result.opened
    assert marker.read_text() == f"{wt}\n"


def test_open_command_argv_never_splits_the_path(tmp_path: Path) -> None:
    path = tmp_path / "a b; $(touch x)"
    argv = lc.open_command_argv("tmux new-window -c {path} nvim", path)
    assert argv == ["tmux", "new-window", "-c", str(path), "nvim"]
    assert lc.open_command_argv("code -n", path) == ["code", "-n", str(path)]
    _refused("cannot be split", lc.open_command_argv, "code 'unterminated", path)


def test_resolve_worktree(repo: Path, tmp_path: Path) -> None:
    wt = add_worktree(repo, tmp_path / "wt-folder", "feature/a")
    (wt / "src").mkdir()
    state = repository_state(discover(repo))
    assert lc.resolve_worktree(state, "feature/a").path == wt
    assert lc.resolve_worktree(state, "refs/heads/feature/a").path == wt
    assert lc.resolve_worktree(state, str(wt)).path == wt
    assert lc.resolve_worktree(state, str(wt / "src")).path == wt
    assert lc.resolve_worktree(state, "wt-folder").path == wt
    assert lc.resolve_worktree(state, wt.as_uri()).path == wt
    assert lc.resolve_worktree(state, "../wt-folder", cwd=repo).path == wt
    assert lc.resolve_worktree(state, ".", cwd=repo).path == repo
    _refused(r"no worktree matches 'nope'.*feature/a", lc.resolve_worktree, state, "nope")


# ----------------------------------------------------------------------------- merge
def _agent(repo: Path, tmp_path: Path, branch: str, files: dict[str, str]) -> Path:
    wt = add_worktree(repo, tmp_path / branch.replace("/", "-"), branch)
    for rel, text in files.items():
        (wt / rel).write_text(text)
    commit_all(wt, f"work on {branch}")
    return wt


def test_merge_clean(repo: Path, tmp_path: Path) -> None:
    _agent(repo, tmp_path, "feature/a", {"a.txt": "a\n"})
    result = lc.merge_back(repo, "feature/a")
    assert result.merged and not result.conflicts
    assert (repo / "a.txt").read_text() == "a\n"
    assert result.commit == git(repo, "rev-parse", "main")
    assert wire_object(result)["removed"] is False


def test_merge_from_the_agent_worktree_runs_in_the_base_worktree(
    repo: Path, tmp_path: Path
) -> None:
    wt = _agent(repo, tmp_path, "feature/a", {"a.txt": "a\n"})
    (repo / "cli.py").write_text((repo / "cli.py").read_text())  # no-op touch
    git(repo, "commit", "--allow-empty", "-q", "-m", "diverge")
    result = lc.merge_back(wt, ".")
    assert result.merged and result.base_worktree == repo
    assert git(repo, "log", "-1", "--format=%s") == "Merge branch 'feature/a'"
    assert git(wt, "rev-parse", "--abbrev-ref", "HEAD") == "feature/a"


def test_merge_uses_the_branch_even_when_a_tag_shadows_it(repo: Path, tmp_path: Path) -> None:
    _agent(repo, tmp_path, "shadow", {"s.txt": "s\n"})
    git(repo, "tag", "shadow", "main")
    result = lc.merge_back(repo, "shadow")
    assert result.merged
    assert (repo / "s.txt").read_text() == "s\n"


def test_merge_conflict_then_abort(repo: Path, tmp_path: Path) -> None:
    wt = _agent(repo, tmp_path, "feature/a", {"cli.py": "agent version\n"})
    (repo / "cli.py").write_text("main version\n")
    commit_all(repo, "main edit")
    before = git(repo, "rev-parse", "HEAD")
    result = lc.merge_back(repo, str(wt))
    assert not result.merged
    assert result.conflicts == ("cli.py",)
    assert "cli.py" in result.message and "--abort" in result.message
    assert (repo / ".git" / "MERGE_HEAD").exists()
    assert "<<<<<<<" in (repo / "cli.py").read_text()
    # While the merge is in progress another merge is refused.
    assert_refused_unchanged(repo, "merge is in progress", lc.merge_back, repo, "feature/a")
    aborted = lc.merge_back(repo, "feature/a", abort=True)
    assert aborted.aborted
    assert not (repo / ".git" / "MERGE_HEAD").exists()
    assert git(repo, "rev-parse", "HEAD") == before
    assert (repo / "cli.py").read_text() == "main version\n"
    assert_refused_unchanged(
        repo, "no merge is in progress", lc.merge_back, repo, "feature/a", abort=True
    )


def test_merge_refusals_change_nothing(repo: Path, tmp_path: Path) -> None:
    wt = _agent(repo, tmp_path, "feature/a", {"a.txt": "a\n"})
    (repo / "cli.py").write_text("dirty\n")
    msg = assert_refused_unchanged(
        repo, "base worktree .* uncommitted changes", lc.merge_back, repo, "feature/a"
    )
    assert "cli.py" in msg
    git(repo, "checkout", "--", "cli.py")
    (wt / "wip.txt").write_text("wip\n")
    assert_refused_unchanged(
        repo,
        "uncommitted work that a merge would leave behind: wip.txt",
        lc.merge_back,
        repo,
        "feature/a",
    )
    (wt / "wip.txt").unlink()
    assert_refused_unchanged(repo, "base branch main checked out", lc.merge_back, repo, "main")
    git(wt, "switch", "-q", "--detach")
    assert_refused_unchanged(repo, "is detached", lc.merge_back, repo, str(wt))
    git(wt, "switch", "-q", "feature/a")
    git(repo, "switch", "-q", "-c", "elsewhere")
    assert_refused_unchanged(
        repo,
        "base branch main is not checked out",
        lc.merge_back,
        repo,
        "feature/a",
        settings=LifecycleSettings(base_branch="main"),
    )
    git(repo, "switch", "-q", "main")
    # An untracked file in the base worktree that the merge would overwrite: refused before
    # git runs (git itself refuses an untracked one, but overwrites an ignored one).
    (repo / "a.txt").write_text("mine\n")
    assert_refused_unchanged(
        repo,
        "would overwrite files of the base worktree .*: a.txt",
        lc.merge_back,
        repo,
        "feature/a",
    )


def test_merge_with_remove(repo: Path, tmp_path: Path) -> None:
    wt = _agent(repo, tmp_path, "feature/a", {"a.txt": "a\n"})
    result = lc.merge_back(repo, "feature/a", remove=True)
    assert result.merged and result.removed and result.branch_deleted
    assert not wt.exists()
    assert git(repo, "branch", "--list", "feature/a") == ""
    wt2 = _agent(repo, tmp_path, "feature/b", {"b.txt": "b\n"})
    kept = lc.merge_back(repo, "feature/b", remove=True, delete_branch=False)
    assert kept.removed and not kept.branch_deleted and not wt2.exists()
    assert git(repo, "branch", "--list", "feature/b") != ""
    wt3 = _agent(repo, tmp_path, "feature/c", {"c.txt": "c\n"})
    lc.lock(repo, str(wt3), "usb disk")
    assert_refused_unchanged(
        repo, "is locked .usb disk.", lc.merge_back, repo, "feature/c", remove=True
    )


# ----------------------------------------------------------------------------- remove
def test_remove_merged_deletes_branch_unmerged_keeps_it(repo: Path, tmp_path: Path) -> None:
    _agent(repo, tmp_path, "feature/a", {"a.txt": "a\n"})
    git(repo, "merge", "-q", "--no-edit", "feature/a")
    result = lc.remove(repo, "feature/a")
    assert result.removed and result.branch_deleted and result.backup_ref is None
    assert git(repo, "branch", "--list", "feature/a") == ""
    _agent(repo, tmp_path, "feature/b", {"b.txt": "b\n"})
    kept = lc.remove(repo, "feature/b")
    assert kept.removed and not kept.branch_deleted
    assert "kept branch feature/b (not merged" in kept.message
    assert git(repo, "branch", "--list", "feature/b") != ""


def test_remove_fresh_branch_is_not_called_merged(repo: Path, tmp_path: Path) -> None:
    add_worktree(repo, tmp_path / "fresh", "agent/fresh")
    result = lc.remove(repo, "agent/fresh")
    assert result.removed and not result.branch_deleted


@pytest.mark.parametrize("how", ["squash", "rebase"])
def test_remove_squash_or_rebase_merged_counts_as_merged(
    repo: Path, tmp_path: Path, how: str
) -> None:
    wt = _agent(repo, tmp_path, "feature/s", {"s1.txt": "1\n"})
    (wt / "s2.txt").write_text("2\n")
    commit_all(wt, "second")
    (repo / "other.txt").write_text("main moved on\n")
    commit_all(repo, "main work")
    if how == "squash":
        git(repo, "merge", "-q", "--squash", "feature/s")
        git(repo, "commit", "-q", "-m", "squash")
    else:
        git(repo, "cherry-pick", "main..feature/s")
    assert git(repo, "branch", "--merged", "main", "--list", "feature/s") == ""  # git says no
    dry = lc.remove(repo, "feature/s", dry_run=True)
    assert dry.would_delete_branch and not dry.removed and wt.exists()
    result = lc.remove(repo, "feature/s")
    assert result.branch_deleted


def test_remove_unmerged_with_delete_branch_keeps_tip_in_backup(repo: Path, tmp_path: Path) -> None:
    _agent(repo, tmp_path, "feature/u", {"u.txt": "u\n"})
    tip = git(repo, "rev-parse", "feature/u")
    result = lc.remove(repo, "feature/u", delete_branch=True)
    assert result.branch_deleted
    assert result.backup_ref is not None and result.backup_ref.startswith(
        "refs/wtls/backup/feature/u-"
    )
    assert git(repo, "rev-parse", result.backup_ref) == tip
    assert result.restore_command is not None
    run_printed(result.restore_command)
    assert git(repo, "rev-parse", "feature/u") == tip


def test_remove_refusals_change_nothing(repo: Path, tmp_path: Path) -> None:
    wt = _agent(repo, tmp_path, "feature/a", {"a.txt": "a\n"})
    assert_refused_unchanged(repo, "is the main worktree", lc.remove, repo, str(repo))
    assert_refused_unchanged(repo, "is the main worktree", lc.remove, repo, "main", force=True)
    (wt / "a.txt").write_text("changed\n")
    (wt / "new.txt").write_text("new\n")
    msg = assert_refused_unchanged(repo, "uncommitted changes", lc.remove, repo, "feature/a")
    assert "a.txt" in msg and "new.txt" in msg and "“Remove anyway”" in msg
    assert_refused_unchanged(
        repo, "uncommitted changes", lc.remove, repo, "feature/a", dry_run=True
    )
    git(wt, "checkout", "--", "a.txt")
    (wt / "new.txt").unlink()
    lc.lock(repo, "feature/a", "agent running")
    assert_refused_unchanged(repo, r"locked \(agent running\)", lc.remove, repo, "feature/a")
    assert_refused_unchanged(repo, "no worktree matches", lc.remove, repo, "feature/nope")
    forced = lc.remove(repo, "feature/a", force=True)
    assert forced.removed and forced.backup_ref is None and not wt.exists()


def test_remove_refusals_carry_a_fix_each_face_words(repo: Path, tmp_path: Path) -> None:
    """The core says what gets past a refusal (a Fix), not a CLI flag: the CLI words it as a
    flag, the editor as a button."""
    wt = _agent(repo, tmp_path, "feature/a", {"a.txt": "a\n"})
    (wt / "a.txt").write_text("changed\n")
    with pytest.raises(Refused) as dirty:
        lc.remove(repo, "feature/a")
    assert dirty.value.fixes == (Fix(action="remove", option="force", label="Remove anyway"),)
    assert "--force" not in str(dirty.value) and "choose “Remove anyway”" in str(dirty.value)
    assert "or pass --force to remove it anyway" in dirty.value.worded(fix_words)
    proc = run_wtls(repo, "remove", "feature/a")
    assert proc.returncode == 1 and "or pass --force to remove it anyway" in proc.stderr
    git(wt, "checkout", "--", "a.txt")
    lc.lock(repo, "feature/a", "agent running")
    with pytest.raises(Refused) as locked:
        lc.remove(repo, "feature/a")
    assert [f.action for f in locked.value.fixes] == ["unlock", "remove"]
    assert locked.value.worded(fix_words).endswith(
        "locked (agent running): unlock it (`wtls unlock`) or pass --force"
    )
    assert "wtls unlock" not in str(locked.value) and "“Unlock”" in str(locked.value)


def _make_mess(wt: Path) -> None:
    """Staged, unstaged, untracked, deleted, binary, executable, odd names, nested folders."""
    (wt / "staged.txt").write_text("staged new file\n")
    git(wt, "add", "staged.txt")
    (wt / "cli.py").write_text("staged version\n")
    git(wt, "add", "cli.py")
    (wt / "cli.py").write_text("unstaged version on top of staged\n")
    (wt / "tracked.txt").unlink()
    (wt / "untracked dir").mkdir()
    (wt / "untracked dir" / "ünï cödé;$(x).bin").write_bytes(bytes(range(256)))
    (wt / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (wt / "run.sh").chmod(0o755)
    (wt / "*glob[1].txt").write_text("pathspec magic must be literal\n")
    (wt / "tasks.json").write_text("ignored: not backed up, not expected back\n")


def test_forced_remove_backup_restores_every_byte(repo: Path, tmp_path: Path) -> None:
    wt = add_worktree(repo, tmp_path / "dirty", "feature/dirty")
    (wt / "tracked.txt").write_text("will be deleted\n")
    commit_all(wt, "add tracked")
    _make_mess(wt)
    expected = disk_state(wt)
    expected.pop("tasks.json")
    expected_index = git(wt, "diff", "--cached", "--name-status")
    expected_status = git(wt, "status", "--porcelain")
    dry = lc.remove(repo, "feature/dirty", force=True, dry_run=True)
    assert set(dry.would_back_up) >= {"staged.txt", "cli.py", "tracked.txt", "run.sh"}
    assert wt.exists()
    result = lc.remove(repo, "feature/dirty", force=True)
    assert result.removed and not wt.exists()
    assert not result.branch_deleted  # not merged: kept
    ref = result.backup_ref
    assert ref is not None and ref.startswith("refs/wtls/backup/feature/dirty-")
    assert {"staged.txt", "cli.py", "tracked.txt", "run.sh", "*glob[1].txt"} <= set(
        result.would_back_up
    )
    assert (
        result.restore_command is not None
        and " restore refs/wtls/backup/" in result.restore_command
    )
    # Run the printed command exactly as a user would.
    run_printed(result.restore_command)
    restored = disk_state(wt)
    assert restored == expected
    assert stat.S_IMODE((wt / "run.sh").stat().st_mode) & 0o100
    assert git(wt, "diff", "--cached", "--name-status") == expected_index
    assert git(wt, "status", "--porcelain") == expected_status


def test_forced_remove_of_a_worktree_with_a_conflicted_merge(repo: Path, tmp_path: Path) -> None:
    wt = _agent(repo, tmp_path, "feature/c", {"cli.py": "agent\n"})
    (repo / "cli.py").write_text("main\n")
    commit_all(repo, "main")
    git(wt, "merge", "main", check=False)
    assert (wt / "cli.py").read_text().startswith("<<<<<<<")
    conflicted = (wt / "cli.py").read_bytes()
    _refused("uncommitted changes", lc.remove, repo, "feature/c")
    result = lc.remove(repo, "feature/c", force=True)
    assert result.removed and result.backup_ref
    run_printed(result.restore_command)
    assert (wt / "cli.py").read_bytes() == conflicted


def test_forced_remove_of_detached_worktree(repo: Path, tmp_path: Path) -> None:
    wt = tmp_path / "det"
    git(repo, "worktree", "add", "-q", "--detach", str(wt))
    (wt / "x.txt").write_text("x\n")
    result = lc.remove(repo, str(wt), force=True)
    assert result.backup_ref is not None and "/detached-det-" in result.backup_ref
    run_printed(result.restore_command)
    assert (wt / "x.txt").read_text() == "x\n"


# ----------------------------------------------------------------------------- prune, lock
def test_prune(repo: Path, tmp_path: Path) -> None:
    import shutil

    gone = add_worktree(repo, tmp_path / "gone", "feature/gone")
    kept = add_worktree(repo, tmp_path / "kept", "feature/kept")
    git(repo, "worktree", "lock", "--reason", "on usb", str(kept))
    shutil.rmtree(gone)
    shutil.rmtree(kept)
    before = repo_snapshot(repo)
    dry = lc.prune(repo, dry_run=True)
    assert [p.path for p in dry.pruned] == [gone]
    assert wire_object(dry)["dryRun"] is True
    assert wire_object(dry)["kept"][0]["path"] == str(kept)
    assert "on usb" in dry.kept[0].reason
    assert repo_snapshot(repo) == before
    done = lc.prune(repo)
    assert [p.path for p in done.pruned] == [gone]
    assert str(gone) not in worktree_paths(repo)
    assert str(kept) in worktree_paths(repo)
    assert lc.prune(repo).pruned == ()
    assert_refused_unchanged(repo, "already gone", lc.remove, repo, str(kept), force=True)


def test_lock_unlock(repo: Path, tmp_path: Path) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature/a")
    locked = lc.lock(repo, "feature/a", "agent at work")
    assert wire_object(locked) == {"path": str(wt), "locked": True, "reason": "agent at work"}
    assert "locked agent at work" in git(repo, "worktree", "list", "--porcelain")
    assert_refused_unchanged(repo, "already locked", lc.lock, repo, "feature/a")
    assert_refused_unchanged(repo, "one line", lc.lock, repo, "feature/a", "a\nb")
    assert lc.unlock(repo, str(wt)).locked is False
    assert_refused_unchanged(repo, "not locked", lc.unlock, repo, "feature/a")
    assert_refused_unchanged(repo, "main worktree", lc.lock, repo, str(repo))
    dash = lc.lock(repo, "feature/a", "--force")
    assert dash.reason == "--force"
    assert "locked --force" in git(repo, "worktree", "list", "--porcelain")


# ----------------------------------------------------------------------------- disk
def test_disk_usage(tmp_path: Path) -> None:
    root = tmp_path / "d"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "big").write_bytes(b"x" * 100_000)
    os.link(root / "sub" / "big", root / "hardlink")
    (root / "link").symlink_to(root / "sub")
    (root / "skip").mkdir()
    (root / "skip" / "huge").write_bytes(b"y" * 300_000)
    size = lc.disk_usage(root, exclude=[root / "skip"])
    assert 100_000 <= size < 200_000  # the hard link and the symlink's target count once
    assert lc.cached_disk_usage(root) == size
    (root / "sub" / "more").write_bytes(b"z" * 100_000)
    assert lc.disk_usage(root) == size  # cached
    assert lc.disk_usage(root, max_age=0) > size + 50_000
    lc.invalidate_disk_usage(root)
    assert lc.cached_disk_usage(root) is None


def test_bare_repository(tmp_path: Path, repo: Path) -> None:
    bare = tmp_path / "project.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    result = lc.spawn(bare, "task")
    assert result.path == tmp_path / "project-task"
    assert git(result.path, "rev-parse", "--abbrev-ref", "HEAD") == "agent/task"
    (result.path / "wip.txt").write_text("wip\n")
    removed = lc.remove(bare, "agent/task", force=True)
    assert removed.removed and removed.backup_ref is not None
    run_printed(removed.restore_command)
    assert (result.path / "wip.txt").read_text() == "wip\n"


def test_losing_a_race_to_another_tool_is_a_clear_refusal(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program (not wtls) creates the branch between wtls's checks and its worktree add."""
    real_add = spawn_module._worktree_add

    def racing_add(plan: object, run_dir: Path, on_progress: object, *rest: object) -> None:
        git(repo, "branch", "agent/contested")
        real_add(plan, run_dir, on_progress, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(spawn_module, "_worktree_add", racing_add)
    _refused("branch agent/contested already exists", lc.spawn, repo, "contested")
    assert worktree_paths(repo) == [str(repo)]
    assert not (repo.parent / "tasks-app-contested").exists()


def test_spawn_progress_on_large_checkouts(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(30):
        (repo / f"f{i}.txt").write_text(f"{i}\n")
    commit_all(repo, "files")
    monkeypatch.setattr(spawn_module, "LARGE_CHECKOUT", 10)  # take the threaded, reporting path
    messages: list[str] = []
    result = lc.spawn(repo, "big", on_progress=messages.append)
    assert messages[0] == f"creating {result.path} on new branch agent/big from main (32 files)"
    assert len(list(result.path.glob("f*.txt"))) == 30
