"""Conflict foresight live, through a real server over stdio: an edit in one worktree shows up
as a Warning on the colliding lines in a session opened on another worktree, clears when it is
undone, and an unsaved buffer counts too."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lsprotocol import types

from tests.gitutil import add_worktree, commit_all, git, make_repo
from tests.lsp.harness import open_session
from wtls.server.features.conflicts import TYPING_DELAY

#: ``wtls serve`` with the conflicts feature registered even if the feature list does not name

OLD = "done <index>"


def predicted(diags: Sequence[types.Diagnostic]) -> list[types.Diagnostic]:
    return [d for d in diags if d.code == "predicted-conflict"]


def entry(state: dict[str, Any], path: Path) -> dict[str, Any]:
    return next(w for w in state["worktrees"] if w["path"] == str(path))


def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    repo = make_repo(tmp_path).resolve()
    wipe = add_worktree(repo, tmp_path / "tasks-app-wipe", "feature/wipe").resolve()
    remaining = add_worktree(repo, tmp_path / "tasks-app-remaining", "feature/remaining").resolve()
    return repo, wipe, remaining


async def test_edit_on_disk_in_one_worktree_warns_in_the_other(tmp_path: Path) -> None:
    _, wipe, remaining = setup(tmp_path)
    cli = remaining / "cli.py"
    cli.write_text(cli.read_text().replace(OLD, "done <index> | remaining"))  # not committed
    async with open_session([remaining]) as s:
        await s.wait_for_state(lambda st: len(st["worktrees"]) == 3, "initial state")
        assert predicted(s.diagnostics(cli)) == []

        # Agent A edits the same line in its own worktree, on disk, without committing.
        (wipe / "cli.py").write_text((wipe / "cli.py").read_text().replace(OLD, OLD + " | wipe"))
        diags = await s.wait_for_diagnostics(cli, lambda d: len(predicted(d)) == 1, "warning")
        (warning,) = predicted(diags)
        assert warning.severity == types.DiagnosticSeverity.Warning
        assert (warning.range.start.line, warning.range.end.line) == (4, 4)  # the usage line
        assert warning.message == (
            "cli.py:5 will conflict with feature/wipe (../tasks-app-wipe, lines 5–5) when merged"
        )
        state = await s.wait_for_state(
            lambda st: bool(entry(st, remaining)["conflicts"]), "conflicts in the notification"
        )
        assert entry(state, remaining)["conflicts"] == [
            {"path": str(wipe), "branch": "feature/wipe", "files": ["cli.py"], "againstBase": False}
        ]
        assert entry(state, wipe)["conflicts"][0]["path"] == str(remaining)
        assert state["mergeOrder"] is not None
        assert {step["branch"] for step in state["mergeOrder"]} == {
            "feature/wipe",
            "feature/remaining",
        }

        result = await s.command("wtls.check", {"uri": cli.as_uri()})
        assert [c["branches"] for c in result["conflicts"]] == [
            ["feature/remaining", "feature/wipe"]
        ]
        assert result["conflicts"][0]["files"][0]["lines"][str(remaining)] == [[5, 5]]

        # Agent A undoes it: the warning and the notification entry clear.
        git(wipe, "checkout", "--", "cli.py")
        await s.wait_for_diagnostics(cli, lambda d: not predicted(d), "warning cleared")
        await s.wait_for_state(
            lambda st: not entry(st, remaining)["conflicts"], "conflicts cleared"
        )


async def test_a_written_file_is_predicted_before_its_worktree_is_read_again(
    tmp_path: Path,
) -> None:
    """The watcher's events start the prediction at once: B's warning does not wait for the
    re-read of A's status (held back here by a 60 s debounce after a first write)."""
    _, wipe, remaining = setup(tmp_path)
    cli = remaining / "cli.py"
    cli.write_text(cli.read_text().replace(OLD, "done <index> | remaining"))  # not committed
    async with open_session([remaining], settings={"debounceMs": 60_000}) as s:
        await s.wait_for_state(lambda st: len(st["worktrees"]) == 3, "initial state")
        # The first write after a quiet spell is read at once; the next waits the debounce.
        (wipe / "notes.txt").write_text("a note\n")
        await s.wait_for_state(lambda st: entry(st, wipe)["untracked"] == 1, "the note")
        (wipe / "cli.py").write_text((wipe / "cli.py").read_text().replace(OLD, OLD + " | wipe"))
        diags = await s.wait_for_diagnostics(
            cli, lambda d: len(predicted(d)) == 1, "warning before the re-read", timeout=20
        )
        assert "feature/wipe" in predicted(diags)[0].message
        # A's status is still the one read before the write: the prediction did not wait.
        assert entry(s.latest(), wipe)["unstaged"] == 0
        # Undoing the write clears the warning, again without waiting for the re-read.
        (wipe / "cli.py").write_text((wipe / "cli.py").read_text().replace(" | wipe", ""))
        await s.wait_for_diagnostics(cli, lambda d: not predicted(d), "cleared", timeout=20)


async def test_unsaved_buffer_edit_predicts_a_conflict(tmp_path: Path) -> None:
    _, wipe, remaining = setup(tmp_path)
    (wipe / "cli.py").write_text((wipe / "cli.py").read_text().replace(OLD, OLD + " | wipe"))
    commit_all(wipe, "Add wipe command")
    cli = remaining / "cli.py"
    on_disk = cli.read_text()
    async with open_session([remaining]) as s:
        await s.wait_for_state(lambda st: len(st["worktrees"]) == 3, "initial state")
        s.open_document(cli)
        s.change_document(cli, on_disk.replace(OLD, "done <index> | remaining"))  # unsaved
        diags = await s.wait_for_diagnostics(cli, lambda d: len(predicted(d)) == 1, "warning")
        assert predicted(diags)[0].range.start.line == 4
        assert "feature/wipe" in predicted(diags)[0].message
        assert cli.read_text() == on_disk  # nothing was written

        # Typing it back to what is on disk clears the prediction.
        s.change_document(cli, on_disk, version=3)
        await s.wait_for_diagnostics(cli, lambda d: not predicted(d), "warning cleared")


