"""A hostile client and hostile files against the real server over stdio: a frame with a bad
``Content-Length``, URI arguments that name no local file, a file with thousands of conflict
blocks, file names that are not UTF-8. The server answers, stays in step and stays bounded."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.core.test_hostile_output import assert_valid_utf8_json
from tests.faults.rawlsp import RawServer, uri
from tests.faults.support import assert_no_traceback, fingerprint, running
from tests.gitutil import add_worktree, commit_all, git

REFUSED = -32001
ERROR_CODE = -32002
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
BLOCK = "<<<<<<< ours\nmine\n=======\ntheirs\n>>>>>>> theirs\n"


async def test_bad_content_length_does_not_lose_later_messages(repo: Path) -> None:
    server = await RawServer.start()
    try:
        body = json.dumps({"jsonrpc": "2.0", "id": 901, "method": "wtls/worktrees"}).encode()
        server.send_raw(b"Content-Length: abc\r\n\r\n" + body)
        # The next frame's header is glued to that body (it has no line break): still read.
        result = await server.initialize([repo])
        assert result["serverInfo"]["name"] == "wtls"
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 1, "initial state")
        # The skipped request is answered with an error, not left waiting.
        skipped = [m for m in server.messages if m.get("id") == 901]
        assert [m["error"]["code"] for m in skipped] == [INVALID_REQUEST], skipped
        for garbage in (
            b"Content-Length: -1\r\n\r\n" + body,
            b"Content-Length: 0\r\n\r\n" + body,
            b"Content-Length: 99999999999999999\r\n\r\n" + body + b"\r\n",
            b"Content-Length:\r\nContent-Type: x\r\n\r\n" + body,
        ):
            server.send_raw(garbage)
            state = await server.result("wtls/worktrees", {"uri": uri(repo)}, timeout=10)
            assert state["this"] == str(repo.resolve())
        assert "unusable Content-Length" in server.stderr_text()
        assert_no_traceback(server)
    finally:
        await server.close()


async def test_uri_arguments_that_name_no_local_file(repo: Path, tmp_path: Path) -> None:
    before = fingerprint(repo)
    async with running([repo]) as server:
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 1, "initial state")
        here = str(repo.resolve())
        cases = [
            ("wtls.check", {"uri": "file:///%00"}, "NUL"),
            ("wtls.check", {"uri": f"file://otherhost{here}"}, "another machine"),
            ("wtls.check", {"uri": "https://example.com/repo"}, "not a file URI"),
            ("wtls.spawn", {"name": "x", "uri": "file:///tmp/a%00b"}, "NUL"),
            ("wtls.spawn", {"name": "x", "path": "file://elsewhere/tmp/x"}, "another machine"),
            ("wtls.open", {"worktree": "file:///%00"}, "NUL"),
            ("wtls.repair", {"paths": ["file:///%00"]}, "NUL"),
        ]
        for name, args, words in cases:
            response = await server.command(name, args, timeout=30)
            error = response.get("error")
            assert error is not None and error["code"] == INVALID_PARAMS, (name, args, response)
            assert words in error["message"] and "Traceback" not in error["message"], error
            key = "paths" if name == "wtls.repair" else next(k for k in args if k != "name")
            assert f"'{key}'" in error["message"], error
            assert error["data"]["field"] == key, error
        for bad in ("file:///%00", f"file://otherhost{here}"):
            response = await server.request("wtls/worktrees", {"uri": bad})
            assert response["error"]["code"] == ERROR_CODE, response
            assert "'uri'" in response["error"]["message"]
        state = await server.result("wtls/worktrees", {"uri": f"file://localhost{here}"})
        assert state["this"] == here
    assert fingerprint(repo) == before
    assert git(repo, "branch", "--list", "agent/x") == ""


async def test_thousands_of_conflict_blocks_are_capped(repo: Path) -> None:
    big = repo / "generated.txt"
    big.write_text(BLOCK * 5000)
    async with running([repo]) as server:
        found = await server.wait_for_diagnostics(
            big, lambda d: len(d) > 0, "markers of the generated file", timeout=60
        )
        assert len(found) == 1001
        assert all(d["code"] == "conflict-marker" for d in found[:1000])
        last = found[-1]
        assert last["severity"] == 3  # Information
        assert "4000 more conflict blocks not shown" in last["message"]
        assert last["range"]["start"]["line"] == 5 * 1000
        assert max(len(b) for b in server.bodies) < 2_000_000


async def test_payloads_are_valid_utf8_with_names_that_are_not(repo: Path, tmp_path: Path) -> None:
    bad = os.fsdecode(b"caf\xff.txt")
    (repo / bad).write_text("one\ntwo\nthree\n")
    commit_all(repo, "a file with a non-UTF-8 name")
    a = add_worktree(repo, tmp_path / "tasks-app-a", "feature/a")
    b = add_worktree(repo, tmp_path / "tasks-app-b", "feature/b")
    (a / bad).write_text("one\nA\nthree\n")
    (b / bad).write_text("one\nB\nthree\n")
    marked = os.fsdecode(b"m\xfe.txt")
    (repo / marked).write_text(BLOCK)
    async with running([repo]) as server:
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 3, "initial state")
        response = await server.command("wtls.check", {"uri": uri(repo)})
        assert "result" in response, response
        files = [f["path"] for c in response["result"]["conflicts"] for f in c["files"]]
        assert "caf\ufffd.txt" in files, files
        expected = uri(repo) + "/m%FE.txt"
        await server.wait_until(
            lambda: expected in server.diagnostic_uris, "markers of the non-UTF-8 file"
        )
        for body in server.bodies:
            assert_valid_utf8_json(body)
