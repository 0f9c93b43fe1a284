"""``testOnSettle`` through a real ``wtls serve``: the merge tests run when changes settle."""

from __future__ import annotations

import json
from pathlib import Path

from lsprotocol import types

from tests.core.test_semantic import TEST_CMD, project, rename_total
from tests.gitutil import add_worktree, commit_all, git
from tests.lsp.harness import Session, open_session
from wtls.server.config import parse_settings

REPORT = "import calc\n\n\ndef report(items):\n    return f'total {calc.total(items)}'\n"
TEST_REPORT = (
    "import unittest\n\nimport report\n\n\nclass ReportTest(unittest.TestCase):\n"
    "    def test_report(self):\n"
    "        self.assertEqual(report.report([2]), 'total 2')\n"
)


def configured_project(tmp_path: Path) -> tuple[Path, Path]:
    """A project whose .wtls.toml has a `test`, a committed rename, and an empty worktree."""
    repo = project(tmp_path)
    (repo / ".wtls.toml").write_text(f"test = {json.dumps(TEST_CMD)}\n")
    commit_all(repo, "config")
    rename_total(repo)
    report = add_worktree(repo, tmp_path / "feature-report", "feature/report")
    return repo, report


def new_caller(report: Path) -> None:
    """The agent of ``report`` writes a caller of the old name (uncommitted)."""
    (report / "report.py").write_text(REPORT)
    (report / "test_report.py").write_text(TEST_REPORT)


async def wait_for_settle_note(s: Session, why: str) -> None:
    await s.wait_until(
        lambda: any(
            "tests on settle: not run" in m.message and why in m.message
            for m in s.client.log_messages
        ),
        f"the note that nothing ran ({why})",
        timeout=60,
    )


def scratch_worktrees(repo: Path) -> list[str]:
    listing = git(repo, "worktree", "list", "--porcelain")
    return [line for line in listing.splitlines() if "wtls/scratch" in line]


async def test_a_settled_change_shows_the_semantic_conflict_without_a_command(
    tmp_path: Path,
) -> None:
    _, report = configured_project(tmp_path)
    async with open_session([report], settings={"testOnSettle": True}) as s:
        await s.wait_for_state(lambda st: len(st.get("worktrees", [])) == 3, "three worktrees")
        new_caller(report)
        (diag,) = await s.wait_for_diagnostics(
            report / "test_report.py", lambda d: len(d) == 1, "the semantic conflict", timeout=90
        )
        assert diag.severity == types.DiagnosticSeverity.Error
        assert "feature/rename" in diag.message and "unittest" in diag.message


async def test_with_the_setting_off_nothing_runs_until_it_is_turned_on(tmp_path: Path) -> None:
    repo, report = configured_project(tmp_path)
    async with open_session([report]) as s:
        await s.wait_for_state(lambda st: len(st.get("worktrees", [])) == 3, "three worktrees")
        new_caller(report)
        await wait_for_settle_note(s, "testOnSettle is off")
        assert scratch_worktrees(repo) == []
        assert not s.diagnostics(report / "test_report.py")
        # Turned on without a restart: the next settled change runs the tests.
        s.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"wtls": {"testOnSettle": True}})
        )
        (report / "report.py").write_text(REPORT + "# reworded\n")
        (diag,) = await s.wait_for_diagnostics(
            report / "test_report.py", lambda d: len(d) == 1, "the semantic conflict", timeout=90
        )
        assert diag.severity == types.DiagnosticSeverity.Error


async def test_an_untrusted_workspace_never_runs_the_config_test(tmp_path: Path) -> None:
    repo, report = configured_project(tmp_path)
    async with open_session([report], settings={"testOnSettle": True}, trusted=False) as s:
        await s.wait_for_state(lambda st: len(st.get("worktrees", [])) == 3, "three worktrees")
        new_caller(report)
        await wait_for_settle_note(s, "not trusted")
        assert scratch_worktrees(repo) == []


async def test_without_a_test_in_the_config_nothing_runs(tmp_path: Path) -> None:
    repo = project(tmp_path)
    rename_total(repo)
    report = add_worktree(repo, tmp_path / "feature-report", "feature/report")
    async with open_session([report], settings={"testOnSettle": True}) as s:
        await s.wait_for_state(lambda st: len(st.get("worktrees", [])) == 3, "three worktrees")
        new_caller(report)
        await wait_for_settle_note(s, "no `test`")
        assert scratch_worktrees(repo) == []


def test_a_bad_test_on_settle_value_is_reported_and_off() -> None:
    settings, problems = parse_settings({"testOnSettle": "yes"})
    assert settings.testOnSettle is False
    assert any("testOnSettle" in p for p in problems)
