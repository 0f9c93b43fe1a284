"""Broken worktree links live, through a real server over stdio: detected with no editor action,
explained, repaired by the quick fix, cleared; worktrees moved with the editor following."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.gitutil import add_worktree, git
from tests.lsp.harness import DEFAULT_TIMEOUT, Session, open_session, uri
from wtls.errors import REFUSED_CODE
from wtls.server.rpc import to_dict

MOVED = "wtls/moved"


def errors(diagnostics: Any) -> list[types.Diagnostic]:
    """The Error diagnostics among ``diagnostics``."""
    return [d for d in diagnostics if d.severity == types.DiagnosticSeverity.Error]


def _command_or_code_action(obj: Any, _: type) -> types.Command | types.CodeAction:
    # lsprotocol 2025.0.0 reads any object with a "command" key as a Command, but a CodeAction
    # carries its Command under that key: a Command's "command" is a string.
    if isinstance(obj.get("command"), str):
        return converter_of_client.structure(obj, types.Command)  # type: ignore[no-any-return]
    return converter_of_client.structure(obj, types.CodeAction)  # type: ignore[no-any-return]


converter_of_client: Any = None


async def quick_fixes(s: Session, path: Path, diagnostic: types.Diagnostic) -> list[Any]:
    """Ask for code actions on ``diagnostic`` as an editor does when the cursor is on it."""
    global converter_of_client
    converter_of_client = s.client.protocol._converter
    converter_of_client.register_structure_hook(
        types.Command | types.CodeAction, _command_or_code_action
    )
    result = await asyncio.wait_for(
        s.client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri(path)),
                range=diagnostic.range,
                context=types.CodeActionContext(diagnostics=[diagnostic]),
            )
        ),
        DEFAULT_TIMEOUT,
    )
    return list(result or [])


def record_moves(s: Session) -> list[dict[str, Any]]:
    """Collect ``wtls/moved`` notifications."""
    seen: list[dict[str, Any]] = []

    @s.client.feature(MOVED)
    def on_moved(params: Any) -> None:
        payload = to_dict(params)
        # pygls turns unknown JSON objects into namedtuples, which rename the keyword "from".
        if "_0" in payload:
            payload = {"from": payload.pop("_0"), **payload}
        seen.append(payload)
        s._signal()

    return seen


async def test_main_moved_is_detected_live_and_repaired_by_the_quick_fix(
    repo: Path, tmp_path: Path
) -> None:
    wipe = add_worktree(repo, tmp_path / "tasks app – wïpe", "feature/wipe")
    dotgit = wipe / ".git"
    async with open_session([wipe]) as s:
        await s.wait_for_state(lambda st: len(st["worktrees"]) == 2, "initial state")
        assert errors(s.diagnostics(dotgit)) == []

        # From a terminal, no editor action: the main worktree is renamed.
        moved = tmp_path / "tasks-app-moved"
        shutil.move(repo, moved)
        found = await s.wait_for_diagnostics(
            dotgit, lambda ds: bool(errors(ds)), "broken-link error on the .git file"
        )
        [diagnostic] = errors(found)
        assert diagnostic.code == "broken-link" and diagnostic.source == "wtls"
        # Plain words, where the repository is now, and the exact command.
        assert "moved" in diagnostic.message and str(moved) in diagnostic.message
        assert "wtls repair --apply" in diagnostic.message

        [action] = await quick_fixes(s, dotgit, diagnostic)
        assert action.title == "Repair worktree links"
        assert action.command.command == "wtls.repair"
        n = len(s.states)
        result = await s.command("wtls.repair", to_dict(action.command.arguments[0]))
        assert result["applied"] is True and result["verified"] is True, result
        assert str(dotgit) in {c["file"] for c in result["changed"]}

        await s.wait_for_diagnostics(dotgit, lambda ds: not errors(ds), "error cleared")
        state = await s.wait_for_state(
            lambda st: st.get("mainWorktree") == str(moved.resolve()), "state after repair", since=n
        )
        assert state["this"] == str(wipe.resolve())
        assert git(wipe, "status", "--porcelain") == ""


async def test_dry_run_repair_command_changes_nothing(repo: Path, tmp_path: Path) -> None:
    wipe = add_worktree(repo, tmp_path / "wipe", "feature/wipe")
    async with open_session([repo]) as s:
        await s.wait_for_state(lambda st: len(st["worktrees"]) == 2, "initial state")
        result = await s.command("wtls.repair", {})
        assert result["applied"] is False and result["verified"] is True
        assert result["broken"] == [] and result["changed"] == []
        before = (wipe / ".git").read_text()
        shutil.move(wipe, tmp_path / "wipe-moved")
        result = await s.command("wtls.repair", {"paths": [str(tmp_path / "wipe-moved")]})
        assert [b["kind"] for b in result["broken"]] == ["folder-moved"]
        assert result["applied"] is False and result["changed"] == []
        assert (tmp_path / "wipe-moved" / ".git").read_text() == before


async def test_folder_moved_by_hand_into_the_workspace_gets_error_and_fix(
    repo: Path, tmp_path: Path
) -> None:
    wipe = add_worktree(repo, tmp_path / "wipe", "feature/wipe")
    elsewhere = tmp_path / "agents"
    elsewhere.mkdir()
    new = elsewhere / "wipe"
    shutil.move(wipe, new)
    dotgit = new / ".git"
    async with open_session([repo, new]) as s:
        found = await s.wait_for_diagnostics(
            dotgit, lambda ds: bool(errors(ds)), "folder-moved error on the moved .git file"
        )
        [diagnostic] = errors(found)
        assert diagnostic.code == "folder-moved"
        assert str(wipe) in diagnostic.message and "moved by hand" in diagnostic.message
        [action] = await quick_fixes(s, dotgit, diagnostic)
        result = await s.command("wtls.repair", to_dict(action.command.arguments[0]))
        assert result["verified"] is True, result
        await s.wait_for_diagnostics(dotgit, lambda ds: not errors(ds), "error cleared")
        await s.wait_for_state(
            lambda st: str(new.resolve()) in {w["path"] for w in st["worktrees"]},
            "the worktree listed at its new place",
        )


async def test_main_repository_deleted_is_said_once_and_files_are_kept(
    repo: Path, tmp_path: Path
) -> None:
    wipe = add_worktree(repo, tmp_path / "wipe", "feature/wipe")
    (wipe / "cli.py").write_text("# precious\n")
    dotgit = wipe / ".git"
    async with open_session([wipe]) as s:
        await s.wait_for_state(lambda st: len(st["worktrees"]) == 2, "initial state")
        shutil.rmtree(repo)
        found = await s.wait_for_diagnostics(
            dotgit, lambda ds: bool(errors(ds)), "main-deleted error on the .git file"
        )
        [diagnostic] = errors(found)
        assert "history" in diagnostic.message and "intact" in diagnostic.message
        # No quick fix pretends to repair what git cannot.
        assert await quick_fixes(s, dotgit, diagnostic) == []
        # More edits in the worktree: no new error popup, no crash loop.
        for i in range(3):
            (wipe / f"note{i}.txt").write_text("x\n")
        await s.command("wtls.refresh", {})
        errors_shown = [
            m
            for m in s.client.messages
            if m.type == types.MessageType.Error and "history" in m.message
        ]
        assert len(errors_shown) == 1
        assert (wipe / "cli.py").read_text() == "# precious\n"


async def test_move_command_announces_the_move(repo: Path, tmp_path: Path) -> None:
    wipe = add_worktree(repo, tmp_path / "wipe", "feature/wipe")
    async with open_session([wipe]) as s:
        seen = record_moves(s)
        await s.wait_for_state(lambda st: len(st["worktrees"]) == 2, "initial state")
        dest = tmp_path / "wïpe moved"
        result = await s.command("wtls.move", {"worktree": str(wipe), "newPath": str(dest)})
        assert result == {"from": str(wipe), "to": str(dest), "branch": "feature/wipe"}
        await s.wait_until(lambda: seen, "wtls/moved")
        assert seen == [result]
        await s.wait_for_state(
            lambda st: str(dest) in {w["path"] for w in st["worktrees"]}, "new path listed"
        )
        assert seen == [result]  # announced once, not again by the refresh


async def test_move_made_from_a_terminal_is_announced(repo: Path, tmp_path: Path) -> None:
    wipe = add_worktree(repo, tmp_path / "wipe", "feature/wipe")
    async with open_session([repo]) as s:
        seen = record_moves(s)
        await s.wait_for_state(lambda st: len(st["worktrees"]) == 2, "initial state")
        git(repo, "worktree", "move", str(wipe), str(tmp_path / "wipe2"))
        await s.wait_until(lambda: seen, "wtls/moved after git worktree move")
        assert seen[0]["from"] == str(wipe) and seen[0]["to"] == str(tmp_path / "wipe2")


async def test_move_refusals_are_refused_errors(repo: Path, tmp_path: Path) -> None:
    wipe = add_worktree(repo, tmp_path / "wipe", "feature/wipe")
    git(repo, "worktree", "lock", str(wipe))
    async with open_session([repo]) as s:
        await s.wait_for_state(lambda st: len(st["worktrees"]) == 2, "initial state")
        for args, reason in (
            ({"worktree": str(repo), "newPath": str(tmp_path / "x")}, "main worktree"),
            ({"worktree": "feature/wipe", "newPath": str(tmp_path / "x")}, "locked"),
        ):
            with pytest.raises(JsonRpcException) as err:
                await s.command("wtls.move", args)
            assert err.value.code == REFUSED_CODE and reason in str(err.value)
        assert wipe.is_dir() and not (tmp_path / "x").exists()


async def test_window_on_a_worktree_moved_from_a_terminal(repo: Path, tmp_path: Path) -> None:
    # The agent's own window: its folder is the one that moves (a path lost and a path added
    # in the same batch of events).
    wipe = add_worktree(repo, tmp_path / "wipe", "feature/wipe")
    async with open_session([wipe]) as s:
        seen = record_moves(s)
        await s.wait_for_state(lambda st: st["this"] == str(wipe), "initial state")
        git(repo, "worktree", "move", str(wipe), str(tmp_path / "wipe2"))
        await s.wait_until(lambda: seen, "wtls/moved for this window's own folder")
        assert seen[0]["to"] == str(tmp_path / "wipe2")
        await s.wait_until(
            lambda: any(
                str(wipe) in m.message and "does not exist" in m.message
                for m in s.client.log_messages
            ),
            "the window is told its folder is gone",
        )
