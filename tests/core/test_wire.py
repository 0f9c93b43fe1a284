"""The one converter from frozen results to the protocol's JSON."""

from __future__ import annotations

from pathlib import Path

from wtls.lifecycle import CommandRun, SetupResult, SpawnResult
from wtls.wire import camel, to_wire, wire_object


def test_camel() -> None:
    assert [camel(n) for n in ("path", "base_commit", "would_back_up")] == [
        "path",
        "baseCommit",
        "wouldBackUp",
    ]


def test_nested_results_paths_tuples_and_mappings() -> None:
    result = SpawnResult(
        path=Path("/w/x"),
        branch="agent/x",
        base="main",
        base_commit="c" * 40,
        prompt_file=Path("/w/x/.wtls/task.md"),
        ports={"PORT": 20001},
        copied=(".env",),
        setup=SetupResult(ran=True, commands=(CommandRun(command="npm ci", exit_code=0),)),
    )
    wire = wire_object(result)
    assert wire["promptFile"] == "/w/x/.wtls/task.md" and wire["baseCommit"] == "c" * 40
    assert wire["copied"] == [".env"] and wire["ports"] == {"PORT": 20001}
    assert wire["setup"]["commands"] == [{"command": "npm ci", "exitCode": 0, "error": None}]
    assert wire["uri"] == "file:///w/x"
    assert to_wire((Path("/a"), {"k": (1, 2)})) == ["/a", {"k": [1, 2]}]


def test_field_rules_rename_omit_defaults_and_keep_internal_fields_off_the_wire() -> None:
    """Wire-only differences live in the model's field metadata, not in hand-written dicts."""
    from dataclasses import dataclass, field

    from wtls.wire import wire, wire_keys

    @dataclass(frozen=True, kw_only=True)
    class Sample:
        source: Path = field(metadata=wire(key="from"))
        said: str = field(default="", metadata=wire(omit_default=True))
        exit_status: int | None = field(default=None, metadata=wire(internal=True))
        dry_run: bool = False

    assert to_wire(Sample(source=Path("/a"), exit_status=3)) == {"from": "/a", "dryRun": False}
    assert to_wire(Sample(source=Path("/a"), said="hi"))["said"] == "hi"
    assert wire_keys(Sample) == ["from", "said", "dryRun"]


def test_context_dependent_fields_are_computed_into_the_payload(tmp_path: Path) -> None:
    from tests.gitutil import add_worktree, make_repo
    from wtls.worktrees import discover, repository_payload, repository_state

    repo = make_repo(tmp_path)
    wt = add_worktree(repo, tmp_path / "wt", "feature/x")
    state = repository_state(discover(repo))
    payload = to_wire(repository_payload(state, wt))
    assert payload["this"] == str(wt) and payload["baseBranch"] == "main"
    seen = {w["path"]: (w["isThis"], w["canMerge"]) for w in payload["worktrees"]}
    assert seen == {str(repo): (False, False), str(wt): (True, True)}
    assert to_wire(repository_payload(state))["this"] is None
