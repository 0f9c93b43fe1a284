"""Review a worktree through a real ``wtls serve``: ``wtls/review``, ``wtls/fileAt`` and the
``wtls.takeIntoBase`` / ``wtls.discardInWorktree`` commands."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pygls.exceptions import JsonRpcException

from tests.gitutil import add_worktree, commit_all, git
from tests.lsp.harness import DEFAULT_TIMEOUT, Session, open_session
from wtls.errors import REFUSED_CODE
from wtls.server.rpc import to_dict


async def ask(s: Session, method: str, params: Any) -> Any:
    result = await asyncio.wait_for(
        s.client.protocol.send_request_async(method, params), DEFAULT_TIMEOUT
    )
    return to_dict(result)


async def test_review_request_then_take_and_discard(repo: Path, tmp_path: Path) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature/r").resolve()
    original = (repo / "cli.py").read_text()
    (wt / "cli.py").write_text(original + "# committed\n")
    commit_all(wt, "edit cli")
    (wt / "notes.md").write_text("an agent's notes\n")  # untracked
    async with open_session([repo]) as s:
        await s.wait_for_state(lambda st: len(st["worktrees"]) == 2, "initial state")
        review = await ask(s, "wtls/review", {"worktree": str(wt)})
        assert review["branch"] == "feature/r" and review["base"] == "main"
        assert review["mergeBase"] == git(repo, "rev-parse", "main")
        assert review["patch"] is None
        files = {f["path"]: f["status"] for f in review["files"]}
        assert files == {"cli.py": "modified", "notes.md": "added"}
        left = await ask(s, "wtls/fileAt", {"rev": review["mergeBase"], "path": "cli.py"})
        assert left == {"content": original, "exists": True, "binary": False}
        absent = await ask(s, "wtls/fileAt", {"rev": review["mergeBase"], "path": "notes.md"})
        assert absent["exists"] is False

        taken = await s.command("wtls.takeIntoBase", {"worktree": "feature/r", "path": "cli.py"})
        assert taken["action"] == "take" and taken["changed"] == str(repo)
        assert "as an uncommitted change" in taken["message"]
        assert (repo / "cli.py").read_text() == original + "# committed\n"

        gone = await s.command(
            "wtls.discardInWorktree", {"worktree": wt.as_uri(), "path": "notes.md"}
        )
        assert not (wt / "notes.md").exists()
        ref = gone["backupRef"]
        assert ref.startswith("refs/wtls/backup/feature/r-discard-") and ref in gone["message"]
        assert git(repo, "show", f"{ref}:notes.md") == "an agent's notes"

        # Taking again is refused: base now has that change uncommitted.
        with pytest.raises(JsonRpcException) as info:
            await s.command("wtls.takeIntoBase", {"worktree": "feature/r", "path": "cli.py"})
        assert info.value.code == REFUSED_CODE and "has changes in cli.py" in str(info.value)
        for method, params, message in (
            ("wtls/review", {}, "argument 'worktree' is missing"),
            ("wtls/review", {"worktree": "no-such"}, "no worktree matches 'no-such'"),
            ("wtls/fileAt", {"rev": "HEAD", "path": "cli.py"}, "not a full commit name"),
            ("wtls/fileAt", {"rev": review["mergeBase"], "path": "../x"}, "not a path inside"),
        ):
            with pytest.raises(JsonRpcException) as info:
                await ask(s, method, params)
            assert message in str(info.value), (params, info.value)
        with pytest.raises(JsonRpcException) as info:
            await s.command("wtls.discardInWorktree", {"worktree": "feature/r", "path": "../x"})
        assert info.value.code == REFUSED_CODE