async def test_predicted_merge_request_shows_the_merged_file_with_unsaved_edits(
    tmp_path: Path,
) -> None:
    """`wtls/predictedMerge`: the file as git's merge would leave it, this buffer unsaved."""
    from pygls.exceptions import JsonRpcException

    _, wipe, remaining = setup(tmp_path)
    (wipe / "cli.py").write_text((wipe / "cli.py").read_text().replace(OLD, OLD + " | wipe"))
    commit_all(wipe, "Add wipe command")
    cli = remaining / "cli.py"
    on_disk = cli.read_text()
    async with open_session([remaining]) as s:
        await s.wait_for_state(lambda st: len(st["worktrees"]) == 3, "initial state")
        s.open_document(cli)
        s.change_document(cli, on_disk.replace(OLD, OLD + " | remaining"))  # unsaved

        async def ask(params: Any) -> Any:
            return await s.client.protocol.send_request_async("wtls/predictedMerge", params)

        merged = await ask({"uri": cli.as_uri(), "with": str(wipe)})
        assert merged.conflicted is True and merged.path == "cli.py"
        assert merged.ours == "feature/remaining" and merged.theirs == "feature/wipe"
        ours_line = f'USAGE = "usage: cli.py add <text> | list | {OLD} | remaining"'
        assert f"<<<<<<< feature/remaining\n{ours_line}\n=======\n" in merged.content
        assert ">>>>>>> feature/wipe\n" in merged.content
        base = await ask({"uri": cli.as_uri(), "with": "base"})
        assert base.conflicted is False and "| remaining" in base.content
        assert cli.read_text() == on_disk  # nothing was written
        for params, message in (
            ({"uri": cli.as_uri()}, "argument 'with' is missing"),
            ({"uri": cli.as_uri(), "with": 3}, "argument 'with' must be a string, got 3"),
            ({"uri": cli.as_uri(), "with": "no-such"}, "no worktree matches 'no-such'"),
            ({"uri": (tmp_path / "x.py").as_uri(), "with": "base"}, "not inside a git"),
        ):
            try:
                await ask(params)
            except JsonRpcException as exc:
                assert message in str(exc), (params, exc)
            else:
                raise AssertionError(f"{params} was accepted")


async def test_a_closed_windows_unsaved_edit_stops_warning_the_other_window(
    tmp_path: Path,
) -> None:
    """Two windows through one engine: window A's unsaved edit warns in window B; when A's
    session ends (its window closed, the buffer gone with it), B's warning clears."""
    _, wipe, remaining = setup(tmp_path)
    (wipe / "cli.py").write_text((wipe / "cli.py").read_text().replace(OLD, OLD + " | wipe"))
    commit_all(wipe, "Add wipe command")
    mine, theirs = wipe / "cli.py", remaining / "cli.py"
    on_disk = theirs.read_text()
    async with open_session([wipe]) as b:
        await b.wait_for_state(lambda st: len(st["worktrees"]) == 3, "B's initial state")
        async with open_session([remaining]) as a:
            await a.wait_for_state(lambda st: len(st["worktrees"]) == 3, "A's initial state")
            a.open_document(theirs)
            a.change_document(theirs, on_disk.replace(OLD, OLD + " | remaining"))  # unsaved
            await b.wait_for_diagnostics(mine, lambda d: len(predicted(d)) == 1, "B's warning")
            await b.wait_for_state(lambda st: bool(entry(st, wipe)["conflicts"]), "B's count")
        # A shut down and exited; nothing reached the disk, and the engine serves B on.
        assert theirs.read_text() == on_disk
        await b.wait_for_diagnostics(mine, lambda d: not predicted(d), "B's warning cleared")
        await b.wait_for_state(lambda st: not entry(st, wipe)["conflicts"], "B's count cleared")


async def test_a_window_closed_while_its_own_prediction_runs_leaves_the_other_up_to_date(
    tmp_path: Path,
) -> None:
    """Window A types after a pause (its session starts the shared prediction run at once) and
    closes right away: that run is cancelled with A's session, and the run the engine owes
    window B is not lost with it (B's warning about A's unsaved edit clears)."""
    _, wipe, remaining = setup(tmp_path)
    (wipe / "cli.py").write_text((wipe / "cli.py").read_text().replace(OLD, OLD + " | wipe"))
    commit_all(wipe, "Add wipe command")
    mine, theirs = wipe / "cli.py", remaining / "cli.py"
    edited = theirs.read_text().replace(OLD, OLD + " | remaining")
    async with open_session([wipe]) as b:
        await b.wait_for_state(lambda st: len(st["worktrees"]) == 3, "B's initial state")
        async with open_session([remaining]) as a:
            await a.wait_for_state(lambda st: len(st["worktrees"]) == 3, "A's initial state")
            a.open_document(theirs)
            a.change_document(theirs, edited)  # unsaved
            await b.wait_for_diagnostics(mine, lambda d: len(predicted(d)) == 1, "B's warning")
            # The person pauses, types once more, and closes the window at once.
            await asyncio.sleep(TYPING_DELAY + 0.1)
            a.change_document(theirs, edited + "# more\n", version=3)
        await b.wait_for_diagnostics(mine, lambda d: not predicted(d), "B's warning cleared")
