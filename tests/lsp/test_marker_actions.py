"""Conflict quick fixes through a real server over stdio: accept current, incoming, both, base."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lsprotocol import types

from tests.gitutil import add_worktree, commit_all, git
from tests.lsp.harness import DEFAULT_TIMEOUT, Session, open_session, uri
from wtls.git import run_git
from wtls.markers import scan_text, split_lines
from wtls.server.features.marker_actions import conflict_actions

ALL_TITLES = [
    "Accept current change",
    "Accept incoming change",
    "Accept both changes",
    "Accept base",
]


def markers(diags: Any) -> list[types.Diagnostic]:
    return [d for d in diags if d.code == "conflict-marker"]


def stage(repo: Path, number: int, rel: str) -> str:
    """The exact content of index stage ``number`` of ``rel`` (1 base, 2 ours, 3 theirs)."""
    return run_git(["show", f":{number}:{rel}"], repo).stdout.decode()


async def code_actions(
    s: Session,
    path: Path,
    start: int,
    end: int | None = None,
    diagnostics: list[types.Diagnostic] | None = None,
    only: list[str] | None = None,
) -> list[types.CodeAction]:
    """Ask for code actions on lines ``start..end`` as an editor does for a cursor/selection."""
    end = start if end is None else end
    result = await asyncio.wait_for(
        s.client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri(path)),
                range=types.Range(
                    start=types.Position(line=start, character=0),
                    end=types.Position(line=end, character=1),
                ),
                context=types.CodeActionContext(diagnostics=diagnostics or [], only=only),
            )
        ),
        DEFAULT_TIMEOUT,
    )
    found = list(result or [])
    assert all(isinstance(a, types.CodeAction) for a in found), found
    return found  # type: ignore[return-value]


def apply_text_edits(text: str, edits: list[types.TextEdit]) -> str:
    """Apply LSP text edits (UTF-16 positions) to ``text``, last first, as a client does."""
    lines = split_lines(text)

    def offset(position: types.Position) -> int:
        start = sum(len(x) for x in lines[: position.line])
        if position.line >= len(lines):
            return start
        units = 0
        for index, ch in enumerate(lines[position.line]):
            if units >= position.character:
                return start + index
            units += 2 if ord(ch) > 0xFFFF else 1
        return start + len(lines[position.line])

    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character))[::-1]:
        text = text[: offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end) :]
    return text


def only_edit(action: types.CodeAction, path: Path, version: int | None) -> list[types.TextEdit]:
    """The edits of a single-document action, checking it targets ``path`` at ``version``."""
    assert action.kind == types.CodeActionKind.QuickFix
    assert action.edit is not None and action.edit.document_changes is not None
    (change,) = action.edit.document_changes
    assert isinstance(change, types.TextDocumentEdit)
    assert change.text_document.uri == uri(path)
    assert change.text_document.version == version
    return [e for e in change.edits if isinstance(e, types.TextEdit)]


def by_title(actions: list[types.CodeAction]) -> dict[str, types.CodeAction]:
    return {a.title: a for a in actions}


async def test_quick_fixes_on_a_real_merge_conflict(repo: Path, tmp_path: Path) -> None:
    git(repo, "config", "merge.conflictStyle", "diff3")
    cli = repo / "cli.py"
    base_text = cli.read_text()
    other = add_worktree(repo, tmp_path / "other", "feature/other")
    (other / "cli.py").write_text(base_text.replace("return 0", "return 2  # theirs"))
    commit_all(other, "theirs")
    cli.write_text(base_text.replace("return 0", "return 1  # ours"))
    commit_all(repo, "ours")
    git(repo, "merge", "feature/other", check=False)
    text = cli.read_text()
    (block,) = scan_text(text).blocks
    async with open_session([repo]) as s:
        await s.wait_for_state(lambda st: bool(st["worktrees"]), "initial state")
        s.open_document(cli)
        diags = await s.wait_for_diagnostics(cli, lambda d: len(markers(d)) == 1, "marker")
        diagnostic = markers(diags)[0]
        # The cursor on the diagnostic, as an editor asks: one fix per side, base included.
        actions = await code_actions(s, cli, diagnostic.range.start.line, diagnostics=[diagnostic])
        assert [a.title for a in actions] == ALL_TITLES
        for action in actions:
            assert list(action.diagnostics or []) == [diagnostic]
            (edit,) = only_edit(action, cli, version=1)
            # Exactly the block's lines, through the closer's line break.
            assert (edit.range.start.line, edit.range.start.character) == (block.start_line, 0)
            assert (edit.range.end.line, edit.range.end.character) == (block.end_line + 1, 0)
        fixes = by_title(actions)
        assert apply_text_edits(text, only_edit(fixes["Accept current change"], cli, 1)) == (
            stage(repo, 2, "cli.py")
        )
        assert apply_text_edits(text, only_edit(fixes["Accept incoming change"], cli, 1)) == (
            stage(repo, 3, "cli.py")
        )
        assert apply_text_edits(text, only_edit(fixes["Accept base"], cli, 1)) == (
            stage(repo, 1, "cli.py")
        )
        both = apply_text_edits(text, only_edit(fixes["Accept both changes"], cli, 1))
        assert "return 1  # ours\n    return 2  # theirs\n" in both
        assert "<<<<<<<" not in both and ">>>>>>>" not in both

        # Applying the fix in the buffer clears the diagnostic (the editor sends the change).
        s.change_document(cli, stage(repo, 2, "cli.py"), version=2)
        await s.wait_for_diagnostics(cli, lambda d: not markers(d), "markers cleared")
        assert await code_actions(s, cli, block.start_line) == []


BUFFER = (
    "head\r\n"  # 0
    "<<<<<<< HEAD\r\n"  # 1
    "first ours\r\n"  # 2
    "=======\r\n"  # 3
    "first theirs\r\n"  # 4
    ">>>>>>> side\r\n"  # 5
    "middle\r\n"  # 6
    "<<<<<<<<< outer\r\n"  # 7
    "<<<<<<< inner\r\n"  # 8
    "inner ours\r\n"  # 9
    "=======\r\n"  # 10
    "inner theirs\r\n"  # 11
    ">>>>>>> inner\r\n"  # 12
    "=========\r\n"  # 13
    "outer theirs 🎉\r\n"  # 14
    ">>>>>>>>> outer 🎉"  # 15 (no line break at the end of the buffer)
)


async def test_the_block_under_the_cursor_in_an_unsaved_buffer(repo: Path) -> None:
    path = repo / "notes.txt"  # never written to disk: only the editor has it
    async with open_session([repo]) as s:
        # Open once the repository is read: a buffer opened earlier is not scanned until edited.
        await s.wait_for_state(lambda st: bool(st["worktrees"]), "initial state")
        s.open_document(path, BUFFER, language="plaintext")
        await s.wait_for_diagnostics(path, lambda d: len(markers(d)) == 3, "three blocks")

        # Cursor in the first block's "theirs": only that block, CRLF kept, no base action.
        actions = by_title(await code_actions(s, path, 4))
        assert list(actions) == ALL_TITLES[:3]
        (edit,) = only_edit(actions["Accept incoming change"], path, version=1)
        assert (edit.range.start.line, edit.range.end.line, edit.range.end.character) == (1, 6, 0)
        assert edit.new_text == "first theirs\r\n"

        # Cursor inside the nested size-7 block: the inner block, not the size-9 one around it.
        actions = by_title(await code_actions(s, path, 9))
        (edit,) = only_edit(actions["Accept current change"], path, version=1)
        assert (edit.range.start.line, edit.range.end.line) == (8, 13)
        assert edit.new_text == "inner ours\r\n"

        # Cursor on the outer block's own lines: the whole outer block. Its closer ends the
        # buffer without a line break, so the edit ends at that line's last UTF-16 unit.
        actions = by_title(await code_actions(s, path, 14))
        (edit,) = only_edit(actions["Accept incoming change"], path, version=1)
        assert (edit.range.start.line, edit.range.start.character) == (7, 0)
        assert (edit.range.end.line, edit.range.end.character) == (15, len(">>>>>>>>> outer ") + 2)
        assert edit.new_text == "outer theirs 🎉"  # the buffer still ends without a break
        resolved = apply_text_edits(BUFFER, [edit])
        assert resolved.endswith("middle\r\nouter theirs 🎉")

        # Outside every block, or when only refactorings are wanted: nothing.
        assert await code_actions(s, path, 0) == []
        assert await code_actions(s, path, 6) == []
        assert await code_actions(s, path, 2, only=[types.CodeActionKind.Refactor]) == []
        assert len(await code_actions(s, path, 2, only=[types.CodeActionKind.QuickFix])) == 3

        # The buffer changes: the fixes follow the new text and version.
        s.change_document(path, "x\n<<<<<<< a\nA\n=======\nB\n>>>>>>> b\n", version=7)
        await s.wait_for_diagnostics(path, lambda d: len(markers(d)) == 1, "one block")
        actions = by_title(await code_actions(s, path, 3))
        (edit,) = only_edit(actions["Accept both changes"], path, version=7)
        assert (edit.range.start.line, edit.range.end.line, edit.new_text) == (1, 6, "A\nB\n")


async def test_a_file_that_is_not_open(repo: Path) -> None:
    on_disk = repo / "committed.txt"
    on_disk.write_text("<<<<<<< mine\nm\n||||||| base\nb\n=======\nt\n>>>>>>> theirs\ntail\n")
    latin = repo / "latin1.txt"
    latin.write_bytes(b"<<<<<<< caf\xe9\nm\n=======\nt\n>>>>>>> b\n")
    async with open_session([repo]) as s:
        actions = by_title(await code_actions(s, on_disk, 1))
        assert list(actions) == ALL_TITLES
        # Not open in the editor: no version to check against.
        (edit,) = only_edit(actions["Accept base"], on_disk, version=None)
        assert apply_text_edits(on_disk.read_text(), [edit]) == "b\ntail\n"
        # Not UTF-8: the editor shows other text than the bytes, so no edit is offered.
        assert await code_actions(s, latin, 1) == []
        assert await code_actions(s, repo / "missing.txt", 0) == []


def test_plain_changes_for_a_client_without_document_changes() -> None:
    text = "<<<<<<< a\nx\n=======\ny\n>>>>>>> b"
    (block,) = scan_text(text).blocks
    actions = conflict_actions(
        uri="file:///t.txt", text=text, version=3, block=block, document_changes=False
    )
    assert [a.title for a in actions] == ALL_TITLES[:3]
    edit = actions[0].edit
    assert edit is not None and edit.document_changes is None and edit.changes is not None
    (text_edit,) = edit.changes["file:///t.txt"]
    assert text_edit.new_text == "x"
    assert (text_edit.range.end.line, text_edit.range.end.character) == (4, len(">>>>>>> b"))
    assert actions[0].diagnostics is None
