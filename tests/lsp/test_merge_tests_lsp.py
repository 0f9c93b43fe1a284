"""``wtls.testMerges`` through a real ``wtls serve``: the result, the diagnostics, trust."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from tests.core.test_semantic import TEST_CMD, call_total, project, rename_total
from tests.lsp.harness import open_session


async def test_test_merges_names_the_pair_in_both_windows_diagnostics(tmp_path: Path) -> None:
    repo = project(tmp_path)
    rename = rename_total(repo)
    report = call_total(repo, commit=False)
    async with open_session([report]) as s:
        await s.wait_for_state(lambda st: bool(st.get("worktrees")), "initial state")
        result = await s.command("wtls.testMerges", {"command": TEST_CMD})
        (conflict,) = result["semanticConflicts"]
        assert set(conflict["worktrees"]) == {str(rename), str(report)}
        # The failing test is in a file this worktree added: the Error is on its line.
        (diag,) = await s.wait_for_diagnostics(
            report / "test_report.py", lambda d: len(d) == 1, "the semantic conflict"
        )
        assert diag.severity == types.DiagnosticSeverity.Error
        assert diag.range.start.line == 7
        assert "feature/rename" in diag.message and "unittest" in diag.message
        reports = [r for rs in s.client.progress_reports.values() for r in rs]
        assert any(getattr(r, "cancellable", None) for r in reports)


async def test_an_untrusted_workspace_does_not_run_the_config_test(tmp_path: Path) -> None:
    repo = project(tmp_path)
    (repo / ".wtls.toml").write_text('test = "touch ran"\n')
    from tests.gitutil import commit_all

    commit_all(repo, "config")
    rename_total(repo)
    async with open_session([repo], trusted=False) as s:
        await s.wait_for_state(lambda st: bool(st.get("worktrees")), "initial state")
        result = await s.command("wtls.testMerges", {})
        assert "not trusted" in result["notRun"] and result["runs"] == []
