"""``wtls serve`` before it reaches an engine: reading the first message, finding the repository,
keeping the editor's buffers, and the in-process server when there is no repository (real git
repositories, the real ``wtls serve`` as a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.support import engine_pids
from tests.faults.rawlsp import RawServer, frame, uri
from tests.gitutil import add_worktree
from wtls.daemon.forwarder import _common_dir, _read_first_message, apply_change

NO_DAEMON = (sys.executable, "-m", "wtls", "serve", "--no-daemon")


# ---------------------------------------------------------------------------- the first message
def _through_pipe(data: bytes) -> tuple[bytearray, tuple[int, int] | None]:
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, data)
        os.close(write_end)
        return _read_first_message(read_end)
    finally:
        os.close(read_end)


def test_the_first_frame_is_read_and_nothing_after_it_is_lost() -> None:
    first = frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})
    second = frame({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    consumed, span = _through_pipe(
        b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n" + first + second
    )
    assert span is not None
    assert consumed[span[0] : span[1]] == first.split(b"\r\n\r\n", 1)[1]
    assert consumed[span[1] :] == second  # the rest is relayed, not dropped


@pytest.mark.parametrize(
    "data",
    [
        b"Content-Length: abc\r\n\r\n{}",  # an unusable length
        b"garbage\r\n",  # not a header
        b"\r\nContent-Length: 2\r\n\r\n{}",  # a blank line first
        b"Content-Length: 10\r\n\r\n{}",  # the input ends inside the body
        b"",
    ],
)
def test_a_stream_that_does_not_start_with_a_frame_is_left_to_the_server(data: bytes) -> None:
    consumed, span = _through_pipe(data)
    assert span is None
    assert bytes(consumed) == data  # all of it is replayed to the in-process server


# ---------------------------------------------------------------------------- the repository
def test_the_repository_is_found_from_folders_root_uri_root_path_or_the_current_folder(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    common = (repo / ".git").resolve()
    linked = add_worktree(repo, tmp_path / "linked", "feature/x")
    (linked / "sub").mkdir()
    nowhere = tmp_path / "nowhere"
    nowhere.mkdir()
    folders = [{"uri": uri(linked / "sub"), "name": "sub"}, {"uri": uri(nowhere), "name": "n"}]
    assert _common_dir({"workspaceFolders": folders, "rootUri": uri(nowhere)}) == common
    assert _common_dir({"workspaceFolders": [], "rootUri": uri(linked)}) == common
    assert _common_dir({"rootUri": None, "rootPath": str(repo)}) == common
    monkeypatch.chdir(linked)
    assert _common_dir({}) == common
    # No repository, a folder that is gone, or a URI that is not a local file: no engine.
    assert _common_dir({"rootUri": uri(nowhere)}) is None
    assert _common_dir({"rootUri": uri(tmp_path / "gone")}) is None
    assert _common_dir({"workspaceFolders": [{"uri": "https://example.com/x"}]}) is None
    assert _common_dir({"rootUri": "file://elsewhere" + str(repo)}) is None


# ---------------------------------------------------------------------------- documents
def test_edits_apply_in_utf16_code_units_across_any_line_break() -> None:
    text = "a😀b\r\nline two\rthree\nfour"

    def at(line: int, start: int, end: int, new: str) -> dict[str, Any]:
        return {
            "range": {
                "start": {"line": line, "character": start},
                "end": {"line": line, "character": end},
            },
            "text": new,
        }

    assert apply_change(text, at(0, 3, 4, "B")) == "a😀B\r\nline two\rthree\nfour"  # 😀 is 2
    assert apply_change(text, at(1, 5, 8, "2")) == "a😀b\r\nline 2\rthree\nfour"
    assert apply_change(text, at(2, 0, 5, "3")) == "a😀b\r\nline two\r3\nfour"
    assert apply_change(text, at(3, 4, 99, "!")) == "a😀b\r\nline two\rthree\nfour!"  # clamped
    assert apply_change(text, at(9, 0, 0, "end")) == text + "end"  # past the last line
    assert apply_change(text, at(0, 2, 3, "B"), "utf-32") == "a😀B\r\nline two\rthree\nfour"
    assert apply_change(text, at(0, 5, 6, "B"), "utf-8") == "a😀B\r\nline two\rthree\nfour"
    assert apply_change(text, {"text": "whole"}) == "whole"


# ---------------------------------------------------------------------------- no repository
async def _conversation(argv: tuple[str, ...] | None, folder: Path) -> dict[str, Any]:
    server = await RawServer.start(argv or (sys.executable, "-m", "wtls", "serve"), cwd=folder)
    try:
        result = await server.initialize([folder])
        state = await server.request("wtls/worktrees", {"uri": uri(folder)})
        check = await server.command("wtls.check", {"uri": uri(folder)})
        await server.wait_until(lambda: server.logs, "the log line saying what is wrong")
    finally:
        code = await server.close()
    return {
        "initialize": result,
        "worktrees": {k: v for k, v in state.items() if k != "id"},
        "check": {k: v for k, v in check.items() if k != "id"},
        "shown": server.shown,
        "logs": server.logs,
        "code": code,
        "stderr": server.stderr_text(),
    }


async def test_a_folder_without_a_repository_gets_exactly_the_in_process_answers(
    runtime: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    forwarded = await _conversation(None, folder)
    in_process = await _conversation(NO_DAEMON, folder)
    assert forwarded == in_process
    assert forwarded["code"] == 0
    assert "error" in forwarded["worktrees"]  # today's answer: no repository here
    assert engine_pids(runtime) == [] and not list(runtime.iterdir())  # no engine for it


def test_serve_help_names_its_options() -> None:
    for argv in (["serve", "--help"], ["--help"]):
        shown = subprocess.run(
            [sys.executable, "-m", "wtls", *argv],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert shown.returncode == 0, shown.stderr
        if argv[0] == "serve":
            assert "--no-daemon" in shown.stdout and "--idle-timeout" in shown.stdout
            assert "engine" in shown.stdout
        else:
            assert "serve" in shown.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "wtls", "serve", "--idle-timeout", "-3"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert bad.returncode == 2 and "positive number of seconds" in bad.stderr
