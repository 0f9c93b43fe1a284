"""Unsaved editor buffers block the commands that delete or rewrite their files, whoever runs
them: the CLI asks the running engine (which knows every window's buffers), and a server
command sees every session of the engine, not only its own window. Real engine processes, raw
socket LSP sessions, the real CLI as a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.support import SocketLsp, hello_line, raw_exchange, run_wtls
from tests.gitutil import add_worktree, commit_all, git
from wtls.daemon.client import connect
from wtls.daemon.paths import engine_files, socket_address
from wtls.errors import REFUSED_CODE


class Window:
    """One editor window: an LSP session of the engine on ``folder``."""

    def __init__(self, folder: Path) -> None:
        sock, _ = connect(_common(folder), "lsp")
        self.lsp = SocketLsp(sock)
        self.lsp.initialize(folder)
        self.lsp.wait_for(lambda m: m.get("method") == "wtls/worktrees", "wtls/worktrees")
        self.versions: dict[Path, int] = {}

    def open(self, path: Path, text: str | None = None) -> None:
        """didOpen with the file's text on disk (or ``text``)."""
        self.versions[path] = 1
        self.lsp.notify(
            "textDocument/didOpen",
            {
                "textDocument": {
                    "uri": path.resolve().as_uri(),
                    "languageId": "python",
                    "version": 1,
                    "text": path.read_text() if text is None else text,
                }
            },
        )
        self.settle()

    def change(self, path: Path, text: str) -> None:
        """didChange: the whole buffer is now ``text`` (not saved)."""
        self.versions[path] += 1
        self.lsp.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": path.resolve().as_uri(), "version": self.versions[path]},
                "contentChanges": [{"text": text}],
            },
        )
        self.settle()

    def save(self, path: Path, text: str) -> None:
        """The editor writes the buffer to disk, then says didSave."""
        path.write_text(text)
        self.lsp.notify("textDocument/didSave", {"textDocument": {"uri": path.resolve().as_uri()}})
        self.settle()

    def close(self, path: Path) -> None:
        self.lsp.notify("textDocument/didClose", {"textDocument": {"uri": path.resolve().as_uri()}})
        self.settle()

    def settle(self) -> None:
        """Wait until the engine has read every message sent so far (a request's answer comes
        after them: the session's messages are handled in order)."""
        self.lsp.response(self.lsp.request("wtls/noSuchMethod", {}))

    def command(self, name: str, **arguments: Any) -> dict[str, Any]:
        """``workspace/executeCommand``; the whole response (result or error)."""
        return self.lsp.response(
            self.lsp.request(
                "workspace/executeCommand", {"command": name, "arguments": [arguments]}
            ),
            timeout=60,
        )

    def shut(self) -> None:
        with contextlib.suppress(OSError):
            self.lsp.sock.close()


def _common(folder: Path) -> Path:
    return Path(git(folder, "rev-parse", "--path-format=absolute", "--git-common-dir")).resolve()


@pytest.fixture
def windows() -> Iterator[list[Window]]:
    opened: list[Window] = []
    yield opened
    for window in opened:
        window.shut()


def _worktree(repo: Path, tmp_path: Path, name: str) -> Path:
    """A clean worktree whose branch has one commit of its own (``NAME.txt``)."""
    wt = add_worktree(repo, tmp_path / name, f"feature/{name}")
    (wt / f"{name}.txt").write_text(f"{name}\n")
    commit_all(wt, name)
    return wt


