"""Hostile repositories: swapped trust prompts, symlinks, /dev/zero, FIFOs and escape codes.

Every test drives real git and, where the defect is in what a person sees or in a crash, the
real ``wtls`` CLI (on a pseudo-terminal for the trust prompt, under a memory limit where the old
code read ``/dev/zero`` until it ran out of memory).
"""

from __future__ import annotations

import json
import os
import resource
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.core.lifecycle_util import repo_snapshot, run_wtls
from tests.gitutil import add_worktree, commit_all, git
from wtls.errors import Refused
from wtls.lifecycle import copy_ignored_files, read_ports, read_spawn_info, spawn
from wtls.safety import printable

ESC = "\x1b"
_ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def _limit_memory() -> None:
    # The old code read /dev/zero until MemoryError: keep that from eating the machine.
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def run_limited(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real CLI with at most 1 GiB of address space and a bounded run time."""
    return subprocess.run(
        [sys.executable, "-m", "wtls", *args],
        cwd=str(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=_ENV,
        preexec_fn=_limit_memory,
    )


def _read_until(fd: int, wanted: str, seen: list[str], deadline: float) -> bool:
    """Read the terminal into ``seen`` until ``wanted`` shows up, EOF, or the deadline."""
    while wanted not in "".join(seen):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return False
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            return False
        if not chunk:
            return False
        seen.append(chunk.decode("utf-8", "replace"))
    return True


def spawn_on_terminal(
    cwd: Path, args: list[str], wait_for: str, before_answer: Callable[[], None], answer: str
) -> tuple[int, str, str]:
    """``wtls spawn`` with a pseudo-terminal as stdin and stderr (stdout stays a pipe).

    Waits until ``wait_for`` is on the terminal, calls ``before_answer``, types ``answer``.
    Returns ``(exit status, stdout, terminal text)``.
    """
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wtls", "spawn", *args],
        cwd=str(cwd),
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=_ENV,
    )
    os.close(slave)
    seen: list[str] = []
    try:
        shown = _read_until(master, wait_for, seen, time.monotonic() + 60)
        assert shown, f"{wait_for!r} never appeared on the terminal: {''.join(seen)!r}"
        before_answer()
        os.write(master, answer.encode())
        _read_until(master, "\0never\0", seen, time.monotonic() + 60)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return proc.returncode, out.decode(), "".join(seen)


def _toml_setup(*commands: list[str]) -> str:
    return "setup = [" + ", ".join(json.dumps(c) for c in commands) + "]\n"


# ----------------------------------------------------------------------------- 10: trust prompt
def test_swapped_setup_after_the_prompt_runs_nothing(repo: Path, tmp_path: Path) -> None:
    approved = [sys.executable, "-c", "open('approved.txt', 'w').write('ok')"]
    evil = [sys.executable, "-c", "open('pwned.txt', 'w').write('evil')"]
    (repo / ".wtls.toml").write_text(_toml_setup(approved))

    def swap() -> None:
        (repo / ".wtls.toml").write_text(_toml_setup(evil))

    code, out, terminal = spawn_on_terminal(repo, ["swap", "--json"], "approved.txt", swap, "y\n")
    new = tmp_path / "tasks-app-swap"
    assert new.is_dir(), terminal
    assert not (new / "pwned.txt").exists(), "a command nobody approved ran"
    assert not (new / "approved.txt").exists()
    result = json.loads(out)
    assert result["setup"]["ran"] is False
    assert "changed" in result["setup"]["skipped"]
    assert "pwned.txt" in result["setup"]["skipped"]
    assert code == 2
    assert "changed after they were approved, so none was run" in terminal


def test_approved_setup_runs_and_prompt_stays_off_stdout(repo: Path, tmp_path: Path) -> None:
    approved = [sys.executable, "-c", "open('approved.txt', 'w').write('ok')"]
    (repo / ".wtls.toml").write_text(_toml_setup(approved))
    code, out, terminal = spawn_on_terminal(
        repo, ["ok", "--json"], "Run them? [y/N]", lambda: None, "y\n"
    )
    assert code == 0, terminal
    result = json.loads(out)  # the question went to the terminal, not into the JSON
    assert result["setup"]["ran"] is True and result["setup"]["ok"] is True
    assert (tmp_path / "tasks-app-ok" / "approved.txt").read_text() == "ok"


def test_trust_prompt_shows_escape_codes_escaped(repo: Path) -> None:
    sneaky = ["true", f"{ESC}[2K\rnpm ci"]
    (repo / ".wtls.toml").write_text(_toml_setup(sneaky))
    code, _out, terminal = spawn_on_terminal(
        repo, ["sneaky", "--json"], "Run them? [y/N]", lambda: None, "n\n"
    )
    assert code == 0
    assert ESC not in terminal
    assert "\\x1b[2K\\rnpm ci" in terminal


def test_core_spawn_refuses_setup_other_than_the_approved(repo: Path, tmp_path: Path) -> None:
    (repo / ".wtls.toml").write_text('setup = ["touch pwned"]\n')
    result = spawn(repo, "core", trusted=True, approved_setup=[["touch", "approved"]])
    assert not (result.path / "pwned").exists() and not (result.path / "approved").exists()
    assert result.setup.ran is False
    assert result.setup.skipped is not None and "touch pwned" in result.setup.skipped
    same = spawn(repo, "same", trusted=True, approved_setup=[["touch", "pwned"]])
    assert same.setup.ran and (same.path / "pwned").exists()


# ----------------------------------------------------------------------------- 11: copy
def _repo_with_ignored_cfg(repo: Path) -> None:
    (repo / "cfg").mkdir()
    (repo / "cfg" / "README").write_text("config lives here\n")
    (repo / ".gitignore").write_text("tasks.json\ncfg/prod.env\n.env\nlocal.env\n")
    commit_all(repo, "cfg")
    (repo / "cfg" / "prod.env").write_text("SECRET=1\n")


def test_copy_never_writes_through_a_committed_symlink(repo: Path, tmp_path: Path) -> None:
    _repo_with_ignored_cfg(repo)
    shared = tmp_path / "shared"
    shared.mkdir()
    # Base branch "evil": cfg is a symlink to a folder outside every worktree.
    os.rename(repo / "cfg" / "prod.env", tmp_path / "prod.env")
    git(repo, "switch", "-q", "-c", "evil")
    git(repo, "rm", "-q", "-r", "cfg")
    os.symlink(shared, repo / "cfg")
    commit_all(repo, "cfg is a link")
    git(repo, "switch", "-q", "main")
    assert (repo / "cfg").is_dir() and not (repo / "cfg").is_symlink()
    os.rename(tmp_path / "prod.env", repo / "cfg" / "prod.env")
    (repo / ".wtls.toml").write_text('copy = ["cfg/prod.env"]\n')
    result = spawn(repo, "through", base="evil")
    assert list(shared.iterdir()) == [], "wtls wrote through the committed link"
    assert "cfg/prod.env" not in result.copied
    assert any("cfg/prod.env" in p and "symbolic link" in p for p in result.problems), (
        result.problems
    )


def test_copy_skips_symlinks_leaving_the_worktree(repo: Path, tmp_path: Path) -> None:
    _repo_with_ignored_cfg(repo)
    secret = tmp_path / "secret.env"
    secret.write_text("TOKEN=x\n")
    os.symlink(secret, repo / ".env")
    os.symlink("cfg/prod.env", repo / "local.env")
    dest = tmp_path / "dest"
    dest.mkdir()
    done = copy_ignored_files(repo, dest, [".env", "local.env", "cfg/prod.env"])
    copied, problems = done.files, done.problems
    assert sorted(copied) == ["cfg/prod.env", "local.env"]
    assert os.readlink(dest / "local.env") == "cfg/prod.env"
    assert not os.path.lexists(dest / ".env")
    assert any(".env" in p and "outside" in p for p in problems), problems


@pytest.mark.parametrize(
    ("file", "text"),
    [
        (".wtls.toml", 'copy = ["../outside.env"]\n'),
        (".wtls.toml", 'copy = ["cfg/../../outside.env"]\n'),
        (".worktreeinclude", "../outside.env\n"),
    ],
)
def test_copy_patterns_leaving_the_worktree_are_refused(
    repo: Path, tmp_path: Path, file: str, text: str
) -> None:
    (repo / file).write_text(text)
    before = repo_snapshot(repo)
    with pytest.raises(Refused, match=r"outside the worktree"):
        spawn(repo, "escape")
    assert repo_snapshot(repo) == before


# ----------------------------------------------------------------------------- 12: bounded reads
@pytest.mark.parametrize("file", [".wtls.toml", ".worktreeinclude"])
def test_committed_config_symlink_to_dev_zero_is_refused(repo: Path, file: str) -> None:
    os.symlink("/dev/zero", repo / file)
    commit_all(repo, "hostile config")
    before = repo_snapshot(repo)
    proc = run_limited(repo, "spawn", "zero")
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("wtls: refused: ")
    assert f"{file} is a symbolic link to /dev/zero" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert repo_snapshot(repo) == before


@pytest.mark.parametrize("file", [".wtls.toml", ".worktreeinclude"])
def test_config_fifo_is_refused_without_blocking(repo: Path, file: str) -> None:
    os.mkfifo(repo / file)
    proc = run_limited(repo, "spawn", "fifo", timeout=30)
    assert proc.returncode == 1, proc.stderr
    assert "FIFO" in proc.stderr and "not a regular file" in proc.stderr


def test_config_links_and_sizes(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.toml"
    outside.write_text('setup = ["touch pwned"]\n')
    os.symlink(outside, repo / ".wtls.toml")
    with pytest.raises(Refused, match=r"symbolic link to .*outside"):
        spawn(repo, "linked", trusted=True)
    os.unlink(repo / ".wtls.toml")
    (repo / ".wtls.toml").mkdir()
    with pytest.raises(Refused, match=r"is a folder, not a regular file"):
        spawn(repo, "folder")
    (repo / ".wtls.toml").rmdir()
    (repo / ".wtls.toml").write_text("# padding\n" * 200_000)
    with pytest.raises(Refused, match=r"larger than 1 MiB"):
        spawn(repo, "huge")
    # A link inside the worktree is fine.
    (repo / ".wtls.toml").unlink()
    (repo / "recipe.toml").write_text('ports = ["PORT"]\n')
    os.symlink("recipe.toml", repo / ".wtls.toml")
    assert set(spawn(repo, "inside").ports) == {"PORT"}


@pytest.mark.parametrize("kind", ["dev-zero", "fifo"])
def test_list_survives_hostile_wtls_files(repo: Path, tmp_path: Path, kind: str) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature/x")
    (wt / ".wtls").mkdir()
    for name in ("ports.env", "spawn.json"):
        if kind == "fifo":
            os.mkfifo(wt / ".wtls" / name)
        else:
            os.symlink("/dev/zero", wt / ".wtls" / name)
    proc = run_limited(repo, "list", "--no-size", timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert str(wt) in proc.stdout
    assert read_ports(wt) == {} and read_spawn_info(wt) is None


def test_prompt_file_dev_zero_is_an_error_not_a_crash(repo: Path, tmp_path: Path) -> None:
    before = repo_snapshot(repo)
    proc = run_limited(repo, "spawn", "zero", "--prompt-file", "/dev/zero")
    assert proc.returncode == 2, proc.stderr
    assert "cannot read the prompt file /dev/zero" in proc.stderr
    assert "larger than 1 MiB" in proc.stderr and "Traceback" not in proc.stderr
    assert repo_snapshot(repo) == before


def test_prompt_file_may_be_a_pipe(repo: Path, tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"do the task\n")
    os.close(write_fd)
    proc = subprocess.run(
        [sys.executable, "-m", "wtls", "spawn", "piped", "--prompt-file", f"/dev/fd/{read_fd}"],
        cwd=str(repo),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=_ENV,
        pass_fds=(read_fd,),
    )
    os.close(read_fd)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "tasks-app-piped" / ".wtls" / "task.md").read_text() == "do the task\n"


def test_committed_wtls_folder_link_is_not_written_through(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, repo / ".wtls")
    commit_all(repo, "hostile .wtls")
    result = spawn(repo, "linked", prompt="task")
    assert list(outside.iterdir()) == [], "wtls wrote through the committed .wtls link"
    assert result.prompt_file is None
    assert any(".wtls" in p and "symbolic link" in p for p in result.problems), result.problems


def test_committed_wtls_file_links_are_not_written_through(repo: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    (repo / ".wtls").mkdir()
    for name in ("task.md", "spawn.json", "ports.env", ".gitignore"):
        os.symlink(victim, repo / ".wtls" / name)
    git(repo, "add", "-f", ".wtls")
    git(repo, "commit", "-q", "-m", "hostile .wtls files")
    (repo / ".wtls.toml").write_text('ports = ["PORT"]\n')
    result = spawn(repo, "filelinks", prompt="task")
    assert not victim.exists(), "wtls wrote through a committed link in .wtls"
    assert result.problems


# ----------------------------------------------------------------------------- 14a: escapes
def test_lock_reason_escape_codes_are_shown_escaped(repo: Path, tmp_path: Path) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature/x")
    reason = f"{ESC}[2J{ESC}[31mgotcha\rbell\x07"
    git(repo, "worktree", "lock", "--reason", reason, str(wt))
    listing = run_wtls(repo, "list", "--no-size")
    assert listing.returncode == 0, listing.stderr
    assert ESC not in listing.stdout and "\x07" not in listing.stdout
    assert "\\x1b[2J\\x1b[31mgotcha\\rbell\\x07" in listing.stdout
    status = run_wtls(wt, "status")
    assert ESC not in status.stdout + status.stderr and "gotcha" in status.stdout
    listed = json.loads(run_wtls(repo, "list", "--json", "--no-size").stdout)
    assert reason in [w["lockReason"] for w in listed["worktrees"]]
    moved = run_wtls(repo, "move", str(wt), str(tmp_path / "elsewhere"))
    assert moved.returncode == 1 and ESC not in moved.stderr and "gotcha" in moved.stderr
    git(repo, "worktree", "unlock", str(wt))
    one_line = f"{ESC}[31mgotcha\x07"  # wtls lock refuses a reason with CR or LF
    locked = run_wtls(repo, "lock", str(wt), "--reason", one_line)
    assert locked.returncode == 0, locked.stderr
    assert ESC not in locked.stdout and "(\\x1b[31mgotcha\\x07)" in locked.stdout
    assert run_wtls(repo, "unlock", str(wt)).returncode == 0
    again = run_wtls(repo, "lock", str(wt), "--reason", one_line, "--json")
    assert json.loads(again.stdout)["reason"] == one_line


def test_printable() -> None:
    assert printable("a\x1b[31mb\n\tc\u202e") == "a\\x1b[31mb\n\tc\\u202e"
    assert printable("x\ny\r", keep_newlines=False) == "x\\ny\\r"
