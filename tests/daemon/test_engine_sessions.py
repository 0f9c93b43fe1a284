"""LSP sessions inside the engine: served over its socket, ended one by one, and what happens
when the repository disappears under them (real engine processes, a raw socket LSP client)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.daemon.support import SocketLsp, alive, wait_until
from tests.gitutil import add_worktree
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
        # Its first prediction done: no snapshot is being written into the repository that
        # rmtree deletes (a "Directory not empty" under load).
        lsp.wait_for(lambda m: m.get("method") == "wtls/settled", "wtls/settled")
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


def test_a_session_says_settled_once_its_first_picture_is_published(
    runtime: Path, repo: Path, tmp_path: Path
) -> None:
    """``wtls/settled`` comes after the session's state, its conflict markers and its predicted
    conflict: what the forwarder waits for before clearing an old engine's diagnostics."""
    other = add_worktree(repo, tmp_path / "other", "feature/other").resolve()
    mine = add_worktree(repo, tmp_path / "mine", "feature/mine").resolve()
    for folder, text in ((other, "other"), (mine, "mine")):
        cli = folder / "cli.py"
        cli.write_text(cli.read_text().replace("done <index>", f"done <index> | {text}"))
    (mine / "notes.txt").write_text("<<<<<<< ours\na\n=======\nb\n>>>>>>> theirs\n")
    sock, _ = connect(repo / ".git", "lsp")
    lsp = SocketLsp(sock)
    try:
        lsp.initialize(mine)
        settled = lsp.wait_for(lambda m: m.get("method") == "wtls/settled", "wtls/settled")
        before = lsp.messages[: lsp.messages.index(settled)]
        assert any(_is_worktrees(m) for m in before)

        def codes(name: str) -> set[str]:
            return {
                str(d.get("code"))
                for m in before
                if m.get("method") == "textDocument/publishDiagnostics"
                and m["params"]["uri"] == (mine / name).as_uri()
                for d in m["params"]["diagnostics"]
            }

        assert "predicted-conflict" in codes("cli.py")
        assert codes("notes.txt"), "the conflict markers' diagnostics came after settled"
    finally:
        sock.close()
