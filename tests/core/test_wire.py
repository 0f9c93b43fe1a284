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
