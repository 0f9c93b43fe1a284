"""Hostile review, round 6: writers racing a command, git's locks, unseen edits, mounts,
process start times. Each defect's test failed before its fix; the others (said so in their
comments) guard what a fix changed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.core.lifecycle_util import run_wtls
from tests.gitutil import add_worktree, commit_all, git, make_repo
from wtls import land as land_module
from wtls import processes, review_actions
from wtls.errors import Refused
from wtls.git import GitBusy, GitError
from wtls.lifecycle import merge as merge_module
from wtls.lifecycle import merge_back, remove
from wtls.lifecycle import removal as removal_module
from wtls.predict.commits import commit_info
from wtls.processes import CWD, ProcessUse


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    p = subprocess.Popen(["sleep", "300"], cwd=tmp_path)
    try:
        yield p
    finally:
        p.kill()
        p.wait(timeout=10)


@pytest.mark.skipif(not processes._has_proc(), reason="needs Linux /proc start times")
def test_a_pid_whose_start_time_was_not_read_is_not_signalled(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    # A process that ends between the scan reading its links and its start time leaves no
    # start time: a process that takes its pid later must not be signalled in its stead.
    use = ProcessUse(pid=sleeper.pid, command="sleep 300", reason=CWD, path=tmp_path)
    failed = processes.stop([use], {}, grace=0.1)
    assert failed == {sleeper.pid: processes.UNVERIFIED}
    assert sleeper.poll() is None  # still running: never signalled


@pytest.mark.skipif(not processes._has_proc(), reason="needs Linux /proc start times")
def test_a_pid_now_started_at_another_time_is_not_signalled(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    use = ProcessUse(pid=sleeper.pid, command="sleep 300", reason=CWD, path=tmp_path)
    failed = processes.stop([use], {sleeper.pid: "1"}, grace=0.1)
    assert sleeper.pid not in failed or failed[sleeper.pid] == processes.UNVERIFIED
    assert sleeper.poll() is None


@pytest.mark.skipif(not processes._has_proc(), reason="needs Linux /proc start times")
def test_a_pid_with_its_scanned_start_time_is_ended(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    start = processes._proc_start(sleeper.pid)
    assert start is not None
    use = ProcessUse(pid=sleeper.pid, command="sleep 300", reason=CWD, path=tmp_path)
    assert processes.stop([use], {sleeper.pid: start}, grace=5.0) == {}
    assert sleeper.wait(timeout=10) is not None


def _branch_with_env(tmp_path: Path, *, diverge: bool) -> tuple[Path, Path]:
    """A base worktree ignoring ``.env`` and a worktree whose branch commits one."""
    repo = make_repo(tmp_path, files={"a.txt": "a\n", ".gitignore": ".env\n"})
    wt = add_worktree(repo, tmp_path / "wt-feat", "feat")
    (wt / ".env").write_text("TOKEN=from-the-branch\n")
    git(wt, "add", "-f", ".env")
    git(wt, "commit", "-q", "-m", "commit the env")
    if diverge:
        (repo / "b.txt").write_text("b\n")
        commit_all(repo, "base moves on")
    return repo, wt


def _write_env_then(repo: Path, original: Callable[..., None]) -> Callable[..., None]:
    """``original``, with a writer creating the base's ignored ``.env`` right before it."""

    def wrapped(*args: object, **kwargs: object) -> None:
        (repo / ".env").write_text("TOKEN=precious\n")
        original(*args, **kwargs)

    return wrapped


def _write_env_after(repo: Path, original: Callable[..., None]) -> Callable[..., None]:
    def wrapped(*args: object, **kwargs: object) -> None:
        original(*args, **kwargs)
        (repo / ".env").write_text("TOKEN=precious\n")

    return wrapped


def test_an_ignored_file_written_after_the_check_is_kept_by_a_fast_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The check found nothing in the way; a writer (a dev server, an agent) creates the
    # base's ignored .env before git runs. git's own check (--no-overwrite-ignore) refuses.
    repo, _ = _branch_with_env(tmp_path, diverge=False)
    head = git(repo, "rev-parse", "HEAD")
    monkeypatch.setattr(
        merge_module,
        "_refuse_files_in_the_way",
        _write_env_after(repo, merge_module._refuse_files_in_the_way),
    )
    with pytest.raises(Refused, match=r"\.env"):
        merge_back(repo, "feat")
    assert (repo / ".env").read_text() == "TOKEN=precious\n"
    assert git(repo, "rev-parse", "HEAD") == head


