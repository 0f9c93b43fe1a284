"""The spawn record a window needs to start its agent is read by the core, with bounds, and sent
in the worktree payload (``spawn``): a committed link to /dev/zero, a FIFO or a prompt outside the
worktree's ``.wtls/`` never hangs or misleads a client."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.gitutil import add_worktree
from wtls import lifecycle as lc
from wtls.engine import Engine
from wtls.lifecycle import SPAWN_INFO_FILE, read_spawn_record
from wtls.safety import MAX_CONFIG_BYTES
from wtls.wire import to_wire
from wtls.worktrees import SpawnRecord, discover, repository_payload


def _worktree(tmp_path: Path, record: object = None) -> Path:
    root = tmp_path / "wt"
    (root / ".wtls").mkdir(parents=True)
    if record is not None:
        (root / SPAWN_INFO_FILE).write_text(json.dumps(record))
    return root


def test_a_record_whose_prompt_lies_in_wtls(tmp_path: Path) -> None:
    root = _worktree(tmp_path, {"branch": "agent/x", "promptFile": ".wtls/task.md", "created": "t"})
    assert read_spawn_record(root) == SpawnRecord(
        branch="agent/x", prompt_file=root / ".wtls" / "task.md", created="t"
    )


@pytest.mark.parametrize(
    "prompt", ["/dev/zero", "../outside.md", "README.md", ".wtls/../x.md", ".wtls", "", 5, None]
)
def test_a_prompt_outside_wtls_is_no_record(tmp_path: Path, prompt: object) -> None:
    root = _worktree(tmp_path, {"branch": "agent/x", "promptFile": prompt})
    assert read_spawn_record(root) is None


def test_a_record_that_is_a_link_a_fifo_too_large_or_not_json_is_none(tmp_path: Path) -> None:
    linked = _worktree(tmp_path / "link")
    (linked / SPAWN_INFO_FILE).symlink_to("/dev/zero")
    fifo = _worktree(tmp_path / "fifo")
    os.mkfifo(fifo / SPAWN_INFO_FILE)
    big = _worktree(tmp_path / "big")
    (big / SPAWN_INFO_FILE).write_text(" " * (MAX_CONFIG_BYTES + 1))
    broken = _worktree(tmp_path / "broken")
    (broken / SPAWN_INFO_FILE).write_text("{not json")
    listed = _worktree(tmp_path / "list", ["agent/x"])
    for root in (linked, fifo, big, broken, listed, _worktree(tmp_path / "none")):
        assert read_spawn_record(root) is None, root


def test_the_worktree_payload_carries_the_spawn_record(repo: Path, tmp_path: Path) -> None:
    result = lc.spawn(repo, "fix login", prompt="Make login work.\n")
    plain = add_worktree(repo, tmp_path / "plain", "feature/plain")
    engine = Engine(discover(repo))
    engine.refresh()
    assert engine.state is not None
    worktrees = {w["path"]: w for w in to_wire(repository_payload(engine.state))["worktrees"]}
    spawned = worktrees[str(result.path)]["spawn"]
    assert spawned["branch"] == "agent/fix-login"
    assert spawned["promptFile"] == str(result.path / ".wtls" / "task.md")
    assert spawned["created"]
    assert worktrees[str(plain)]["spawn"] is None
