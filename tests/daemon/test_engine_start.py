"""Starting, finding, replacing and ending the per-repository engine (real processes)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.daemon.support import (
    alive,
    engine_pids,
    process_age,
    run_wtls,
    wait_until,
)
from wtls import __version__
from wtls.daemon.client import EngineError, NoEngine, connect, engine_status, stop_engine
from wtls.daemon.paths import engine_files

# One client in its own process: connect (starting the engine if needed), print the reply.
_CLIENT = (
    "import json, sys\n"
    "from wtls.daemon.client import connect\n"
    "sock, reply = connect(sys.argv[1], 'status')\n"
    "print(json.dumps(reply))\n"
)


def test_many_sessions_starting_at_once_start_exactly_one_engine(runtime: Path, repo: Path) -> None:
    common = repo / ".git"
    clients = [
        subprocess.Popen(
            [sys.executable, "-c", _CLIENT, str(common)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    replies = []
    for proc in clients:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        replies.append(json.loads(out))
    assert len({reply["pid"] for reply in replies}) == 1
    assert engine_pids(runtime) == [replies[0]["pid"]]


def test_a_stale_socket_left_by_a_killed_engine_is_replaced_by_a_new_engine(
    runtime: Path, repo: Path
) -> None:
    common = repo / ".git"
    sock, first = connect(common, "status")
    sock.close()
    os.kill(first["pid"], signal.SIGKILL)
    wait_until(lambda: not alive(first["pid"]), "the engine to die")
    assert engine_files(common).socket.exists()  # left behind

    sock, second = connect(common, "status")
    sock.close()
    assert second["ok"] is True
    assert second["pid"] != first["pid"]
    assert engine_pids(runtime) == [second["pid"]]


@pytest.mark.parametrize(
    ("variable", "value"),
    [("WTLS_TEST_ENGINE_VERSION", "0.0.1"), ("WTLS_TEST_ENGINE_BUILD", "another-build")],
    ids=["older-version", "other-build"],
)
def test_an_engine_running_older_or_edited_code_is_replaced(
    runtime: Path, repo: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    common = repo / ".git"
    monkeypatch.setenv(variable, value)  # the engine started now reports it
    sock, old = connect(common, "status")
    sock.close()
    assert value in (old["wtls"], old["build"])
    monkeypatch.delenv(variable)

    sock, new = connect(common, "status")
    sock.close()
    assert new["pid"] != old["pid"]
    assert new["wtls"] == __version__
    assert value not in (new["wtls"], new["build"])
    wait_until(lambda: not alive(old["pid"]), "the old engine to exit")
    assert engine_pids(runtime) == [new["pid"]]


def test_an_engine_newer_than_the_session_is_used_as_it_is(
    runtime: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    common = repo / ".git"
    monkeypatch.setenv("WTLS_TEST_ENGINE_VERSION", "999.0")
    sock, newer = connect(common, "status")
    sock.close()
    monkeypatch.delenv("WTLS_TEST_ENGINE_VERSION")

    sock, again = connect(common, "lsp")
    sock.close()
    assert again["pid"] == newer["pid"]
    assert again["wtls"] == "999.0"


def test_the_engine_exits_after_its_idle_timeout_and_removes_its_socket(
    runtime: Path, repo: Path
) -> None:
    common = repo / ".git"
    sock, reply = connect(common, "lsp", idle_timeout=1)
    files = engine_files(common)
    assert files.socket.exists()
    sock.close()  # the last client leaves
    wait_until(lambda: not alive(reply["pid"]), "the idle engine to exit")
    assert not files.socket.exists()
    assert not files.info.exists()


def test_an_engine_with_a_client_does_not_exit_when_idle_time_passes(
    runtime: Path, repo: Path
) -> None:
    common = repo / ".git"
    sock, reply = connect(common, "lsp", idle_timeout=1)
    # Three idle periods pass without any other connection (which would count as activity).
    wait_until(lambda: process_age(reply["pid"]) > 3, "three idle periods")
    status = engine_status(common)
    assert status is not None and status["pid"] == reply["pid"] and status["clients"] == 1
    sock.close()
    wait_until(lambda: not alive(reply["pid"]), "the engine to exit once alone")


def test_start_false_never_starts_an_engine(runtime: Path, repo: Path) -> None:
    with pytest.raises(NoEngine):
        connect(repo / ".git", "status", start=False)
    assert engine_status(repo / ".git") is None
    assert stop_engine(repo / ".git") is None
    assert engine_pids(runtime) == []


def test_daemon_status_json_with_no_engine(runtime: Path, repo: Path) -> None:
    result = run_wtls("daemon", "status", "--json", "-C", str(repo))
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["running"] is False
    assert status["repository"] == str((repo / ".git").resolve())
    assert engine_pids(runtime) == []  # status never starts one


def test_daemon_status_json_counts_the_connected_sessions(runtime: Path, repo: Path) -> None:
    common = repo / ".git"
    sockets = []
    for expected in (0, 1, 2):
        if expected:
            sock, _ = connect(common, "lsp")
            sockets.append(sock)
        else:
            sock, _ = connect(common, "status")
            sock.close()
        result = run_wtls("daemon", "status", "--json", "-C", str(repo))
        assert result.returncode == 0, result.stderr
        status = json.loads(result.stdout)
        assert status["running"] is True
        assert status["clients"] == expected
        assert status["pid"] == engine_pids(runtime)[0]
        assert status["repository"] == str(common.resolve())
        assert status["socket"] == str(engine_files(common).socket)
        assert status["version"] == __version__
        assert status["idleTimeout"] == 60
        assert status["uptime"] >= 0
    for sock in sockets:
        sock.close()
    human = run_wtls("daemon", "status", "-C", str(repo))
    assert human.returncode == 0
    assert "running, pid" in human.stdout


def test_daemon_stop_stops_the_engine_and_says_so(runtime: Path, repo: Path) -> None:
    common = repo / ".git"
    sock, reply = connect(common, "status")
    sock.close()
    result = run_wtls("daemon", "stop", "-C", str(repo))
    assert result.returncode == 0, result.stderr
    assert f"stopped the wtls engine (pid {reply['pid']})" in result.stdout
    wait_until(lambda: not alive(reply["pid"]), "the engine to exit")
    assert not engine_files(common).socket.exists()
    again = run_wtls("daemon", "stop", "--json", "-C", str(repo))
    assert again.returncode == 0
    assert json.loads(again.stdout)["stopped"] is False


def test_daemon_status_outside_a_repository_is_a_clear_error(runtime: Path, tmp_path: Path) -> None:
    result = run_wtls("daemon", "status", "-C", str(tmp_path))
    assert result.returncode == 2
    assert "not inside a git repository" in result.stderr
    assert "Traceback" not in result.stderr


def test_engine_is_not_in_the_command_list_but_has_its_own_help() -> None:
    listing = run_wtls("--help").stdout
    assert "daemon" in listing
    assert "engine " not in listing
    own = run_wtls("engine", "--help")
    assert own.returncode == 0
    assert "--idle-timeout" in own.stdout


def test_a_runtime_folder_path_too_long_for_a_unix_socket_still_works(
    runtime: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = runtime / ("d" * 60) / ("e" * 60)
    deep.parent.mkdir(mode=0o700)
    monkeypatch.setenv("WTLS_RUNTIME_DIR", str(deep))
    sock, reply = connect(repo / ".git", "status")
    sock.close()
    assert len(str(engine_files(repo / ".git").socket)) > 108
    status = engine_status(repo / ".git")
    assert status is not None and status["pid"] == reply["pid"]


def test_a_second_engine_for_the_same_repository_refuses_to_start(
    runtime: Path, repo: Path
) -> None:
    common = repo / ".git"
    sock, reply = connect(common, "status")
    sock.close()
    second = run_wtls("engine", "--repository", str(common.resolve()))
    assert second.returncode == 1
    assert "another wtls engine already serves" in second.stderr
    status = engine_status(common)
    assert status is not None and status["pid"] == reply["pid"]


def test_an_engine_for_a_folder_that_does_not_exist_refuses_to_start(
    runtime: Path, tmp_path: Path
) -> None:
    result = run_wtls("engine", "--repository", str(tmp_path / "gone" / ".git"))
    assert result.returncode == 2
    assert "must be an existing common git dir" in result.stderr
    assert engine_pids(runtime) == []


def test_a_live_socket_that_closes_without_answering_is_never_taken_for_stale(
    runtime: Path, repo: Path
) -> None:
    """Something listens but hangs up without a word (an engine failing on each connection):
    a clear error, and its socket is not removed under it nor a second engine started."""
    common = repo / ".git"
    socket_path = engine_files(common).socket
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(socket_path))
    listener.listen(8)
    stop = threading.Event()

    def hang_up() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.close()

    thread = threading.Thread(target=hang_up)
    thread.start()
    try:
        with pytest.raises(EngineError, match="closed the connection without answering"):
            connect(common, "lsp")
        assert socket_path.exists()
        assert engine_pids(runtime) == []
    finally:
        stop.set()
        thread.join()
        listener.close()


def test_a_relative_runtime_folder_is_the_same_folder_for_the_engine(
    runtime: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(runtime)
    monkeypatch.setenv("WTLS_RUNTIME_DIR", "relative")
    sock, reply = connect(repo / ".git", "status")
    sock.close()
    assert reply["socket"] == str(runtime / "relative" / f"{engine_files(repo / '.git').key}.sock")