def test_an_ignored_file_written_during_the_process_scan_is_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # merge --remove scans every process (long on a busy machine) after the files check
    # used to run: a file written meanwhile was overwritten by git's merge commit.
    repo, wt = _branch_with_env(tmp_path, diverge=True)
    head = git(repo, "rev-parse", "HEAD")
    monkeypatch.setattr(
        merge_module, "refuse_if_busy", _write_env_then(repo, merge_module.refuse_if_busy)
    )
    with pytest.raises(Refused, match=r"would overwrite files .*\.env"):
        merge_back(repo, "feat", remove=True)
    assert (repo / ".env").read_text() == "TOKEN=precious\n"
    assert git(repo, "rev-parse", "HEAD") == head
    assert wt.is_dir()


def test_land_keeps_an_ignored_file_written_after_its_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # land's check, then `read-tree -u -m`, which replaced an ignored .env written between.
    repo, wt = _branch_with_env(tmp_path, diverge=False)
    old = commit_info(repo, git(repo, "rev-parse", "main"))
    new = commit_info(repo, git(wt, "rev-parse", "HEAD"))
    assert old is not None and new is not None
    monkeypatch.setattr(land_module, "in_the_way", _write_env_after(repo, land_module.in_the_way))
    with pytest.raises(Refused, match=r"\.env"):
        land_module._move_base(repo / ".git", repo, "main", old, new)
    assert (repo / ".env").read_text() == "TOKEN=precious\n"
    assert git(repo, "rev-parse", "main") == old.oid
    assert git(repo, "status", "--porcelain") == ""


def test_land_brings_the_base_worktree_along_and_says_why_in_the_reflog(tmp_path: Path) -> None:
    repo, wt = _branch_with_env(tmp_path, diverge=False)
    old = commit_info(repo, git(repo, "rev-parse", "main"))
    new = commit_info(repo, git(wt, "rev-parse", "HEAD"))
    assert old is not None and new is not None
    assert land_module._move_base(repo / ".git", repo, "main", old, new) == []
    assert git(repo, "rev-parse", "main") == new.oid
    assert (repo / ".env").read_text() == "TOKEN=from-the-branch\n"
    assert git(repo, "status", "--porcelain") == ""
    assert "wtls land: tests passed on" in git(repo, "reflog", "-1", "main")


def _feature_commit(tmp_path: Path) -> tuple[Path, Path]:
    repo = make_repo(tmp_path, files={"a.txt": "a\n"})
    wt = add_worktree(repo, tmp_path / "wt-feat", "feat")
    (wt / "b.txt").write_text("b\n")
    commit_all(wt, "b")
    (repo / "c.txt").write_text("c\n")
    commit_all(repo, "c")  # a merge commit, not a fast-forward
    return repo, wt


