"""The client misbehaves: malformed JSON-RPC, unknown commands, wrong argument types, requests
after shutdown, a client that disappears. The server answers what it can, stays up, and keeps
publishing the right state."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.faults.rawlsp import IN_PROCESS, RawServer, frame, uri
from tests.faults.support import (
    assert_no_traceback,
    assert_repository_consistent,
    branch_exists,
    fingerprint,
    running,
    spawned_fully_or_absent,
    wt,
)
from tests.gitutil import add_worktree, make_repo

REFUSED = -32001
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
ERROR_CODE = -32002


async def _answers_correctly(server: RawServer, repo: Path, *others: Path) -> None:
    """The server is alive and its ``wtls/worktrees`` answer lists exactly the real worktrees."""
    assert server.alive, server.stderr_text()[-3000:]
    state = await server.result("wtls/worktrees", {"uri": uri(repo)})
    assert state["repository"] == str((repo / ".git").resolve())
    assert {w["path"] for w in state["worktrees"]} == {str(p.resolve()) for p in (repo, *others)}


async def test_malformed_frames_before_and_after_initialize(repo: Path, tmp_path: Path) -> None:
    wipe = add_worktree(repo, tmp_path / "tasks-app-wipe", "feature/wipe")
    server = await RawServer.start()
    try:
        request = json.dumps({"jsonrpc": "2.0", "id": 900, "method": "wtls/worktrees"}).encode()
        for data in (
            frame(b'{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {'),  # bad JSON
            frame(b'{"jsonrpc": "2.0", "id": 77}'),  # valid JSON, no method, no result
            frame(b'{"jsonrpc": "2.0", "id": 78, "params": {}}'),
            frame(b'{"jsonrpc": "2.0", "method": 5, "id": 79}'),  # method of the wrong type
            frame(b"[1, 2, 3]"),
            frame(b"42"),
            frame(b'{"jsonrpc": "1.0", "id": 80, "method": "initialize"}'),  # wrong version
            frame('{"k": "\u00e9\xff"}'.encode("latin-1")),  # not UTF-8
            # A Content-Length shorter than the body: the rest is garbage up to the next line.
            b"Content-Length: %d\r\n\r\n" % (len(request) - 9) + request + b"\r\n",
            b"this is not a header\r\nContent-Type: text/plain\r\n\r\n",  # no Content-Length
        ):
            server.send_raw(data)
        # None of this is answered as a success, and the server is still there to initialize.
        result = await server.initialize([wipe])
        assert result["serverInfo"]["name"] == "wtls"
        assert not any(
            m.get("id") in (77, 78, 79, 80, 900) and "result" in m for m in server.messages
        )
        state = await server.wait_for_state(lambda s: len(s["worktrees"]) == 2, "initial state")
        assert state["this"] == str(wipe.resolve())

        # Mid-session: a body longer than announced swallows what follows, then the stream is
        # back in step; the watcher keeps publishing and requests are answered.
        server.send_raw(frame(b'{"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": 1}'))
        server.send_raw(b"Content-Length: 40\r\n\r\n" + b"{" + b" " * 39)
        n = len(server.states)
        (wipe / "notes.txt").write_text("agent notes\n")
        await server.wait_for_state(
            lambda s: (w := wt(s, wipe)) is not None and w["untracked"] == 1,
            "the new file announced after the garbage",
            since=n,
        )
        await _answers_correctly(server, repo, wipe)
        assert (wipe / "notes.txt").read_text() == "agent notes\n"
    finally:
        await server.close()


async def test_unknown_commands_and_wrong_argument_types(repo: Path, tmp_path: Path) -> None:
    wipe = add_worktree(repo, tmp_path / "tasks-app-wipe", "feature/wipe")
    # pygls logs a traceback for a notification it cannot read (the last one below): that is
    # its report of the client's bug, not a crash of the server.
    async with running([repo], check_stderr=False) as server:
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 2, "initial state")
        cases = [
            ({"command": "wtls.noSuchCommand", "arguments": [{}]}, INVALID_PARAMS),
            ({"command": 7, "arguments": [{}]}, INVALID_PARAMS),
            ({"command": "wtls.refresh", "arguments": [42]}, None),
            ({"command": "wtls.refresh", "arguments": ["x", "y"]}, None),
            ({"command": "wtls.refresh", "arguments": {"not": "a list"}}, None),
            ({"arguments": [{}]}, None),
        ]
        for params, code in cases:
            response = await server.request("workspace/executeCommand", params)
            assert "error" in response, (params, response)
            if code is not None:
                assert response["error"]["code"] == code, (params, response)
            assert server.alive
        # A wrong argument gets the command's own plain explanation, not a pygls internal.
        response = await server.request(
            "workspace/executeCommand", {"command": "wtls.spawn", "arguments": [42]}
        )
        assert "wtls.spawn takes one object argument" in response["error"]["message"], response
        bad_requests = [
            ({"uri": 5}, ERROR_CODE, "uri must be a string"),
            ({"uri": "https://example.com/repo"}, ERROR_CODE, "not a file URI"),
            ({"uri": uri(tmp_path / "no-such-folder")}, -32001, "does not exist"),
        ]
        for params, code, text in bad_requests:
            response = await server.request("wtls/worktrees", params)
            assert response.get("error", {}).get("code") == code, (params, response)
            assert text in response["error"]["message"]
        response = await server.request("wtls/noSuchMethod", {})
        assert response["error"]["code"] == METHOD_NOT_FOUND
        # JSON-RPC lets a request omit params (Neovim's request(method, nil) does).
        state = await server.result("wtls/worktrees", None)
        assert state["this"] == str(repo.resolve())
        server.notify("wtls/noSuchNotification", {"x": 1})
        server.notify("textDocument/didChange", {"textDocument": 3})

        # Nothing above changed the state, and the server still follows the repository.
        await _answers_correctly(server, repo, wipe)
        n = len(server.states)
        (wipe / "cli.py").write_text("changed\n")
        await server.wait_for_state(
            lambda s: (w := wt(s, wipe)) is not None and w["unstaged"] == 1, "edit seen", since=n
        )


async def test_requests_after_shutdown_are_refused_and_exit_is_clean(repo: Path) -> None:
    server = await RawServer.start()
    try:
        await server.initialize([repo])
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 1, "initial state")
        assert (await server.request("shutdown", None)).get("result") is None
        for method, params in (
            ("wtls/worktrees", {"uri": uri(repo)}),
            ("workspace/executeCommand", {"command": "wtls.refresh", "arguments": [{}]}),
            ("shutdown", None),
        ):
            response = await server.request(method, params, timeout=10)
            assert response["error"]["code"] == INVALID_REQUEST, response
        n = len(server.states)
        (repo / "after.txt").write_text("written after shutdown\n")
        server.notify("exit", None)
        assert await server.wait_exit() == 0
        assert len(server.states) == n, "nothing is published after shutdown"
        assert_no_traceback(server)
    finally:
        await server.close()


async def test_client_that_vanishes_ends_the_server(repo: Path) -> None:
    server = await RawServer.start()
    try:
        await server.initialize([repo])
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 1, "initial state")
        # The editor crashes: its end of the pipe closes without shutdown/exit.
        assert server.proc.stdin is not None
        server.proc.stdin.close()
        code = await server.wait_exit(timeout=20)
        assert code is not None, "the server must not outlive its client"
        assert_no_traceback(server)
    finally:
        await server.close()


async def test_exit_without_shutdown_exits_with_1(repo: Path) -> None:
    server = await RawServer.start()
    try:
        await server.initialize([repo])
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 1, "initial state")
        server.notify("exit", None)
        assert await server.wait_exit() == 1  # LSP: exit without shutdown → 1
    finally:
        await server.close()


async def test_spawn_with_wrong_argument_types_changes_nothing(repo: Path) -> None:
    async with running([repo]) as server:
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 1, "initial state")
        # Arguments of the wrong kind: InvalidParams naming the field.
        for args, field in (
            ({}, "name"),
            ({"name": 5}, "name"),
            ({"name": ["agent"]}, "name"),
            ({"name": "agent-y", "base": 3}, "base"),
            ({"name": "agent-y", "open": "yes"}, "open"),
            ({"name": "agent-y", "path": {"x": 1}}, "path"),
            ({"name": "agent-y", "opne": True}, "opne"),
        ):
            response = await server.command("wtls.spawn", args)
            assert response.get("error", {}).get("code") == INVALID_PARAMS, (args, response)
            assert response["error"]["data"]["field"] == field, (args, response)
            assert f"argument '{field}'" in response["error"]["message"], response
        # Well-formed arguments the core refuses.
        for args in ({"name": "../../escape"}, {"name": "--upload-pack=evil"}, {"name": ""}):
            response = await server.command("wtls.spawn", args)
            assert response.get("error", {}).get("code") == REFUSED, (args, response)
        assert git_branches(repo) == ["main"]
        state = await server.result("wtls/worktrees", {"uri": uri(repo)})
        assert [w["path"] for w in state["worktrees"]] == [str(repo.resolve())]


def git_branches(repo: Path) -> list[str]:
    from tests.gitutil import git

    return git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split()


def spawn_repo(tmp_path: Path) -> Path:
    """A repository big enough that spawning it takes a moment (1,000 files)."""
    files = {f"pkg{i}/mod{j}.py": f"n = {i * j}\n" * 20 for i in range(20) for j in range(50)}
    files["cli.py"] = "print('tasks')\n"
    return make_repo(tmp_path, files=files)


@pytest.mark.parametrize("delay", [0.0, 0.2, 0.5])
async def test_client_vanishes_mid_spawn(tmp_path: Path, delay: float) -> None:
    repo = spawn_repo(tmp_path)
    (repo / "draft.txt").write_text("uncommitted\n")
    before = fingerprint(repo)
    # In process: the server must end with its client (an engine finishes the spawn instead).
    server = await RawServer.start(IN_PROCESS)
    try:
        await server.initialize([repo])
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 1, "initial state")
        server.send_request(
            "workspace/executeCommand", {"command": "wtls.spawn", "arguments": [{"name": "gone"}]}
        )
        await asyncio.sleep(delay)
        assert server.proc.stdin is not None
        server.proc.stdin.close()  # the editor is gone, mid-spawn
        await server.wait_exit(timeout=60)
    finally:
        await server.close()
    path = tmp_path / "tasks-app-gone"
    spawned_fully_or_absent(repo, "agent/gone", path)
    assert_repository_consistent(repo)
    assert fingerprint(repo) == before


async def test_two_clients_spawn_the_same_name_at_once(tmp_path: Path) -> None:
    repo = spawn_repo(tmp_path)
    async with running([repo]) as first, running([repo]) as second:
        for server in (first, second):
            await server.wait_for_state(lambda s: len(s["worktrees"]) == 1, "initial state")
        answers = await asyncio.gather(
            first.command("wtls.spawn", {"name": "twin"}),
            second.command("wtls.spawn", {"name": "twin"}),
        )
        won = [a for a in answers if "result" in a]
        lost = [a for a in answers if "error" in a]
        assert len(won) == 1 and len(lost) == 1, answers
        assert lost[0]["error"]["code"] == REFUSED
        assert "agent/twin" in lost[0]["error"]["message"]
        path = Path(won[0]["result"]["path"])
        assert spawned_fully_or_absent(repo, "agent/twin", path)
        assert branch_exists(repo, "agent/twin")
        # Both editors are told about the one new worktree.
        for server in (first, second):
            await server.wait_for_state(lambda s: wt(s, path) is not None, "new worktree")
    assert_repository_consistent(repo)