def test_the_cli_refuses_to_remove_a_worktree_another_window_has_unsaved_changes_in(
    runtime: Path, repo: Path, tmp_path: Path, windows: list[Window]
) -> None:
    b, c, d, e = (_worktree(repo, tmp_path, n) for n in ("b", "c", "d", "e"))
    window = Window(repo)  # a window on the main worktree, with files of others open
    windows.append(window)
    for wt in (b, c, d, e):
        window.open(wt / "cli.py")
    window.change(b / "cli.py", "print('unsaved in b')\n")

    refused = run_wtls("remove", str(b), cwd=repo)
    assert refused.returncode == 1, refused.stderr
    assert "unsaved changes in an editor" in refused.stderr
    assert f"{b.resolve() / 'cli.py'} (in the window on {repo.resolve()})" in refused.stderr
    assert "pass --force" in refused.stderr and "save or close them" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert (b / "cli.py").read_text() != "print('unsaved in b')\n" and b.is_dir()

    # With --no-daemon the CLI works alone, as before, and says nothing about the engine.
    alone = run_wtls("remove", str(b), "--no-daemon", cwd=repo)
    assert alone.returncode == 0, alone.stderr
    assert not b.exists() and "engine" not in alone.stderr

    # --force goes on (the unsaved text is the editor's: wtls says so, it does not keep it).
    window.change(c / "cli.py", "print('unsaved in c')\n")
    assert run_wtls("remove", str(c), cwd=repo).returncode == 1
    forced = run_wtls("remove", str(c), "--force", cwd=repo)
    assert forced.returncode == 0, forced.stderr
    assert not c.exists()

    # Closed without saving: nothing unsaved is left, the removal goes on.
    window.change(d / "cli.py", "print('unsaved in d')\n")
    assert run_wtls("remove", str(d), cwd=repo).returncode == 1
    window.close(d / "cli.py")
    closed = run_wtls("remove", str(d), cwd=repo)
    assert closed.returncode == 0, closed.stderr
    assert not d.exists()

    # A buffer whose text equals the file on disk is not unsaved (edited, then undone).
    original = (e / "cli.py").read_text()
    window.change(e / "cli.py", "print('typing')\n")
    window.change(e / "cli.py", original)
    same = run_wtls("remove", str(e), "--dry-run", cwd=repo)
    assert same.returncode == 0, same.stderr
    # Saved: the disk holds it now, so it is the worktree's uncommitted work (refused as
    # such, not as an unsaved buffer).
    window.change(e / "cli.py", "print('saved in e')\n")
    window.save(e / "cli.py", "print('saved in e')\n")
    saved = run_wtls("remove", str(e), cwd=repo)
    assert saved.returncode == 1
    assert "unsaved" not in saved.stderr and "cli.py" in saved.stderr


def test_a_server_command_from_another_window_sees_this_windows_unsaved_buffers(
    runtime: Path, repo: Path, tmp_path: Path, windows: list[Window]
) -> None:
    b = _worktree(repo, tmp_path, "b")
    other = _worktree(repo, tmp_path, "other")
    editing = Window(repo)
    asking = Window(other)  # another window, on another worktree, runs the command
    windows += [editing, asking]
    editing.open(b / "b.txt")
    editing.change(b / "b.txt", "unsaved\n")

    answer = asking.command("wtls.remove", worktree=str(b))
    error = answer.get("error")
    assert error is not None and error["code"] == REFUSED_CODE, answer
    assert f"{b.resolve() / 'b.txt'} (in the window on {repo.resolve()})" in error["message"]
    assert [f["option"] for f in error["data"]["fixes"]] == ["force"]
    assert b.is_dir()

    # Moving it would take the file from under the buffer too; discarding would rewrite it.
    moved = asking.command("wtls.move", worktree=str(b), newPath=str(tmp_path / "b-moved"))
    assert moved.get("error", {}).get("code") == REFUSED_CODE, moved
    assert b.is_dir() and not (tmp_path / "b-moved").exists()
    discard = asking.command("wtls.discardInWorktree", worktree=str(b), path="b.txt")
    assert discard.get("error", {}).get("code") == REFUSED_CODE, discard
    assert "b.txt" in discard["error"]["message"] and (b / "b.txt").read_text() == "b\n"

    # The editor's confirmation (a forced dry run) lists them: it says their edits are lost.
    preview = asking.command("wtls.remove", worktree=str(b), force=True, dryRun=True)
    assert preview["result"]["unsaved"] == [
        {"path": str(b.resolve() / "b.txt"), "window": f"the window on {repo.resolve()}"}
    ], preview
    assert preview["result"]["needsForce"] is True
    cli_preview = run_wtls("remove", str(b), "--force", "--dry-run", cwd=repo)
    assert cli_preview.returncode == 0, cli_preview.stderr
    assert f"unsaved in an editor (these edits would be lost):\n  {b.resolve() / 'b.txt'}" in (
        cli_preview.stdout
    )
    assert b.is_dir()

    forced = asking.command("wtls.remove", worktree=str(b), force=True)
    assert forced.get("result", {}).get("removed") is True, forced
    assert not b.exists()


