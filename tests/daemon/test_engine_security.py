"""What reaches the engine's socket that should not: garbage, oversize or unknown hellos, a
peer of another uid; and a runtime folder others could use (real engine processes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.daemon.support import SocketLsp, hello_line, raw_exchange, run_wtls
from wtls.daemon.client import connect, engine_status
from wtls.daemon.hello import MAX_LINE_BYTES
from wtls.daemon.paths import RuntimeDirError, engine_files, runtime_dir


def _error_of(answer: bytes) -> str:
    line, _, rest = answer.partition(b"\n")
    assert rest == b"", f"more than one line: {answer!r}"
    reply = json.loads(line)
    assert reply["ok"] is False
    assert isinstance(reply["error"], str)
    return str(reply["error"])


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x00\xff not json at all\n", "not JSON"),
        (b"[1, 2, 3]\n", "not a JSON object"),
        (b'{"protocol": 1, "kind": "lsp"}\n', "no repository"),
        (b"x" * (MAX_LINE_BYTES + 10), "longer than"),
        (b"", None),  # connect and close at once: nothing to answer
    ],
    ids=["garbage", "array", "no-repository", "oversize", "empty"],
)
def test_a_bad_hello_gets_an_error_line_and_the_engine_serves_on(
    runtime: Path, repo: Path, data: bytes, expected: str | None
) -> None:
    common = repo / ".git"
    sock, first = connect(common, "status")
    sock.close()
    answer = raw_exchange(engine_files(common).socket, data)
    if expected is None:
        assert answer == b""
    else:
        assert expected in _error_of(answer)
    status = engine_status(common)
    assert status is not None and status["pid"] == first["pid"]


def test_a_hello_of_unknown_kind_or_for_another_repository_is_refused(
    runtime: Path, repo: Path, tmp_path: Path
) -> None:
    common = repo / ".git"
    sock, first = connect(common, "status")
    sock.close()
    socket_path = engine_files(common).socket
    unknown = raw_exchange(socket_path, hello_line("shell", common))
    assert "unknown hello kind 'shell'" in _error_of(unknown)
    other = raw_exchange(socket_path, hello_line("lsp", tmp_path))
    assert "this engine serves" in _error_of(other)
    # And a proper LSP client is served after all that.
    sock, reply = connect(common, "lsp")
    lsp = SocketLsp(sock)
    try:
        assert lsp.initialize(repo)["result"]["serverInfo"]["name"] == "wtls"
    finally:
        sock.close()
    assert reply["pid"] == first["pid"]


# Connects to the socket as another user with the system Python (no wtls import: the other
# user cannot read the test's venv) and prints what the engine answered.
_OTHER_USER_CLIENT = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
try:
    s.sendall(sys.argv[2].encode() + b"\\n")
except BrokenPipeError:
    pass  # refused before it read a word: the answer is still there to read
data = b""
while chunk := s.recv(65536):
    data += chunk
sys.stdout.write(data.decode())
"""


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another user (nobody)")
def test_a_peer_of_another_uid_is_refused(runtime: Path, repo: Path) -> None:
    python = shutil.which("python3", path="/usr/bin:/bin")
    setpriv = shutil.which("setpriv")
    if python is None or setpriv is None:
        pytest.skip("needs /usr/bin/python3 and setpriv")
    common = repo / ".git"
    sock, first = connect(common, "status")
    sock.close()
    socket_path = engine_files(common).socket
    # Open the door the folder and socket modes keep shut, so that only the peer check is left.
    os.chmod(runtime, 0o711)
    os.chmod(socket_path, 0o666)
    hello = hello_line("status", common).decode().strip()
    result = subprocess.run(
        [
            *(setpriv, "--reuid", "nobody", "--regid", "nogroup", "--clear-groups"),
            *(python, "-c", _OTHER_USER_CLIENT, str(socket_path), hello),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["ok"] is False
    assert "uid 65534" in reply["error"]
    assert "clients" not in reply  # it learnt nothing
    os.chmod(runtime, 0o700)
    status = engine_status(common)
    assert status is not None and status["pid"] == first["pid"]


@pytest.mark.parametrize("mode", [0o777, 0o733, 0o720])
def test_a_runtime_folder_others_can_write_is_refused(runtime: Path, repo: Path, mode: int) -> None:
    os.chmod(runtime, mode)
    with pytest.raises(RuntimeDirError, match="can be written by other users"):
        runtime_dir()
    result = run_wtls("daemon", "status", "-C", str(repo))
    assert result.returncode == 2
    assert "can be written by other users" in result.stderr
    assert os.stat(runtime).st_mode & 0o777 == mode  # left as it was: nothing changed


def test_a_runtime_folder_others_can_only_read_is_closed(runtime: Path) -> None:
    os.chmod(runtime, 0o755)
    assert runtime_dir() == runtime
    assert os.stat(runtime).st_mode & 0o777 == 0o700


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give the folder to another user")
def test_a_runtime_folder_of_another_user_is_refused(runtime: Path, repo: Path) -> None:
    os.chown(runtime, 65534, 65534)
    with pytest.raises(RuntimeDirError, match="belongs to uid 65534"):
        runtime_dir()
    result = run_wtls("daemon", "stop", "-C", str(repo))
    assert result.returncode == 2
    assert "belongs to uid 65534" in result.stderr


def test_a_symlink_as_runtime_folder_is_refused(
    runtime: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = runtime / "link"
    link.symlink_to(tmp_path)
    monkeypatch.setenv("WTLS_RUNTIME_DIR", str(link))
    with pytest.raises(RuntimeDirError, match="not a folder"):
        runtime_dir()


def test_a_new_runtime_folder_and_socket_are_private(
    runtime: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = runtime / "fresh"
    monkeypatch.setenv("WTLS_RUNTIME_DIR", str(fresh))
    old_umask = os.umask(0)  # the most permissive umask must not leak into the modes
    try:
        sock, _ = connect(repo / ".git", "status")
        sock.close()
    finally:
        os.umask(old_umask)
    assert os.stat(fresh).st_mode & 0o777 == 0o700
    assert os.stat(engine_files(repo / ".git").socket).st_mode & 0o777 == 0o600
    assert os.stat(engine_files(repo / ".git").log).st_mode & 0o777 == 0o600


def test_the_runtime_folder_is_under_xdg_runtime_dir_when_that_is_the_users(
    runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xdg = runtime / "xdg"
    xdg.mkdir(mode=0o700)
    monkeypatch.delenv("WTLS_RUNTIME_DIR")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    assert runtime_dir() == xdg / "wtls"
    assert os.stat(xdg / "wtls").st_mode & 0o777 == 0o700
