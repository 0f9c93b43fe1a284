"""``wtls.land`` through a real ``wtls serve``: the queue stops at the failing merge."""

from __future__ import annotations

from pathlib import Path

from tests.core.test_semantic import TEST_CMD, call_total, project, rename_total
from tests.gitutil import git
from tests.lsp.harness import open_session
from tests.lsp.test_commands_lsp import invalid, refused


async def test_land_stops_at_the_failing_merge_and_leaves_base_green(tmp_path: Path) -> None:
    repo = project(tmp_path)
    rename = rename_total(repo)
    report = call_total(repo)
    before = git(repo, "rev-parse", "main").strip()
    async with open_session([repo]) as s:
        await s.wait_for_state(lambda st: len(st.get("worktrees", [])) == 3, "three worktrees")
        result = await s.command(
            "wtls.land", {"worktrees": [str(rename), "feature/report"], "command": TEST_CMD}
        )
        assert result["baseBefore"] == before
        statuses = [(st["worktree"], st["status"]) for st in result["steps"]]
        # One lands; the other fails merged on top of it, and the queue stops there.
        assert [s for _, s in statuses] == ["landed", "fail"], result
        assert {w for w, _ in statuses} == {str(rename), str(report)}
        after = git(repo, "rev-parse", "main").strip()
        assert after == result["baseAfter"] == result["steps"][0]["commit"] != before
        reports = [r for rs in s.client.progress_reports.values() for r in rs]
        assert any(getattr(r, "cancellable", None) for r in reports)


async def test_land_refuses_bad_input_and_changes_nothing(tmp_path: Path) -> None:
    repo = project(tmp_path)
    rename_total(repo)
    before = git(repo, "rev-parse", "main").strip()
    async with open_session([repo]) as s:
        await s.wait_for_state(lambda st: bool(st.get("worktrees")), "initial state")
        assert "test command" in await refused(s, "wtls.land", {})
        assert "timeout" in await refused(s, "wtls.land", {"command": "true", "timeout": 0})
        assert "worktrees" in await invalid(s, "wtls.land", {"worktrees": "feature/rename"})
    assert git(repo, "rev-parse", "main").strip() == before
