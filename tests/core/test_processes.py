"""Processes in a worktree: found, listed, block a removal, ended by --kill (real processes)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.lifecycle_util import repo_snapshot, run_wtls
from tests.gitutil import add_worktree, commit_all, git
from wtls.processes import CWD, EXECUTABLE, OPEN_FILE, parse_lsof, scan

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/cwd").exists(), reason="these tests read /proc (Linux)"
)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; every one is killed and reaped afterwards."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=30)


def start(
    procs: list[subprocess.Popen[str]], argv: list[str], cwd: Path, *, ready: bool = False
) -> subprocess.Popen[str]:
    """Start ``argv`` in ``cwd``; with ``ready``, wait for its first line of output."""
    p = subprocess.Popen(
        argv,
        cwd=str(cwd),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    procs.append(p)
    if ready:
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line, "the process ended before it was ready"
    return p


HOLD_OPEN = (
    "import sys, time\nf = open(sys.argv[1], 'a')\nprint('ready', flush=True)\ntime.sleep(300)\n"
)
#: Writes a file into its folder when asked to stop: what an editor saving on exit does.
SAVE_ON_TERM = (
    "import signal, sys, time\n"
    "def bye(*_):\n"
    "    open('saved-on-exit.txt', 'w').write('unsaved work\\n')\n"
    "    sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, bye)\n"
    "print('ready', flush=True)\n"
    "time.sleep(300)\n"
)
IGNORE_TERM = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(300)\n"
)


def status_processes(wt: Path) -> list[dict[str, object]]:
    """``processes`` of ``wtls status --json`` run in ``wt`` (another process than this one)."""
    proc = run_wtls(wt, "status", "--json")
    assert proc.returncode == 0, proc.stderr
    found: list[dict[str, object]] = json.loads(proc.stdout)["processes"]
    return found


def worktree(repo: Path, tmp_path: Path, name: str = "wt") -> Path:
    wt = add_worktree(repo, tmp_path / name, f"feature/{name}")
    (wt / "f.txt").write_text("f\n")
    commit_all(wt, "f")
    return wt


def test_remove_refuses_while_a_process_runs_inside_and_kill_ends_it(
    repo: Path, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    wt = worktree(repo, tmp_path)
    sleeper = start(procs, ["sleep", "300"], wt)
    before = repo_snapshot(repo)
    proc = run_wtls(repo, "remove", "feature/wt")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("wtls: refused: 1 process still uses")
    assert f"pid {sleeper.pid} (sleep 300): cwd {wt}" in proc.stderr
    assert "--kill" in proc.stderr
    assert repo_snapshot(repo) == before
    assert sleeper.poll() is None

    dry = run_wtls(repo, "remove", "feature/wt", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    listed = json.loads(dry.stdout)["processes"]
    assert listed == [{"pid": sleeper.pid, "command": "sleep 300", "reason": CWD, "path": str(wt)}]
    human = run_wtls(repo, "remove", "feature/wt", "--dry-run")
    assert "processes using it (--kill ends them):" in human.stdout
    assert f"pid {sleeper.pid} (sleep 300)" in human.stdout
    assert repo_snapshot(repo) == before

    status = run_wtls(wt, "status", "--json")
    assert json.loads(status.stdout)["processes"] == listed

    killed = run_wtls(repo, "remove", "feature/wt", "--kill", "--json")
    assert killed.returncode == 0, killed.stderr
    result = json.loads(killed.stdout)
    assert result["removed"] is True
    assert [p["pid"] for p in result["processes"]] == [sleeper.pid]
    assert f"ended process {sleeper.pid}" in result["message"]
    assert sleeper.wait(timeout=10) is not None
    assert not wt.exists()


def test_a_file_held_open_inside_blocks_the_removal(
    repo: Path, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    wt = worktree(repo, tmp_path)
    holder = start(
        procs, [sys.executable, "-c", HOLD_OPEN, str(wt / "f.txt")], tmp_path, ready=True
    )
    found = status_processes(wt)
    assert [(u["pid"], u["reason"], u["path"]) for u in found] == [
        (holder.pid, OPEN_FILE, str(wt / "f.txt"))
    ]
    before = repo_snapshot(repo)
    proc = run_wtls(repo, "remove", str(wt))
    assert proc.returncode == 1
    assert f"open file {wt / 'f.txt'}" in proc.stderr
    assert repo_snapshot(repo) == before


def test_an_executable_inside_is_a_tie(
    repo: Path, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    wt = worktree(repo, tmp_path)
    sleep = subprocess.run(["which", "sleep"], capture_output=True, text=True).stdout.strip()
    copy = wt / "bin-sleep"
    copy.write_bytes(Path(sleep).read_bytes())
    copy.chmod(0o755)
    runner = start(procs, [str(copy), "300"], tmp_path)
    found = status_processes(wt)
    assert [(u["pid"], u["reason"]) for u in found] == [(runner.pid, EXECUTABLE)]


HTTP_SERVER = (
    "import http.server as h\n"
    "s = h.ThreadingHTTPServer(('127.0.0.1', 0), h.SimpleHTTPRequestHandler)\n"
    "print(s.server_address[1], flush=True)\n"
    "s.serve_forever()\n"
)


def test_http_server_on_a_port_blocks_merge_remove_until_kill(
    repo: Path, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    wt = worktree(repo, tmp_path)
    server = start(procs, [sys.executable, "-u", "-c", HTTP_SERVER], wt)
    assert server.stdout is not None
    port = int(server.stdout.readline())
    with socket.create_connection(("127.0.0.1", port), timeout=10):
        pass  # it really serves
    before = repo_snapshot(repo)
    proc = run_wtls(repo, "merge", "feature/wt", "--remove")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert f"pid {server.pid} (" in proc.stderr and "http.server" in proc.stderr
    assert repo_snapshot(repo) == before  # refused before merging
    done = run_wtls(repo, "merge", "feature/wt", "--remove", "--kill")
    assert done.returncode == 0, done.stderr
    assert server.wait(timeout=10) is not None
    assert not wt.exists()
    assert git(repo, "log", "-1", "--format=%s") == "f"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()


def test_kill_uses_sigkill_when_sigterm_is_ignored(
    repo: Path, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    wt = worktree(repo, tmp_path)
    stubborn = start(procs, [sys.executable, "-c", IGNORE_TERM], wt, ready=True)
    proc = run_wtls(repo, "remove", "feature/wt", "--kill")
    assert proc.returncode == 0, proc.stderr
    assert stubborn.wait(timeout=10) == -9
    assert not wt.exists()


def test_what_a_process_saves_when_ended_is_not_lost(
    repo: Path, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    """--kill ends first, then reads the folder: a file saved on SIGTERM makes it refuse."""
    wt = worktree(repo, tmp_path)
    saver = start(procs, [sys.executable, "-c", SAVE_ON_TERM], wt, ready=True)
    proc = run_wtls(repo, "remove", "feature/wt", "--kill")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert f"ended process {saver.pid}, then:" in proc.stderr
    assert "saved-on-exit.txt" in proc.stderr
    assert (wt / "saved-on-exit.txt").read_text() == "unsaved work\n"
    assert wt.is_dir()


def test_the_shell_wtls_runs_from_does_not_block(repo: Path, tmp_path: Path) -> None:
    """`cd wt && wtls remove .`: the shell is wtls's parent; it is told to cd out."""
    wt = worktree(repo, tmp_path)
    proc = subprocess.run(
        [
            "sh",
            "-c",
            'cd "$1" && "$2" -m wtls remove . ; echo "shell exit $?"',
            "sh",
            wt,
            sys.executable,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert "shell exit 0" in proc.stdout, proc.stderr
    assert "left in a deleted folder: `cd` out of it" in proc.stdout
    assert not wt.exists()


def test_a_nested_worktrees_process_is_its_own(
    repo: Path, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    outer = worktree(repo, tmp_path, "outer")
    inner = add_worktree(repo, outer / "inner", "feature/inner")
    sleeper = start(procs, ["sleep", "300"], inner)
    status = run_wtls(outer, "status", "--json")
    assert json.loads(status.stdout)["processes"] == []
    status = run_wtls(inner, "status", "--json")
    assert [p["pid"] for p in json.loads(status.stdout)["processes"]] == [sleeper.pid]


def test_wtls_itself_and_its_children_are_never_counted(
    repo: Path, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    """A server's own git commands run inside worktrees: they never block its removals."""
    wt = worktree(repo, tmp_path)
    child = start(procs, ["sleep", "300"], wt)  # a child of this process, as git is of a server
    assert scan([wt]).of(wt) == ()
    assert [p["pid"] for p in status_processes(wt)] == [child.pid]  # not the CLI's child


def test_parse_lsof() -> None:
    text = "\n".join(
        [
            "p101",
            "cnode",
            "fcwd",
            "n/w/wt",
            "ftxt",
            "n/usr/bin/node",
            "f12",
            "n/w/wt/server.log",
            "p102",
            "cvim",
            "fcwd",
            "n/home",
            "f4",
            "n/w/wt/inner/a.txt",
            "p103",
            "cls",
            "ftxt",
            "n/w/wt/tool",
        ]
    )
    hits = parse_lsof(text, [Path("/w/wt"), Path("/w/wt/inner")])
    got = sorted((str(f), u.pid, u.reason, str(u.path)) for f, u in hits)
    assert got == [
        ("/w/wt", 101, CWD, "/w/wt"),
        ("/w/wt", 103, EXECUTABLE, "/w/wt/tool"),
        ("/w/wt/inner", 102, OPEN_FILE, "/w/wt/inner/a.txt"),
    ]
