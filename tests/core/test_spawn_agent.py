"""``wtls spawn NAME --agent claude`` writes wtls's hooks into the new worktree's
``.claude/settings.local.json``: merged into an existing one, never a tracked file, and
``git status`` stays clean in every worktree (real CLI, real repositories)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.core.lifecycle_util import run_wtls
from tests.gitutil import commit_all, git
from wtls import lifecycle as lc
from wtls.errors import Refused
from wtls.lifecycle.agent_hooks import CLAUDE_EVENTS, CLAUDE_HOOK_COMMAND, merged_claude_settings


def _clean(*worktrees: Path) -> None:
    for wt in worktrees:
        assert git(wt, "status", "--porcelain") == "", wt


def _commands(settings: dict[str, object], event: str) -> list[str]:
    groups = settings["hooks"][event]  # type: ignore[index]
    return [h["command"] for g in groups for h in g["hooks"]]


def test_spawn_agent_claude_keeps_status_clean(repo: Path) -> None:
    out = run_wtls(repo, "spawn", "hooks", "--agent", "claude", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    wt = Path(result["path"])
    settings_file = wt / ".claude" / "settings.local.json"
    assert result["agentHooks"] == str(settings_file)
    settings = json.loads(settings_file.read_text())
    for event in CLAUDE_EVENTS:
        assert _commands(settings, event) == [CLAUDE_HOOK_COMMAND]
    _clean(repo, wt)
    # The self-ignoring file beside it, not the repository's shared excludes.
    assert (wt / ".claude" / ".gitignore").is_file()
    exclude = repo / ".git" / "info" / "exclude"
    assert not exclude.exists() or ".claude" not in exclude.read_text()
    # Claude Code's hook, as configured, records a state in that worktree.
    out = run_wtls(repo, "list", "--json", "--no-size")
    assert out.returncode == 0


def test_spawn_agent_claude_merges_and_uses_info_exclude_when_claude_dir_is_tracked(
    repo: Path,
) -> None:
    (repo / ".claude").mkdir()
    (repo / ".claude" / "settings.json").write_text('{"permissions": {"allow": ["Bash(ls)"]}}\n')
    commit_all(repo, "shared claude settings")
    # A settings.local.json the person copies into every worktree (.worktreeinclude).
    (repo / ".gitignore").write_text("tasks.json\n.claude/settings.local.json\n")
    (repo / ".worktreeinclude").write_text(".claude/settings.local.json\n")
    commit_all(repo, "include local claude settings")
    mine = {
        "model": "opus",
        "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "say done"}]}]},
    }
    (repo / ".claude" / "settings.local.json").write_text(json.dumps(mine))
    out = run_wtls(repo, "spawn", "merge", "--agent", "claude", "--json")
    assert out.returncode == 0, out.stderr
    wt = Path(json.loads(out.stdout)["path"])
    settings = json.loads((wt / ".claude" / "settings.local.json").read_text())
    assert settings["model"] == "opus"
    assert _commands(settings, "Stop") == ["say done", CLAUDE_HOOK_COMMAND]
    assert _commands(settings, "PreToolUse") == [CLAUDE_HOOK_COMMAND]
    assert not (wt / ".claude" / ".gitignore").exists()  # .claude/ is tracked: never there
    _clean(repo, wt)
    # The person's own file in the main worktree is untouched.
    assert json.loads((repo / ".claude" / "settings.local.json").read_text()) == mine


def test_tracked_claude_dir_not_ignored_goes_to_info_exclude(repo: Path) -> None:
    (repo / ".claude").mkdir()
    (repo / ".claude" / "settings.json").write_text("{}\n")
    commit_all(repo, "shared claude settings")
    out = run_wtls(repo, "spawn", "excl", "--agent", "claude", "--json")
    assert out.returncode == 0, out.stderr
    wt = Path(json.loads(out.stdout)["path"])
    assert (wt / ".claude" / "settings.local.json").is_file()
    assert "/.claude/settings.local.json" in (repo / ".git" / "info" / "exclude").read_text()
    _clean(repo, wt)
    assert git(repo, "diff", "HEAD", "--stat") == ""  # no tracked file was edited


def test_a_tracked_settings_file_is_never_written(repo: Path) -> None:
    (repo / ".claude").mkdir()
    (repo / ".claude" / "settings.local.json").write_text('{"team": true}\n')
    commit_all(repo, "someone committed local settings")
    out = run_wtls(repo, "spawn", "tracked", "--agent", "claude", "--json")
    assert out.returncode == 2  # the worktree is made, the step failed and says so
    result = json.loads(out.stdout)
    assert result["agentHooks"] is None
    assert "is tracked by git" in out.stderr
    wt = Path(result["path"])
    assert (wt / ".claude" / "settings.local.json").read_text() == '{"team": true}\n'
    _clean(repo, wt)


def test_a_linked_claude_dir_is_not_written_through(repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (repo / ".claude").symlink_to(elsewhere)
    commit_all(repo, "a link")
    out = run_wtls(repo, "spawn", "linked", "--agent", "claude", "--json")
    assert out.returncode == 2
    assert "symbolic link" in out.stderr
    assert list(elsewhere.iterdir()) == []


def test_unknown_agent(repo: Path) -> None:
    out = run_wtls(repo, "spawn", "x", "--agent", "cursor")
    assert out.returncode == 2 and "invalid choice" in out.stderr
    with pytest.raises(Refused, match="unknown agent"):
        lc.spawn(repo, "x", agent="cursor")
    assert git(repo, "branch", "--list", "agent/x") == ""


def test_codex_gets_the_config_line(repo: Path) -> None:
    out = run_wtls(repo, "spawn", "cx", "--agent", "codex")
    assert out.returncode == 0, out.stderr
    assert 'notify = ["wtls", "hook", "codex"]' in out.stderr


def test_merge_is_idempotent_and_refuses_non_objects() -> None:
    once = merged_claude_settings({})
    assert merged_claude_settings(once) == once
    for bad in ([], {"hooks": []}, {"hooks": {"Stop": {}}}):
        with pytest.raises(ValueError):
            merged_claude_settings(bad)