def test_merge_refuses_what_it_would_rewrite_or_remove_under_an_unsaved_buffer(
    runtime: Path, repo: Path, tmp_path: Path, windows: list[Window]
) -> None:
    b = _worktree(repo, tmp_path, "b")
    (b / "cli.py").write_text("print('b changes cli')\n")
    commit_all(b, "b changes cli.py")
    window = Window(b)
    windows.append(window)

    # The merge rewrites cli.py in the base worktree, where a buffer holds unsaved text.
    window.open(repo / "cli.py")
    window.change(repo / "cli.py", "print('typing in main')\n")
    head = git(repo, "rev-parse", "HEAD")
    merged = run_wtls("merge", str(b), cwd=repo)
    assert merged.returncode == 1, merged.stderr
    assert f"{repo.resolve() / 'cli.py'}" in merged.stderr and "base worktree" in merged.stderr
    assert git(repo, "rev-parse", "HEAD") == head
    window.close(repo / "cli.py")

    # --remove would delete b.txt, which a buffer holds unsaved: refused before merging.
    window.open(b / "b.txt")
    window.change(b / "b.txt", "more\n")
    removing = run_wtls("merge", str(b), "--remove", cwd=repo)
    assert removing.returncode == 1, removing.stderr
    assert f"{b.resolve() / 'b.txt'}" in removing.stderr
    assert "merge without --remove" in removing.stderr
    assert git(repo, "rev-parse", "HEAD") == head and b.is_dir()
    # Without --remove the merge touches nothing the buffer holds.
    plain = run_wtls("merge", str(b), cwd=repo)
    assert plain.returncode == 0, plain.stderr


def test_an_engine_that_does_not_answer_in_time_does_not_block_the_command(
    runtime: Path, repo: Path, tmp_path: Path
) -> None:
    b = _worktree(repo, tmp_path, "b")
    files = engine_files(repo / ".git")
    # Something listens on the engine's socket, takes the hello and never answers.
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with socket_address(files.socket) as address:
        listener.bind(address)
    listener.listen(4)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        done = run_wtls("remove", str(b), cwd=repo, env={"WTLS_ENGINE_ASK_TIMEOUT": "0.5"})
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()
        os.unlink(files.socket)
    assert done.returncode == 0, done.stderr
    assert not b.exists()
    lines = [line for line in done.stderr.splitlines() if "engine" in line]
    assert len(lines) == 1 and "going on without it" in lines[0], done.stderr


