"""``wtls serve`` through the repository's engine, and what the editor sees when that engine dies:
real forwarders between a raw LSP client and a real engine process, SIGKILL and SIGSTOP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.daemon.support import engine_pids, wait_until
from tests.faults.rawlsp import RawServer, uri
from tests.gitutil import add_worktree, commit_all, make_repo
from wtls.daemon.client import engine_status
from wtls.daemon.forwarder import ENGINE_STOPPED, MODULES_ENV, REQUEST_FAILED

MARKERS = "a\n<<<<<<< mine\nb\n=======\nc\n>>>>>>> theirs\n"
OLD = "done <index>"
#: What a forwarder must never load: the server stack and the CLI behind the parser.
HEAVY = ("pygls", "lsprotocol", "cattrs", "wtls.wire", "wtls.server", "wtls.cli.parser")


def markers(diags: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in diags if d.get("code") == "conflict-marker"]


def predicted(diags: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in diags if d.get("code") == "predicted-conflict"]


def entry(state: dict[str, Any], path: Path) -> dict[str, Any] | None:
    return next((w for w in state["worktrees"] if w["path"] == str(path.resolve())), None)


def engine_pid(common: Path) -> int:
    status = wait_until(lambda: engine_status(common), "a running engine")
    return int(status["pid"])


def clients(common: Path) -> int | None:
    status = engine_status(common)
    return None if status is None else int(status["clients"])


def assert_nothing_went_wrong(server: RawServer) -> None:
    """No error answer, no error shown or logged, no traceback: the client noticed nothing."""
    errors = [m for m in server.messages if "error" in m]
    assert not errors, errors
    assert not [m for m in server.shown if m.get("type") == 1], server.shown
    assert not [m for m in server.logs if m.get("type") == 1], server.logs
    assert "Traceback" not in server.stderr_text(), server.stderr_text()


@asynccontextmanager
async def session(folder: Path, env: dict[str, str] | None = None) -> AsyncIterator[RawServer]:
    """``wtls serve`` (the default: through the engine) initialized on ``folder``."""
    server = await RawServer.start(env={**os.environ, **(env or {})}, cwd=folder)
    try:
        await server.initialize([folder])
        yield server
    finally:
        await server.close()


async def test_a_session_goes_through_the_engine_with_a_light_forwarder(
    runtime: Path, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, files={"notes.txt": MARKERS, "cli.py": "x = 1\n"})
    common = repo / ".git"
    modules = tmp_path / "modules.txt"
    async with session(repo, {MODULES_ENV: str(modules)}) as server:
        state = await server.wait_for_state(lambda s: entry(s, repo) is not None, "the state")
        assert entry(state, repo)["isThis"]  # type: ignore[index]
        await server.wait_for_diagnostics(repo / "notes.txt", markers, "the marker diagnostic")
        check = await server.command("wtls.check", {"uri": uri(repo)})
        assert "result" in check, check
        answer = await server.result("wtls/worktrees", {"uri": uri(repo)})
        assert answer["this"] == str(repo.resolve())
        # The server runs in the engine, not in the session's process.
        pid = engine_pid(common)
        assert pid != server.proc.pid and engine_pids(runtime) == [pid]
        shown = subprocess.run(
            [sys.executable, "-m", "wtls", "daemon", "status", "--json", "-C", str(repo)],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert json.loads(shown.stdout)["clients"] == 1, shown
        loaded = set(modules.read_text().split())
        heavy = sorted(m for m in loaded if m.startswith(HEAVY))
        assert heavy == [], heavy
        assert "wtls.daemon.forwarder" in loaded
        assert_nothing_went_wrong(server)
    assert server.proc.returncode == 0  # shutdown, exit
    wait_until(lambda: clients(common) == 0, "the engine to forget the session")


async def test_two_sessions_survive_a_sigkilled_engine(runtime: Path, tmp_path: Path) -> None:
    repo = make_repo(tmp_path, files={"notes.txt": MARKERS, "cli.py": "x = 1\n"})
    linked = add_worktree(repo, tmp_path / "linked", "feature/linked").resolve()
    common = repo / ".git"
    async with session(repo) as first, session(linked) as second:
        for server, folder in ((first, repo), (second, linked)):
            await server.wait_for_diagnostics(folder / "notes.txt", markers, "the markers")
        await second.wait_for_state(lambda s: len(s["worktrees"]) == 2, "both worktrees")
        old = engine_pid(common)
        assert clients(common) == 2
        # The engine is frozen, the markers in the main worktree are fixed, then it is killed:
        # its diagnostic became wrong while no engine could see it.
        os.kill(old, signal.SIGSTOP)
        (repo / "notes.txt").write_text("a\nb\n")
        mark = len(second.messages)
        os.kill(old, signal.SIGKILL)

        new = wait_until(lambda: (p := engine_pid(common)) != old and p, "a new engine")
        wait_until(lambda: clients(common) == 2, "both sessions on the new engine")
        assert engine_pids(runtime) == [new]  # one engine for both
        await first.wait_for_diagnostics(
            repo / "notes.txt", lambda d: not d, "the stale marker diagnostic cleared"
        )
        # The other worktree still has its markers: published again, never cleared meanwhile.
        linked_notes = uri(linked / "notes.txt")
        await second.wait_until(
            lambda: any(
                m.get("method") == "textDocument/publishDiagnostics"
                and m["params"]["uri"] == linked_notes
                for m in second.messages[mark:]
            ),
            "the new engine's diagnostics for the linked worktree",
        )
        assert markers(second.diagnostics_for(linked / "notes.txt"))
        flicker = [
            m
            for m in second.messages[mark:]
            if m.get("method") == "textDocument/publishDiagnostics"
            and m["params"]["uri"] == linked_notes
            and not m["params"]["diagnostics"]
        ]
        assert flicker == []

        # The next change is seen by both sessions.
        since = len(first.states), len(second.states)
        (linked / "new.txt").write_text("new\n")
        for server, start in ((first, since[0]), (second, since[1])):
            await server.wait_for_state(
                lambda s: (w := entry(s, linked)) is not None and w["untracked"] == 1,
                "the change after the restart",
                since=start,
            )
        assert first.alive and second.alive
        assert_nothing_went_wrong(first)
        assert_nothing_went_wrong(second)


async def test_requests_in_flight_when_the_engine_dies(runtime: Path, tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    linked = add_worktree(repo, tmp_path / "linked", "feature/linked").resolve()
    common = repo / ".git"
    async with session(repo) as server:
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 2, "both worktrees")
        old = engine_pid(common)
        # Frozen: the requests wait unread in the socket when the engine is killed.
        os.kill(old, signal.SIGSTOP)
        command = server.send_request(
            "workspace/executeCommand",
            {"command": "wtls.lock", "arguments": [{"path": str(linked), "reason": "kept"}]},
        )
        read = server.send_request("wtls/worktrees", {"uri": uri(repo)})
        await server.wait_until(lambda: len(server.bodies) > 0, "the forwarder to relay")
        os.kill(old, signal.SIGKILL)

        failed = await server.wait_response(command, "the command's answer")
        assert failed["error"]["code"] == REQUEST_FAILED
        assert failed["error"]["message"] == ENGINE_STOPPED
        answered = await server.wait_response(read, "the read after the reconnect")
        assert answered["result"]["this"] == str(repo.resolve())
        assert engine_pid(common) != old
        # Never run twice, nor once by the new engine: the worktree is not locked.
        state = await server.result("wtls/worktrees", {"uri": uri(repo)})
        assert entry(state, linked)["locked"] is False  # type: ignore[index]
        assert not (repo / ".git" / "worktrees" / "linked" / "locked").exists()


async def test_an_unsaved_edit_survives_an_engine_restart(runtime: Path, tmp_path: Path) -> None:
    repo = make_repo(tmp_path).resolve()
    wipe = add_worktree(repo, tmp_path / "wipe", "feature/wipe").resolve()
    remaining = add_worktree(repo, tmp_path / "remaining", "feature/remaining").resolve()
    (wipe / "cli.py").write_text((wipe / "cli.py").read_text().replace(OLD, OLD + " | wipe"))
    commit_all(wipe, "Add wipe command")
    cli = remaining / "cli.py"
    on_disk = cli.read_text()
    common = repo / ".git"
    async with session(remaining) as server:
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 3, "the state")
        server.notify(
            "textDocument/didOpen",
            {
                "textDocument": {
                    "uri": uri(cli),
                    "languageId": "python",
                    "version": 1,
                    "text": on_disk,
                }
            },
        )
        # An incremental edit, as VS Code sends them: only the buffer changes.
        line = on_disk.splitlines().index(next(x for x in on_disk.splitlines() if OLD in x))
        column = on_disk.splitlines()[line].index(OLD) + len(OLD)
        server.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri(cli), "version": 2},
                "contentChanges": [
                    {
                        "range": {
                            "start": {"line": line, "character": column},
                            "end": {"line": line, "character": column},
                        },
                        "text": " | remaining",
                    }
                ],
            },
        )
        await server.wait_for_diagnostics(cli, predicted, "the unsaved edit's conflict warning")
        old = engine_pid(common)
        mark = len(server.messages)
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: (p := engine_pid(common)) != old and p, "a new engine")
        cli_uri = uri(cli)
        await server.wait_until(
            lambda: any(
                m.get("method") == "textDocument/publishDiagnostics"
                and m["params"]["uri"] == cli_uri
                and predicted(m["params"]["diagnostics"])
                for m in server.messages[mark:]
            ),
            "the new engine's warning for the unsaved edit",
        )
        assert cli.read_text() == on_disk  # still unsaved
        assert_nothing_went_wrong(server)


async def test_a_client_gone_without_shutdown_is_forgotten(runtime: Path, repo: Path) -> None:
    common = repo / ".git"
    killed = await RawServer.start(cwd=repo)
    closed = await RawServer.start(cwd=repo)
    try:
        for server in (killed, closed):
            await server.initialize([repo])
            await server.wait_for_state(lambda s: bool(s["worktrees"]), "the state")
        wait_until(lambda: clients(common) == 2, "two sessions")
        killed.kill()  # the forwarder SIGKILLed
        wait_until(lambda: clients(common) == 1, "the engine to forget the killed session")
        assert closed.proc.stdin is not None
        closed.proc.stdin.close()  # the editor closed its end
        assert await closed.wait_exit() == 1  # no shutdown: LSP's exit code 1
        wait_until(lambda: clients(common) == 0, "the engine to forget the closed session")
    finally:
        await killed.close()
        await closed.close()


async def test_a_folder_added_later_is_replayed_to_the_new_engine(
    runtime: Path, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path)
    other = make_repo(tmp_path / "elsewhere", name="other-app")
    async with session(repo) as server:
        await server.wait_for_state(lambda s: entry(s, repo) is not None, "the first folder")
        server.notify(
            "workspace/didChangeWorkspaceFolders",
            {"event": {"added": [{"uri": uri(other), "name": "other"}], "removed": []}},
        )
        await server.wait_for_state(lambda s: entry(s, other) is not None, "the added folder")
        old = engine_pid(repo / ".git")
        since = len(server.states)
        os.kill(old, signal.SIGKILL)
        # The new engine is told about both folders: it announces the added one's state again.
        await server.wait_for_state(
            lambda s: entry(s, other) is not None, "the added folder after the restart", since=since
        )
        assert engine_pid(repo / ".git") != old
        assert_nothing_went_wrong(server)


async def test_when_no_engine_can_start_the_session_goes_on_in_a_child(
    runtime: Path, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path)
    async with session(repo) as server:
        await server.wait_for_state(lambda s: entry(s, repo) is not None, "the state")
        old = engine_pid(repo / ".git")
        runtime.chmod(0o777)  # unsafe: no engine may start in it any more
        try:
            since = len(server.states)
            os.kill(old, signal.SIGKILL)
            await server.wait_for_state(
                lambda s: entry(s, repo) is not None, "the state from the child", since=since
            )
            answer = await server.result("wtls/worktrees", {"uri": uri(repo)})
            assert answer["this"] == str(repo.resolve())
            assert engine_pids(runtime) == []
            assert "runtime folder" in server.stderr_text()  # why, in the editor's log
        finally:
            runtime.chmod(0o700)
        assert_nothing_went_wrong(server)
    assert server.proc.returncode == 0


async def test_malformed_messages_are_relayed_and_the_session_goes_on(
    runtime: Path, repo: Path
) -> None:
    cli = uri(repo / "cli.py")
    async with session(repo) as server:
        await server.wait_for_state(lambda s: entry(s, repo) is not None, "the state")
        doc = {"uri": cli, "languageId": "python", "version": "one", "text": 5}
        server.notify("textDocument/didOpen", {"textDocument": doc})
        server.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": cli, "version": []},
                "contentChanges": [{"range": {"start": {"line": "x"}}, "text": "y"}, "z", 3],
            },
        )
        server.notify("workspace/didChangeWorkspaceFolders", {"event": {"added": "nope"}})
        server.send_raw(b"Content-Length: 12\r\n\r\n{not json!!}")
        answer = await server.result("wtls/worktrees", {"uri": uri(repo)})
        assert answer["this"] == str(repo.resolve())
        assert server.alive
    assert server.proc.returncode == 0


async def test_the_idle_timeout_reaches_the_engine_the_session_starts(
    runtime: Path, repo: Path
) -> None:
    argv = (sys.executable, "-m", "wtls", "serve", "--idle-timeout", "42")
    server = await RawServer.start(argv, cwd=repo)
    try:
        await server.initialize([repo])
        status = wait_until(lambda: engine_status(repo / ".git"), "the engine")
        assert status["idleTimeout"] == 42
    finally:
        await server.close()


async def test_a_session_of_a_replaced_engine_moves_to_the_new_one(
    runtime: Path, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, files={"notes.txt": MARKERS})
    common = repo / ".git"
    # The first session starts an engine that says it runs an older wtls (an upgrade since).
    async with session(repo, {"WTLS_TEST_ENGINE_VERSION": "0.0.1"}) as old_session:
        await old_session.wait_for_diagnostics(repo / "notes.txt", markers, "the markers")
        old = engine_pid(common)
        assert engine_status(common)["wtls"] == "0.0.1"  # type: ignore[index]
        mark = len(old_session.messages)
        env = {k: v for k, v in os.environ.items() if k != "WTLS_TEST_ENGINE_VERSION"}
        async with session(repo, env) as new_session:
            await new_session.wait_for_diagnostics(repo / "notes.txt", markers, "the markers")
            new = engine_pid(common)
            assert new != old
            wait_until(lambda: clients(common) == 2, "the old session on the new engine")
            assert engine_pids(runtime) == [new]
            # The old session was rebuilt on it and still sees the markers, never cleared.
            notes = uri(repo / "notes.txt")
            await old_session.wait_until(
                lambda: any(
                    m.get("method") == "textDocument/publishDiagnostics"
                    and m["params"]["uri"] == notes
                    for m in old_session.messages[mark:]
                ),
                "the new engine's diagnostics in the old session",
            )
            assert markers(old_session.diagnostics_for(repo / "notes.txt"))
            assert_nothing_went_wrong(old_session)
            assert_nothing_went_wrong(new_session)


async def test_a_command_running_when_the_engine_dies_ends_its_progress_and_runs_once(
    runtime: Path, repo: Path
) -> None:
    # The spawn's setup records each run, then waits: the engine dies in the middle of it.
    (repo / ".wtls.toml").write_text('setup = ["sh -c \\"echo run >> ../runs.txt; sleep 4\\""]\n')
    commit_all(repo, "recipe")
    runs = repo.parent / "runs.txt"
    common = repo / ".git"
    async with session(repo) as server:
        await server.wait_for_state(lambda s: entry(s, repo) is not None, "the state")
        old = engine_pid(common)
        spawn = server.send_request(
            "workspace/executeCommand",
            {"command": "wtls.spawn", "arguments": [{"name": "slow", "trusted": True}]},
        )
        await server.wait_until(runs.exists, "the setup command to start")

        def progress(kind: str) -> list[Any]:
            return [
                m["params"]["token"]
                for m in server.messages
                if m.get("method") == "$/progress" and m["params"]["value"].get("kind") == kind
            ]

        begun = [t for t in progress("begin") if t not in progress("end")]
        assert begun, "the spawn's progress is open"
        os.kill(old, signal.SIGKILL)
        failed = await server.wait_response(spawn, "the spawn's answer")
        assert failed["error"]["code"] == REQUEST_FAILED
        await server.wait_until(
            lambda: all(t in progress("end") for t in begun), "the open progress ended"
        )
        wait_until(lambda: (p := engine_pid(common)) != old and p, "a new engine")
        await server.result("wtls/worktrees", {"uri": uri(repo)})
        assert runs.read_text() == "run\n"  # not run again by the new engine
