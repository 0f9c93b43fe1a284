"""The TypeScript client's protocol names and payload fields cannot drift from the server's."""

from __future__ import annotations

import re
from pathlib import Path

from wtls.server import protocol
from wtls.wire import wire_object

PROTOCOL_TS = Path(__file__).resolve().parents[1] / "vscode-client" / "src" / "protocol.ts"


def _ts() -> str:
    return PROTOCOL_TS.read_text(encoding="utf-8")


def test_method_names_match() -> None:
    ts = _ts()
    for name in ("WORKTREES_METHOD", "MOVED_METHOD"):
        found = re.search(rf"export const {name} = '([^']+)';", ts)
        assert found is not None, f"{name} is missing from protocol.ts"
        assert found.group(1) == getattr(protocol, name)


def test_command_ids_match() -> None:
    block = re.search(r"export const ServerCommand = \{(.*?)\}", _ts(), flags=re.S)
    assert block is not None, "ServerCommand is missing from protocol.ts"
    ids = set(re.findall(r":\s*'([^']+)'", block.group(1)))
    assert ids == set(protocol.COMMANDS)


def _interface_fields(name: str) -> set[str]:
    block = re.search(rf"export interface {name} \{{(.*?)\n\}}", _ts(), flags=re.S)
    assert block is not None, f"interface {name} is missing from protocol.ts"
    return set(re.findall(r"^\s{4}(\w+)\??:", block.group(1), flags=re.M))


def test_worktree_fields_match(tmp_path: Path) -> None:
    """Every field of a worktree object the server sends is typed in protocol.ts, and back."""
    from tests.gitutil import make_repo
    from wtls.worktrees import discover, repository_payload, repository_state

    repo = make_repo(tmp_path)
    payload = wire_object(repository_payload(repository_state(discover(repo))))
    assert set(payload) == _interface_fields("WorktreesPayload")
    assert set(payload["worktrees"][0]) == _interface_fields("Worktree")


def test_remove_result_fields_match(tmp_path: Path) -> None:
    from tests.gitutil import add_worktree, make_repo
    from wtls.lifecycle import remove

    repo = make_repo(tmp_path)
    add_worktree(repo, tmp_path / "wt", "feature/x")
    result = wire_object(remove(repo, "feature/x", dry_run=True))
    assert set(result) == _interface_fields("RemoveResult")


def test_merge_result_fields_match(tmp_path: Path) -> None:
    from tests.gitutil import add_worktree, commit_all, make_repo
    from wtls.lifecycle import merge_back

    repo = make_repo(tmp_path)
    wt = add_worktree(repo, tmp_path / "wt", "feature/x")
    (wt / "new.txt").write_text("x\n")
    commit_all(wt, "x")
    result = wire_object(merge_back(repo, "feature/x"))
    assert set(result) == _interface_fields("MergeResult")
