"""The Claude Code plugin in this repository (claude-plugin/, .claude-plugin/marketplace.json),
checked by the real Claude Code: ``claude plugin validate`` (offline), then ``claude plugin
marketplace add`` + ``claude plugin install`` from a copy of the repository's plugin files, and
the hook command it registers run as Claude Code would run it.

Claude Code installs from npm into ``~/.cache/wtls-ci/claude`` (``.ci/run`` does it too); the
tests are skipped only when npm is not there to install it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gitutil import git
from wtls import __version__
from wtls.agents import read_agent

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "claude-plugin"
MARKETPLACE = ROOT / ".claude-plugin" / "marketplace.json"
#: Read at import, before the tests' hermetic HOME replaces the real one.
PREFIX = Path(os.environ.get("WTLS_CLAUDE_PREFIX") or Path.home() / ".cache" / "wtls-ci" / "claude")


@pytest.fixture(scope="module")
def claude() -> Path:
    """The real ``claude`` command, installed from npm when missing."""
    binary = PREFIX / "node_modules" / ".bin" / "claude"
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed: cannot install Claude Code")
        subprocess.run(
            [npm, "install", "--prefix", str(PREFIX), "--no-audit", "--no-fund",
             "@anthropic-ai/claude-code"],
            check=True, capture_output=True, timeout=600,
        )  # fmt: skip
    return binary


def run_claude(claude: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(claude), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_TELEMETRY": "1"},
    )


def test_manifests_validate(claude: Path, tmp_path: Path) -> None:
    out = run_claude(claude, "plugin", "validate", "--strict", str(PLUGIN), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    out = run_claude(claude, "plugin", "validate", "--strict", str(ROOT), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "marketplace" in out.stdout.lower()


def test_manifest_content() -> None:
    plugin = json.loads((PLUGIN / ".claude-plugin" / "plugin.json").read_text())
    assert plugin["version"] == __version__
    server = plugin["lspServers"]["wtls"]
    assert [server["command"], *server["args"]] == ["wtls", "serve"]
    for ext in (".py", ".ts", ".tsx", ".js", ".go", ".rs", ".java", ".c", ".md"):
        assert ext in server["extensionToLanguage"]
    hooks = json.loads((PLUGIN / "hooks" / "hooks.json").read_text())["hooks"]
    assert set(hooks) == {
        "SessionStart",
        "UserPromptSubmit",
        "PreToolUse",
        "PostToolUse",
        "Notification",
        "Stop",
        "SessionEnd",
    }
    for groups in hooks.values():
        assert [h["command"] for g in groups for h in g["hooks"]] == ["wtls hook claude"]
    market = json.loads(MARKETPLACE.read_text())
    [entry] = market["plugins"]
    assert entry["name"] == plugin["name"] and (ROOT / entry["source"]).resolve() == PLUGIN


def test_marketplace_add_and_install(claude: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    shutil.copytree(PLUGIN, clone / "claude-plugin")
    shutil.copytree(MARKETPLACE.parent, clone / ".claude-plugin")
    out = run_claude(claude, "plugin", "marketplace", "add", str(clone), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    out = run_claude(claude, "plugin", "install", "wtls@wtls", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    out = run_claude(claude, "plugin", "details", "wtls@wtls", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "LSP servers (1)" in out.stdout and "Hooks (7)" in out.stdout


def test_the_registered_hook_command_records_a_state(repo: Path, tmp_path: Path) -> None:
    """The command line of hooks.json, run through a shell as Claude Code runs hooks."""
    hooks = json.loads((PLUGIN / "hooks" / "hooks.json").read_text())["hooks"]
    command = hooks["Notification"][0]["hooks"][0]["command"]
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "wtls").symlink_to(Path(sys.executable).parent / "wtls")
    event = {
        "session_id": "s",
        "cwd": str(repo),
        "hook_event_name": "Notification",
        "message": "Claude is waiting for your input",
        "notification_type": "idle_prompt",
    }
    out = subprocess.run(
        ["sh", "-c", command],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"},
    )
    assert out.returncode == 0 and out.stderr == "", out.stderr
    agent = read_agent(Path(git(repo, "rev-parse", "--absolute-git-dir")))
    assert agent is not None and agent.state == "waiting"