def test_merge_while_another_git_holds_the_base_index_lock_is_busy(tmp_path: Path) -> None:
    # git 2.39 stops such a merge before merging anything but leaves MERGE_HEAD and says
    # "fix conflicts"; wtls said "stopped with conflicts in " (none), and a `git commit`
    # there recorded the branch as merged without its changes.
    repo, _ = _feature_commit(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    (repo / ".git" / "index.lock").touch()
    with pytest.raises(GitBusy, match="busy"):
        merge_back(repo, "feat")
    assert not (repo / ".git" / "MERGE_HEAD").exists()
    assert git(repo, "rev-parse", "HEAD") == head
    proc = run_wtls(repo, "merge", "feat")
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "busy" in proc.stderr and "Traceback" not in proc.stderr
    assert not (repo / ".git" / "MERGE_HEAD").exists()


def test_a_lock_taken_after_the_check_leaves_no_empty_merge_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _ = _feature_commit(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    lock = repo / ".git" / "index.lock"
    check = merge_module._refuse_if_index_locked

    def lock_then(*args: object, **kwargs: object) -> None:
        check(*args, **kwargs)  # type: ignore[arg-type]
        lock.touch()  # another git starts right after wtls looked

    monkeypatch.setattr(merge_module, "_refuse_if_index_locked", lock_then)
    with pytest.raises(GitError, match="merge --abort"):
        merge_back(repo, "feat")
    # git's abort needs the lock too; once the other git is done, the abort wtls named works.
    lock.unlink()
    git(repo, "merge", "--abort")
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain") == ""


def _hide_edit(worktree: Path, rel: str, new: bytes) -> None:
    """Rewrite ``rel`` so that git's stat cache does not see it: same size, same mtime, and
    the same ctime second as git's last look (retried when a second boundary falls between)."""
    f = worktree / rel
    old = f.read_bytes()
    assert len(old) == len(new)
    for _ in range(50):
        os.utime(f, (1_600_000_000, 1_600_000_000))
        git(worktree, "update-index", "--refresh")
        looked = int(f.stat().st_ctime)
        f.write_bytes(new)
        os.utime(f, (1_600_000_000, 1_600_000_000))
        if int(f.stat().st_ctime) == looked:
            assert git(worktree, "status", "--porcelain") == ""  # git sees nothing
            return
        f.write_bytes(old)
    pytest.skip("could not make an edit within git's second")


def _branch_changing_a(tmp_path: Path, *, diverge: bool) -> tuple[Path, Path]:
    repo = make_repo(tmp_path, files={"a.txt": "aaaa\n"})
    wt = add_worktree(repo, tmp_path / "wt-feat", "feat")
    (wt / "a.txt").write_text("cccc\n")
    commit_all(wt, "the branch's a")
    if diverge:
        (repo / "c.txt").write_text("c\n")
        commit_all(repo, "c")
    return repo, wt


@pytest.mark.parametrize("diverge", [False, True])
def test_merge_refuses_over_an_edit_git_status_does_not_show(tmp_path: Path, diverge: bool) -> None:
    repo, _ = _branch_changing_a(tmp_path, diverge=diverge)
    head = git(repo, "rev-parse", "HEAD")
    _hide_edit(repo, "a.txt", b"bbbb\n")
    proc = run_wtls(repo, "merge", "feat")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "a.txt" in proc.stderr and "git's status does not" in proc.stderr
    assert (repo / "a.txt").read_bytes() == b"bbbb\n"
    assert git(repo, "rev-parse", "HEAD") == head


def test_land_refuses_over_an_edit_git_status_does_not_show(tmp_path: Path) -> None:
    repo, wt = _branch_changing_a(tmp_path, diverge=False)
    old = commit_info(repo, git(repo, "rev-parse", "main"))
    new = commit_info(repo, git(wt, "rev-parse", "HEAD"))
    assert old is not None and new is not None
    _hide_edit(repo, "a.txt", b"bbbb\n")
    with pytest.raises(Refused, match=r"a\.txt"):
        land_module._move_base(repo / ".git", repo, "main", old, new)
    assert (repo / "a.txt").read_bytes() == b"bbbb\n"
    assert git(repo, "rev-parse", "main") == old.oid


def test_a_crlf_checkout_is_not_an_unseen_edit(tmp_path: Path) -> None:
    # hash-object applies the paths' filters as `git add` does: CRLF on disk under
    # text=auto, LF in the index, is no change.
    repo = make_repo(
        tmp_path, files={"a.txt": "aaaa\n", ".gitattributes": "* text=auto eol=crlf\n"}
    )
    git(repo, "rm", "-q", "--cached", "a.txt")
    (repo / "a.txt").unlink()
    git(repo, "checkout", "--", ".")
    git(repo, "reset", "-q", "--hard")
    assert (repo / "a.txt").read_bytes() == b"aaaa\r\n"
    wt = add_worktree(repo, tmp_path / "wt-feat", "feat")
    (wt / "a.txt").write_text("cccc\n")
    commit_all(wt, "the branch's a")
    assert run_wtls(repo, "merge", "feat").returncode == 0
    assert (repo / "a.txt").read_bytes() == b"cccc\r\n"


def _feature_editing(tmp_path: Path) -> tuple[Path, Path]:
    repo = make_repo(
        tmp_path,
        files={"a.txt": "base\n", "run.sh": "echo base\n", ".gitattributes": "*.txt eol=crlf\n"},
    )
    (repo / "run.sh").chmod(0o755)
    os.symlink("a.txt", repo / "link")
    commit_all(repo, "exec bit and a link")
    wt = add_worktree(repo, tmp_path / "wt-feat", "feat")
    (wt / "a.txt").write_bytes(b"committed on the branch\r\n")
    commit_all(wt, "branch edit")
    (wt / "a.txt").write_bytes(b"uncommitted edit\r\n")
    (wt / "run.sh").write_text("echo branch\n")
    (wt / "link").unlink()
    os.symlink("run.sh", wt / "link")
    return repo, wt


def test_discard_keeps_what_a_writer_wrote_after_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The file is checked against the backup, then git checkout wrote the merge-base version:
    # an edit made between the two (not in the backup) was lost.
    repo, wt = _feature_editing(tmp_path)
    original = review_actions._check_nothing_in_the_way

    def writer_then(root: Path, rel: str) -> None:
        (wt / "a.txt").write_bytes(b"written after the check\r\n")
        original(root, rel)

    monkeypatch.setattr(review_actions, "_check_nothing_in_the_way", writer_then)
    with pytest.raises(Refused, match="changed after it was saved"):
        review_actions.discard_in_worktree(str(wt), "a.txt", cwd=repo)
    assert (wt / "a.txt").read_bytes() == b"written after the check\r\n"
    assert [p.name for p in wt.iterdir() if ".wtls-" in p.name] == []


def test_discard_never_replaces_a_file_created_at_the_path_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, wt = _feature_editing(tmp_path)
    original = review_actions._hold_as_saved

    def hold_then_write(*args: object, **kwargs: object) -> dict[str, Path]:
        held = original(*args, **kwargs)  # type: ignore[arg-type]
        (wt / "a.txt").write_bytes(b"a writer made it again\r\n")
        return held

    monkeypatch.setattr(review_actions, "_hold_as_saved", hold_then_write)
    with pytest.raises(Refused, match="written again"):
        review_actions.discard_in_worktree(str(wt), "a.txt", cwd=repo)
    assert (wt / "a.txt").read_bytes() == b"a writer made it again\r\n"
    held = [p for p in wt.iterdir() if ".wtls-" in p.name]
    assert [p.read_bytes() for p in held] == [b"uncommitted edit\r\n"]


@pytest.mark.parametrize("rel", ["a.txt", "run.sh", "link"])
def test_discard_writes_what_a_checkout_writes(tmp_path: Path, rel: str) -> None:
    # Filters (eol=crlf), the exec bit and links, as `git checkout MERGE_BASE -- PATH` did.
    repo, wt = _feature_editing(tmp_path)
    base = git(repo, "rev-parse", "main")
    review_actions.discard_in_worktree(str(wt), rel, cwd=repo)
    assert git(wt, "diff", "--exit-code", base, "--", rel) == ""
    assert git(wt, "diff", "--exit-code", "--", rel) == ""  # the index says the same
    if rel == "a.txt":
        assert (wt / rel).read_bytes() == b"base\r\n"
    if rel == "run.sh":
        assert os.access(wt / rel, os.X_OK)
    if rel == "link":
        assert os.readlink(wt / rel) == "a.txt"
    assert [p.name for p in wt.iterdir() if ".wtls-" in p.name] == []


def test_a_file_committed_with_crlf_under_text_auto_is_not_an_unseen_edit(
    tmp_path: Path,
) -> None:
    # hash-object converts its CRLF (the index holds CRLF, git's status keeps it): only the
    # raw bytes against a checkout tell that nothing changed.
    repo = make_repo(tmp_path, files={"f.txt": ""})
    (repo / "f.txt").write_bytes(b"a\r\nb\r\n")
    commit_all(repo, "crlf")
    (repo / ".gitattributes").write_text("* text=auto\n")
    commit_all(repo, "attributes")
    wt = add_worktree(repo, tmp_path / "wt-feat", "feat")
    (wt / "f.txt").write_bytes(b"a\r\nc\r\n")
    commit_all(wt, "branch edit")
    proc = run_wtls(repo, "merge", "feat")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (repo / "f.txt").read_bytes() == b"a\r\nc\r\n"


def test_an_unseen_edit_of_a_crlf_file_under_text_auto_is_seen(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, files={"f.txt": ""})
    (repo / "f.txt").write_bytes(b"a\r\nb\r\n")
    commit_all(repo, "crlf")
    (repo / ".gitattributes").write_text("* text=auto\n")
    commit_all(repo, "attributes")
    wt = add_worktree(repo, tmp_path / "wt-feat", "feat")
    (wt / "f.txt").write_bytes(b"a\r\nc\r\n")
    commit_all(wt, "branch edit")
    _hide_edit(repo, "f.txt", b"a\r\nX\r\n")
    proc = run_wtls(repo, "merge", "feat")
    assert proc.returncode == 1 and "f.txt" in proc.stderr, proc.stdout + proc.stderr
    assert (repo / "f.txt").read_bytes() == b"a\r\nX\r\n"


@pytest.fixture
def bind_mount(tmp_path: Path) -> Iterator[Callable[[Path, Path], None]]:
    """``mount --bind SOURCE TARGET`` (skipped where not allowed); unmounted after the test."""
    mounted: list[Path] = []

    def mount(source: Path, target: Path) -> None:
        proc = subprocess.run(
            ["mount", "--bind", str(source), str(target)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            pytest.skip(f"cannot bind-mount here: {proc.stderr.strip()}")
        mounted.append(target)

    yield mount
    table = Path("/proc/self/mountinfo").read_text()
    for line in table.splitlines():
        point = line.split(" ")[4]
        if point.startswith(str(tmp_path)):
            subprocess.run(["umount", "-l", point], check=False)


def _worktree_with_mount(
    tmp_path: Path, mount: Callable[[Path, Path], None]
) -> tuple[Path, Path, Path]:
    repo = make_repo(tmp_path, files={"a.txt": "a\n", ".gitignore": "build/\n"})
    wt = add_worktree(repo, tmp_path / "wt-feat", "feat")
    data = tmp_path / "precious-data"
    data.mkdir()
    (data / "dataset.csv").write_text("years of work\n")
    (wt / "build" / "data").mkdir(parents=True)
    mount(data, wt / "build" / "data")
    return repo, wt, data


def test_remove_refuses_a_worktree_with_a_file_system_mounted_inside(
    tmp_path: Path, bind_mount: Callable[[Path, Path], None]
) -> None:
    # A bind mount in an ignored folder: git lists its files as ignored (disposable), and a
    # plain remove deleted the mounted folder's files, which live outside the worktree.
    repo, wt, data = _worktree_with_mount(tmp_path, bind_mount)
    for args in (["remove"], ["remove", "--force"]):
        proc = run_wtls(repo, *args, str(wt))
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "mounted inside" in proc.stderr and "Traceback" not in proc.stderr
        assert (data / "dataset.csv").read_text() == "years of work\n"
        assert (wt / "a.txt").exists()


def test_a_mount_that_appears_after_the_check_is_never_entered(
    tmp_path: Path, bind_mount: Callable[[Path, Path], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, wt, data = _worktree_with_mount(tmp_path, bind_mount)
    # As if the mount came after the removal's check: the deletion walk itself must stop.
    monkeypatch.setattr(removal_module, "mount_points_inside", lambda folder: [])
    result = remove(repo, str(wt))
    assert (data / "dataset.csv").read_text() == "years of work\n"
    assert not result.removed or result.problems
    assert any("build/data" in p for p in result.problems), result


def test_land_while_another_git_holds_the_base_index_lock_moves_nothing(tmp_path: Path) -> None:
    # Safe before too (read-tree's dry run took the lock first); kept for the fast-forward
    # that replaced it: the branch must not move when the worktree cannot follow.
    repo, wt = _branch_with_env(tmp_path, diverge=False)
    (repo / ".git" / "index.lock").touch()
    old = commit_info(repo, git(repo, "rev-parse", "main"))
    new = commit_info(repo, git(wt, "rev-parse", "HEAD"))
    assert old is not None and new is not None
    with pytest.raises(Refused, match=r"index\.lock"):
        land_module._move_base(repo / ".git", repo, "main", old, new)
    assert git(repo, "rev-parse", "main") == old.oid
    (repo / ".git" / "index.lock").unlink()
    assert git(repo, "status", "--porcelain") == ""


def test_merge_refuses_over_an_assume_unchanged_local_edit(tmp_path: Path) -> None:
    # `git update-index --assume-unchanged` keeps a local config edit out of git's status.
    # git 2.39's merge then stops ("your local changes would be overwritten") and, undoing
    # its failed strategy, writes HEAD's version over the edit: gone, though nothing merged.
    repo, _ = _branch_changing_a(tmp_path, diverge=True)
    git(repo, "update-index", "--assume-unchanged", "a.txt")
    (repo / "a.txt").write_text("my local setting\n")
    assert git(repo, "status", "--porcelain") == ""
    proc = run_wtls(repo, "merge", "feat")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "assume-unchanged" in proc.stderr
    assert (repo / "a.txt").read_text() == "my local setting\n"


def test_a_merge_a_hook_stopped_is_left_for_the_person_to_commit(tmp_path: Path) -> None:
    # Not an empty merge: git merged and staged it, only the pre-merge-commit hook said no.
    repo, _ = _feature_commit(tmp_path)
    hook = repo / ".git" / "hooks" / "pre-merge-commit"
    hook.write_text("#!/bin/sh\nexit 1\n")
    hook.chmod(0o755)
    result = merge_back(repo, "feat")
    assert not result.merged
    assert (repo / ".git" / "MERGE_HEAD").exists()
    assert (repo / "b.txt").read_text() == "b\n"
    assert "b.txt" in git(repo, "diff", "--cached", "--name-only")


# A process whose first thread ends (pthread_exit) while another thread goes on writing: the
# first shows as a zombie without cwd or files, the live thread has them.
_LEADER_EXITS = """
import ctypes, threading, time
def write():
    for i in range(3000):
        with open(f"build/note{i}.txt", "w") as f:
            f.write("precious\\n")
        time.sleep(0.1)
threading.Thread(target=write).start()
ctypes.CDLL(None).pthread_exit(None)
"""


@pytest.fixture
def leader_exited(tmp_path: Path) -> Iterator[Callable[[Path], int]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(cwd: Path) -> int:
        p = subprocess.Popen([sys.executable, "-c", _LEADER_EXITS], cwd=cwd)
        started.append(p)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            stat = Path(f"/proc/{p.pid}/stat").read_text()
            threads = os.listdir(f"/proc/{p.pid}/task")
            if stat.rpartition(")")[2].split()[0] == "Z" and len(threads) > 1:
                return p.pid
            time.sleep(0.02)
        pytest.skip("the first thread did not end alone here")

    yield start
    for p in started:
        p.kill()
        p.wait(timeout=10)


@pytest.mark.skipif(not processes._has_proc(), reason="needs Linux /proc")
def test_a_process_whose_first_thread_ended_still_blocks_a_removal(
    tmp_path: Path, leader_exited: Callable[[Path], int]
) -> None:
    # Its zombie first thread has no cwd: the scan counted it as "another user's" and the
    # removal went on; the live thread's cwd was then a deleted folder.
    repo = make_repo(tmp_path, files={"a.txt": "a\n", ".gitignore": "build/\n"})
    wt = add_worktree(repo, tmp_path / "wt-feat", "feat")
    (wt / "build").mkdir()
    pid = leader_exited(wt)
    proc = run_wtls(repo, "remove", "--force", str(wt))  # its own process: the writer is no child
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"pid {pid}" in proc.stderr and "still use" in proc.stderr
    assert wt.is_dir()


@pytest.mark.skipif(not processes._has_proc(), reason="needs Linux /proc")
def test_stopping_a_process_whose_first_thread_ended_ends_it(
    tmp_path: Path, leader_exited: Callable[[Path], int]
) -> None:
    (tmp_path / "build").mkdir()
    pid = leader_exited(tmp_path)
    start = processes._proc_start(pid)
    assert start is not None
    use = ProcessUse(pid=pid, command="python", reason=CWD, path=tmp_path)
    assert processes.stop([use], {pid: start}, grace=5.0) == {}
    assert not processes._threads_left(pid)


def test_discard_never_writes_through_a_folder_now_a_link(tmp_path: Path) -> None:
    # The branch deleted src/a.txt; src is now a link to a folder outside the worktree.
    # Refused before too (the path check); a guard for discard's own writing, which checks
    # the folders again right before it writes.
    repo = make_repo(tmp_path, files={"src/a.txt": "base\n"})
    wt = add_worktree(repo, tmp_path / "wt-feat", "feat")
    git(wt, "rm", "-q", "src/a.txt")
    commit_all(wt, "drop a")
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, wt / "src")
    with pytest.raises(Refused, match="symbolic link"):
        review_actions.discard_in_worktree(str(wt), "src/a.txt", cwd=repo)
    assert list(outside.iterdir()) == []
