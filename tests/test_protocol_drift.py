"""The TypeScript client's protocol cannot drift from the server's.

Method names and command ids are compared with :mod:`wtls.server.protocol`; every interface of
``vscode-client/src/protocol.ts`` is compared with the Python dataclass it mirrors: a payload's
fields with its wire keys (:func:`wtls.wire.wire_keys`, the keys the one converter writes), a
command argument interface with the keys :mod:`wtls.arguments` accepts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from wtls import arguments as args
from wtls.agents import AgentState
from wtls.arguments import argument_keys
from wtls.backup.models import RestoreResult
from wtls.engine import RefreshResult
from wtls.errors import Fix, RefusalData
from wtls.land import LandResult, LandStep
from wtls.lifecycle import (
    CommandRun,
    LockResult,
    MergeResult,
    NameCheck,
    OpenResult,
    PruneResult,
    RemoveResult,
    SetupResult,
    SpawnResult,
)
from wtls.lifecycle.pruning import PruneMergedResult
from wtls.lifecycle.results import KeptRecord, PrunedRecord
from wtls.lifecycle.stopping import ProcessNotEnded, StopProcessesResult
from wtls.processes import ProcessUse
from wtls.repair import MoveResult
from wtls.review import ChangedFile, PredictedMerge, WorktreeDiff
from wtls.review_actions import FileAction, FileAt
from wtls.semantic import SemanticConflict, TestRun, TestsReport
from wtls.server import protocol
from wtls.testrun import Failure
from wtls.unsaved import UnsavedBuffer
from wtls.wire import to_wire, wire_keys
from wtls.worktrees import (
    BaseStatus,
    MergeStep,
    RepositoryPayload,
    SpawnRecord,
    StepConflict,
    WorktreeConflict,
    WorktreePayload,
)

PROTOCOL_TS = Path(__file__).resolve().parents[1] / "vscode-client" / "src" / "protocol.ts"

#: protocol.ts interface → the Python payload class whose wire form it types.
PAYLOADS: dict[str, type[Any]] = {
    "MovedPayload": MoveResult,
    "BaseStatus": BaseStatus,
    "ConflictPrediction": WorktreeConflict,
    "StepConflict": StepConflict,
    "MergeStep": MergeStep,
    "Worktree": WorktreePayload,
    "WorktreesPayload": RepositoryPayload,
    "RefreshResult": RefreshResult,
    "CommandRun": CommandRun,
    "SetupResult": SetupResult,
    "SpawnResult": SpawnResult,
    "ValidateNameResult": NameCheck,
    "OpenResult": OpenResult,
    "MergeResult": MergeResult,
    "RemoveResult": RemoveResult,
    "PrunedRecord": PrunedRecord,
    "KeptRecord": KeptRecord,
    "PruneResult": PruneResult,
    "LockResult": LockResult,
    "Fix": Fix,
    "SpawnRecord": SpawnRecord,
    "RefusalData": RefusalData,
    "AgentState": AgentState,
    "PredictedMerge": PredictedMerge,
    "WorktreeDiff": WorktreeDiff,
    "ChangedFile": ChangedFile,
    "FileAt": FileAt,
    "FileAction": FileAction,
    "PruneMergedResult": PruneMergedResult,
    "ProcessUse": ProcessUse,
    "Failure": Failure,
    "TestRun": TestRun,
    "SemanticConflict": SemanticConflict,
    "TestsReport": TestsReport,
    "LandStep": LandStep,
    "LandResult": LandResult,
    "StopProcessesResult": StopProcessesResult,
    "ProcessNotEnded": ProcessNotEnded,
    "UnsavedBuffer": UnsavedBuffer,
}
#: protocol.ts argument interface → the Python class the server reads it as.
ARGUMENTS: dict[str, type[Any]] = {
    "RepositoryArg": args.RepositoryArgs,
    "WorktreesParams": args.RepositoryArgs,
    "RefreshArgs": args.RefreshArgs,
    "SpawnArgs": args.SpawnArgs,
    "ValidateNameArgs": args.ValidateNameArgs,
    "OpenArgs": args.OpenArgs,
    "MergeArgs": args.MergeArgs,
    "RemoveArgs": args.RemoveArgs,
    "PruneArgs": args.PruneArgs,
    "LockArgs": args.LockArgs,
    "UnlockArgs": args.UnlockArgs,
    "CheckArgs": args.CheckArgs,
    "RepairArgs": args.RepairArgs,
    "MoveArgs": args.MoveArgs,
    "TestMergesArgs": args.TestMergesArgs,
    "LandArgs": args.LandArgs,
    "StopProcessesArgs": args.StopProcessesArgs,
    "FileActionArgs": args.FileActionArgs,
    "PredictedMergeParams": args.PredictedMergeParams,
    "ReviewParams": args.ReviewParams,
    "FileAtParams": args.FileAtParams,
}
#: Interfaces that only mix fields into others (checked through the ones that extend them).
MIXINS = {"AnnounceArg"}


def _ts() -> str:
    return PROTOCOL_TS.read_text(encoding="utf-8")


def test_method_names_match() -> None:
    ts = _ts()
    for name in (
        "WORKTREES_METHOD",
        "MOVED_METHOD",
        "PREDICTED_MERGE_METHOD",
        "REVIEW_METHOD",
        "FILE_AT_METHOD",
    ):
        found = re.search(rf"export const {name} = '([^']+)';", ts)
        assert found is not None, f"{name} is missing from protocol.ts"
        assert found.group(1) == getattr(protocol, name)


def test_command_ids_match() -> None:
    block = re.search(r"export const ServerCommand = \{(.*?)\}", _ts(), flags=re.S)
    assert block is not None, "ServerCommand is missing from protocol.ts"
    ids = set(re.findall(r":\s*'([^']+)'", block.group(1)))
    assert ids == set(protocol.COMMANDS)


def _declared() -> set[str]:
    ts = _ts()
    return set(re.findall(r"^export interface (\w+)", ts, flags=re.M)) | set(
        re.findall(r"^export type (\w+Args) = ", ts, flags=re.M)
    )


def _interface_fields(name: str) -> set[str]:
    """The fields of interface ``name`` with those of the interfaces it extends (or, for
    ``type X = Y``, of ``Y``)."""
    ts = _ts()
    alias = re.search(rf"^export type {name} = (\w+);", ts, flags=re.M)
    if alias is not None:
        return _interface_fields(alias.group(1))
    block = re.search(
        rf"^export interface {name}(?: extends ([\w, ]+))? \{{(.*?)\n\}}", ts, flags=re.S | re.M
    )
    assert block is not None, f"interface {name} is missing from protocol.ts"
    fields = set(re.findall(r"^\s{4}(\w+)\??:", block.group(2), flags=re.M))
    for parent in (block.group(1) or "").split(","):
        if parent.strip():
            fields |= _interface_fields(parent.strip())
    return fields


def test_every_interface_is_compared() -> None:
    """A new interface in protocol.ts names its Python class here (or it is a mixin)."""
    unmapped = _declared() - set(PAYLOADS) - set(ARGUMENTS) - MIXINS
    assert not unmapped, f"map these protocol.ts interfaces to their Python classes: {unmapped}"


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_payload_fields_match(name: str) -> None:
    assert _interface_fields(name) == set(wire_keys(PAYLOADS[name])), name


@pytest.mark.parametrize("name", sorted(ARGUMENTS))
def test_argument_fields_match(name: str) -> None:
    assert _interface_fields(name) == set(argument_keys(ARGUMENTS[name])), name


def test_wire_keys_are_what_the_converter_writes(tmp_path: Path) -> None:
    """The keys compared above are the ones a real payload has."""
    from tests.gitutil import add_worktree, make_repo
    from wtls.lifecycle import prune, remove
    from wtls.worktrees import discover, repository_payload, repository_state

    repo = make_repo(tmp_path)
    add_worktree(repo, tmp_path / "wt", "feature/x")
    payload = to_wire(repository_payload(repository_state(discover(repo))))
    assert set(payload) == set(wire_keys(RepositoryPayload))
    assert set(payload["worktrees"][0]) == set(wire_keys(WorktreePayload))
    assert set(to_wire(remove(repo, "feature/x", dry_run=True))) == set(wire_keys(RemoveResult))
    assert set(to_wire(prune(repo, dry_run=True))) == set(wire_keys(PruneResult))
    restored = RestoreResult(path=repo, branch=None, head=None, detached=True, files=0)
    assert set(to_wire(restored)) == set(wire_keys(RestoreResult))
    moved = MoveResult(source=repo, destination=tmp_path / "to", branch=None)
    assert set(to_wire(moved)) == {"from", "to", "branch"} == set(wire_keys(MoveResult))