def test_move_discard_take_and_prune_merged_ask_the_engine_too(
    runtime: Path, repo: Path, tmp_path: Path, windows: list[Window]
) -> None:
    b = _worktree(repo, tmp_path, "b")
    merged = _worktree(repo, tmp_path, "merged")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge", "feature/merged")
    window = Window(repo)
    windows.append(window)
    window.open(b / "b.txt")
    window.change(b / "b.txt", "unsaved b\n")
    named = f"{b.resolve() / 'b.txt'} (in the window on {repo.resolve()})"

    moving = run_wtls("move", str(b), str(tmp_path / "b2"), cwd=repo)
    assert moving.returncode == 1 and named in moving.stderr, moving.stderr
    assert "pass --force" in moving.stderr and b.is_dir()

    discarding = run_wtls("discard", str(b), "b.txt", cwd=repo)
    assert discarding.returncode == 1 and named in discarding.stderr, discarding.stderr
    assert (b / "b.txt").read_text() == "b\n"
    assert git(repo, "for-each-ref", "refs/wtls/backup/") == ""  # refused before the backup

    # Taking b.txt into the base worktree would write where a buffer holds a new, unsaved file.
    window.open(repo / "b.txt", "typed, never saved\n")
    taking = run_wtls("take", str(b), "b.txt", cwd=repo)
    assert taking.returncode == 1 and f"{repo.resolve() / 'b.txt'}" in taking.stderr
    assert not (repo / "b.txt").exists()

    window.open(merged / "merged.txt")
    window.change(merged / "merged.txt", "unsaved merged\n")
    pruning = run_wtls("prune", "--merged", cwd=repo)
    assert pruning.returncode == 0, pruning.stderr
    assert f"kept {merged}: " in pruning.stdout and "unsaved changes" in pruning.stdout
    assert merged.is_dir()

    # --no-daemon: alone, as before.
    assert run_wtls("move", str(b), str(tmp_path / "b2"), "--no-daemon", cwd=repo).returncode == 0
    assert not b.exists()
    forced = run_wtls("move", str(tmp_path / "b2"), str(b), "--force", cwd=repo)
    assert forced.returncode == 0, forced.stderr


def test_a_bad_unsaved_question_gets_an_error_and_the_engine_serves_on(
    runtime: Path, repo: Path, tmp_path: Path, windows: list[Window]
) -> None:
    window = Window(repo)
    windows.append(window)
    window.open(repo / "cli.py")
    window.change(repo / "cli.py", "unsaved\n")
    files = engine_files(repo / ".git")
    for bad in ({"targets": "x"}, {"targets": ["relative/path"]}, "nope"):
        line = hello_line("query", repo / ".git", unsaved=bad)
        answer = json.loads(raw_exchange(files.socket, line))
        assert answer["ok"] is False and "unsaved" in answer["error"], answer
    # Asked through a link to the git dir, the answer is the same: the sessions' buffers.
    link = tmp_path / "link-to-git"
    link.symlink_to(repo / ".git")
    question = {"targets": [str(repo)]}
    good = json.loads(raw_exchange(files.socket, hello_line("query", link, unsaved=question)))
    assert good["ok"] is True, good
    assert good["unsaved"] == {
        "buffers": [
            {"path": str(repo.resolve() / "cli.py"), "window": f"the window on {repo.resolve()}"}
        ]
    }


def test_land_does_not_move_the_base_branch_under_an_unsaved_buffer(
    runtime: Path, repo: Path, tmp_path: Path, windows: list[Window]
) -> None:
    b = _worktree(repo, tmp_path, "b")
    (b / "cli.py").write_text("print('b changes cli')\n")
    commit_all(b, "b changes cli.py")
    window = Window(repo)
    windows.append(window)
    window.open(repo / "cli.py")
    window.change(repo / "cli.py", "print('typing in main')\n")
    head = git(repo, "rev-parse", "main")

    stopped = run_wtls("land", str(b), "--test", "true", cwd=repo)
    assert stopped.returncode != 0, stopped.stdout
    assert f"{repo.resolve() / 'cli.py'} (in the window on {repo.resolve()})" in (
        stopped.stdout + stopped.stderr
    )
    assert git(repo, "rev-parse", "main") == head
    assert (repo / "cli.py").read_text() != "print('b changes cli')\n"

    window.close(repo / "cli.py")
    landed = run_wtls("land", str(b), "--test", "true", cwd=repo)
    assert landed.returncode == 0, landed.stdout + landed.stderr
    assert (repo / "cli.py").read_text() == "print('b changes cli')\n"
