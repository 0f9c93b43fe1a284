"""LSP sessions inside the engine: served over its socket, ended one by one, and what happens
when the repository disappears under them (real engine processes, a raw socket LSP client)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.daemon.support import SocketLsp, alive, wait_until
from wtls.daemon.client import connect, engine_status
from wtls.daemon.paths import engine_files


def _is_worktrees(message: dict[str, object]) -> bool:
    return message.get("method") == "wtls/worktrees"


def test_an_lsp_session_over_the_engine_is_initialized_and_gets_the_worktrees(
    runtime: Path, repo: Path
) -> None:
    sock, _ = connect(repo / ".git", "lsp")
    lsp = SocketLsp(sock)
    try:
        result = lsp.initialize(repo)
        assert result["result"]["serverInfo"]["name"] == "wtls"
        state = lsp.wait_for(_is_worktrees, "a wtls/worktrees notification")
        paths = [w["path"] for w in state["params"]["worktrees"]]
        assert str(repo.resolve()) in paths
    finally:
        sock.close()


def test_exit_ends_that_session_only_and_the_engine_serves_on(runtime: Path, repo: Path) -> None:
    common = repo / ".git"
    first_sock, reply = connect(common, "lsp")
    second_sock, _ = connect(common, "lsp")
    first, second = SocketLsp(first_sock), SocketLsp(second_sock)
    try:
        first.initialize(repo)
        second.initialize(repo)
        second.wait_for(_is_worktrees, "a wtls/worktrees notification")
        first.response(first.request("shutdown", None))
        first.notify("exit", None)
        first.wait_closed()
        status = wait_until(
            lambda: (s := engine_status(common)) is not None and s["clients"] == 1 and s,
            "the engine to count one session",
        )
        assert status["pid"] == reply["pid"]
        # The other session still works.
        answer = second.response(second.request("wtls/worktrees", {}))
        assert "error" not in answer, answer
    finally:
        first_sock.close()
        second_sock.close()


def test_a_client_that_vanishes_without_shutdown_is_forgotten(runtime: Path, repo: Path) -> None:
    common = repo / ".git"
    sock, reply = connect(common, "lsp")
    lsp = SocketLsp(sock)
    lsp.initialize(repo)
    lsp.wait_for(_is_worktrees, "a wtls/worktrees notification")
    sock.close()
    wait_until(
        lambda: (s := engine_status(common)) is not None and s["clients"] == 0,
        "the engine to forget the session",
    )
    assert alive(reply["pid"])


def test_a_repository_deleted_under_the_engine(runtime: Path, tmp_path: Path, repo: Path) -> None:
    common = repo / ".git"
    files = engine_files(common)
    sock, reply = connect(common, "lsp")
    lsp = SocketLsp(sock)
    try:
        lsp.initialize(repo)
        lsp.wait_for(_is_worktrees, "a wtls/worktrees notification")
        shutil.rmtree(repo)
        # No new session can join it: the socket goes at once...
        wait_until(lambda: not files.socket.exists(), "the socket to be removed")
        # ...while the connected session is still served.
        assert alive(reply["pid"])
        answer = lsp.response(lsp.request("shutdown", None))
        assert "error" not in answer
        lsp.notify("exit", None)
        lsp.wait_closed()
    finally:
        sock.close()
    wait_until(lambda: not alive(reply["pid"]), "the engine to exit once its session left")
    log = files.log.read_text()
    assert "Traceback" not in log, log
    assert "the repository" in log and "is gone" in log
