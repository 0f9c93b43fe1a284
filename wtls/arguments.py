"""The argument object of every server command, typed, and the one reader of it.

Each command takes one JSON object; its fields are a frozen dataclass here (camelCase on the
wire: ``dry_run`` is ``dryRun``), read by :func:`read_arguments` with one cattrs converter that
is strict: a wrong type, a missing required field or an unknown field (a typo such as
``dry_run`` must not silently remove for real) raises :class:`ArgumentError` naming the field
and what was expected. Arguments that name a place (``uri``, ``path``, ``paths``, ``newPath``)
are read by :func:`wtls.locations.to_path`; ``worktree`` is a path, a file URI (turned into its
path) or a branch or folder name. An empty ``uri`` or ``path`` means "not given".

Pure core: the server maps :class:`ArgumentError` to JSON-RPC InvalidParams; nothing here knows
LSP. The TypeScript mirror is ``vscode-client/src/protocol.ts`` (``SpawnArgs`` ...), kept in
step by ``tests/test_protocol_drift.py``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NewType, TypeVar

import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError
from cattrs.gen import make_dict_structure_fn, override

from wtls.locations import BadLocation, is_uri, to_path
from wtls.wire import wire, wire_key

#: A worktree named by its path, a file URI (read as its path) or its branch or folder name.
WorktreeRef = NewType("WorktreeRef", str)

A = TypeVar("A")


class ArgumentError(ValueError):
    """A command argument that cannot be read: ``field`` names it, ``expected`` says what it
    must be; the message says both (``wtls.remove: argument 'force' must be a boolean, got
    "yes"``). Nothing was done."""

    def __init__(self, command: str, field: str | None, expected: str, message: str) -> None:
        super().__init__(message)
        self.command = command
        self.field = field
        self.expected = expected


@dataclasses.dataclass(frozen=True, kw_only=True)
class RepositoryArgs:
    """What every command takes: ``uri``, a place anywhere in the repository it is about
    (default: the first workspace folder)."""

    uri: Path | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class SpawnArgs(RepositoryArgs):
    """``wtls.spawn``."""

    name: str
    base: str | None = None
    path: Path | None = None
    prompt: str | None = None
    open: bool = False
    #: None: the workspace's trust decides.
    trusted: bool | None = None
    #: False: the client shows the result's problems itself (one message per action).
    announce: bool = True
    #: The agent to wire wtls's hooks for in the new worktree (``claude``), if any.
    agent: str | None = None
    #: A sparse (cone) checkout of these folders only; empty: everything.
    sparse: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class ValidateNameArgs(RepositoryArgs):
    """``wtls.validateName``."""

    name: str | None = None
    base: str | None = None
    path: Path | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class OpenArgs(RepositoryArgs):
    """``wtls.open``: without ``worktree``, the worktrees to pick from."""

    worktree: WorktreeRef | None = None
    open: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class MergeArgs(RepositoryArgs):
    """``wtls.merge``."""

    worktree: WorktreeRef
    remove: bool = False
    #: None: delete the branch when the worktree is removed.
    delete_branch: bool | None = None
    abort: bool = False
    announce: bool = True
    #: End the processes that use the worktree before removing it (``remove`` only).
    kill: bool = False
    #: Whether ``teardown`` of ``.wtls.toml`` may run; None: the workspace's trust decides.
    trusted: bool | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class RemoveArgs(RepositoryArgs):
    """``wtls.remove``."""

    worktree: WorktreeRef
    force: bool = False
    delete_branch: bool = False
    dry_run: bool = False
    announce: bool = True
    #: End the processes that use the worktree first (SIGTERM, then SIGKILL).
    kill: bool = False
    #: Whether ``teardown`` of ``.wtls.toml`` may run; None: the workspace's trust decides.
    trusted: bool | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class PruneArgs(RepositoryArgs):
    """``wtls.prune``; with ``merged``, ``wtls prune --merged``."""

    dry_run: bool = False
    #: Remove the clean worktrees whose branch is merged into base (and delete the branches).
    merged: bool = False
    #: With ``merged``: only those whose last commit is older than this (``2w``, ``3d12h``).
    older_than: str | None = None
    #: With ``merged``: whether ``teardown`` may run; None: the workspace's trust decides.
    trusted: bool | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class LockArgs(RepositoryArgs):
    """``wtls.lock``."""

    worktree: WorktreeRef
    reason: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class UnlockArgs(RepositoryArgs):
    """``wtls.unlock``."""

    worktree: WorktreeRef


@dataclasses.dataclass(frozen=True, kw_only=True)
class StopProcessesArgs(RepositoryArgs):
    """``wtls.stopProcesses``: end the processes using a worktree."""

    worktree: WorktreeRef
    #: End only these (the list the person confirmed); None: every process found.
    pids: tuple[int, ...] | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class CheckArgs(RepositoryArgs):
    """``wtls.check``."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class RefreshArgs(RepositoryArgs):
    """``wtls.refresh`` (every repository; ``uri`` is accepted and not needed)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class RepairArgs(RepositoryArgs):
    """``wtls.repair``: the worktree folders to look at (default: the workspace folders)."""

    paths: tuple[Path, ...] = ()
    apply: bool = False
    branch: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class MoveArgs(RepositoryArgs):
    """``wtls.move``."""

    worktree: WorktreeRef
    new_path: Path
    force: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class TestMergesArgs(RepositoryArgs):
    """``wtls.testMerges``: the test command (default: ``test`` of a trusted ``.wtls.toml``)."""

    __test__ = False  # not a pytest test class, whatever its name says

    command: str | None = None
    #: Seconds each run may take (default: :data:`wtls.testrun.DEFAULT_TIMEOUT`).
    timeout: float | None = None
    jobs: int = 1
    #: None: the workspace's trust decides.
    trusted: bool | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class LandArgs(RepositoryArgs):
    """``wtls.land``: what ``wtls land`` takes (default: every worktree not yet in base)."""

    worktrees: tuple[WorktreeRef, ...] = ()
    #: The test command; default: ``test`` of a trusted ``.wtls.toml``.
    command: str | None = None
    #: Seconds each run may take (default: :data:`wtls.testrun.DEFAULT_TIMEOUT`).
    timeout: float | None = None
    #: Remove each landed worktree (with remove's safety).
    remove: bool = False
    #: None: the workspace's trust decides.
    trusted: bool | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class FileActionArgs(RepositoryArgs):
    """``wtls.takeIntoBase`` and ``wtls.discardInWorktree``: one file of a reviewed worktree."""

    worktree: WorktreeRef
    path: str


# Params of wtls's own requests, read by the same converter as command arguments.


@dataclasses.dataclass(frozen=True, kw_only=True)
class PredictedMergeParams:
    """``wtls/predictedMerge``: a file of this session's worktree, and the other side."""

    uri: Path
    #: Another worktree (path, branch or folder name), or ``"base"``.
    with_: str = dataclasses.field(metadata=wire(key="with"))


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReviewParams(RepositoryArgs):
    """``wtls/review``: the worktree to review."""

    worktree: WorktreeRef


@dataclasses.dataclass(frozen=True, kw_only=True)
class FileAtParams(RepositoryArgs):
    """``wtls/fileAt``: one file at a full commit name."""

    rev: str
    path: str


class _Bad(ValueError):
    """A value of the wrong kind: ``expected`` in words, ``detail`` (optional) why."""

    def __init__(self, expected: str, value: Any, detail: str | None = None) -> None:
        super().__init__(expected)
        self.expected = expected
        self.value = value
        self.detail = detail


def _strict(kind: type, expected: str) -> Any:
    def hook(value: Any, _: Any) -> Any:
        # bool is an int, and cattrs would turn "yes" into True: only the exact JSON type.
        if type(value) is not kind:
            raise _Bad(expected, value)
        return value

    return hook


def _place(value: Any, _: Any) -> Path:
    if not isinstance(value, str):
        raise _Bad("a path or a file:// URI", value)
    try:
        return to_path(value, name="")
    except BadLocation as exc:
        raise _Bad("a path or a file:// URI", value, exc.reason) from exc


def _optional_place(value: Any, _: Any) -> Path | None:
    # An empty ``uri``/``path`` has always meant "not given".
    return None if value is None or value == "" else _place(value, None)


def _places(value: Any, _: Any) -> tuple[Path, ...]:
    if not isinstance(value, list):
        raise _Bad("a list of paths or file:// URIs", value)
    return tuple(_place(item, None) for item in value)


def _worktree(value: Any, _: Any) -> WorktreeRef:
    if not isinstance(value, str):
        raise _Bad("a worktree path, file:// URI or branch name", value)
    if is_uri(value) or "\0" in value:
        try:
            return WorktreeRef(str(to_path(value, name="")))
        except BadLocation as exc:
            raise _Bad("a worktree path, file:// URI or branch name", value, exc.reason) from exc
    return WorktreeRef(value)


def _worktrees(value: Any, _: Any) -> tuple[WorktreeRef, ...]:
    # A list only: cattrs would read a lone string as a tuple of its characters.
    if not isinstance(value, list):
        raise _Bad("a list of worktree paths, file:// URIs or branch names", value)
    return tuple(_worktree(item, None) for item in value)


def _strings(value: Any, _: Any) -> tuple[str, ...]:
    # A list only: cattrs would read a lone string as a tuple of its characters.
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _Bad("a list of strings", value)
    return tuple(value)


_converter = cattrs.Converter(detailed_validation=True, forbid_extra_keys=True)
_converter.register_structure_hook(str, _strict(str, "a string"))
_converter.register_structure_hook(bool, _strict(bool, "a boolean"))
_converter.register_structure_hook(int, _strict(int, "a whole number"))


def _number(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad("a number", value)
    return float(value)


_converter.register_structure_hook(float, _number)
_converter.register_structure_hook(Path, _place)
_converter.register_structure_hook(Path | None, _optional_place)
_converter.register_structure_hook_func(lambda t: t == tuple[Path, ...], _places)
_converter.register_structure_hook_func(lambda t: t == tuple[str, ...], _strings)
_converter.register_structure_hook(WorktreeRef, _worktree)
_converter.register_structure_hook_func(lambda t: t == tuple[WorktreeRef, ...], _worktrees)
_converter.register_structure_hook_func(
    lambda t: t == WorktreeRef | None, lambda v, _: None if v is None else _worktree(v, None)
)


def _dataclass_hook(cls: type[Any]) -> Any:
    renames = {f.name: override(rename=wire_key(f)) for f in dataclasses.fields(cls)}
    return make_dict_structure_fn(
        cls,
        _converter,
        _cattrs_forbid_extra_keys=True,
        **renames,  # type: ignore[arg-type]
    )


_converter.register_structure_hook_factory(dataclasses.is_dataclass, _dataclass_hook)


def argument_keys(cls: type[Any]) -> list[str]:
    """The JSON keys command argument class ``cls`` accepts (for drift tests and docs)."""
    return [k for k in (wire_key(f) for f in dataclasses.fields(cls)) if k is not None]


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _first_problem(exc: BaseException, cls: type[Any]) -> tuple[str | None, str, str]:
    """(field, expected, what is wrong) of the first problem cattrs found."""
    if isinstance(exc, ForbiddenExtraKeysError):
        extra = sorted(exc.extra_fields)[0]
        known = ", ".join(argument_keys(cls)) or "none"
        return extra, "no such argument", f"is not an argument of this command (known: {known})"
    if isinstance(exc, ClassValidationError):
        for sub in exc.exceptions:
            notes = getattr(sub, "__notes__", [])
            name = next((n.name for n in notes if hasattr(n, "name")), None)
            if isinstance(sub, ClassValidationError | ForbiddenExtraKeysError):
                return _first_problem(sub, cls)
            key = next((wire_key(f) for f in dataclasses.fields(cls) if f.name == name), name)
            if isinstance(sub, KeyError):
                return key, "required", "is missing"
            if isinstance(sub, _Bad):
                wrong = f"must be {sub.expected}, got {_shown(sub.value)}"
                if sub.detail:
                    wrong = sub.detail
                return key, sub.expected, wrong
            return key, "a valid value", f"cannot be read: {sub}"
    return None, "an object", f"cannot be read: {exc}"


def read_arguments(command: str, cls: type[A], raw: Any) -> A:
    """Command ``command``'s argument object ``raw`` (JSON) as ``cls``; raises
    :class:`ArgumentError` naming the first bad field."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ArgumentError(
            command,
            None,
            "an object",
            f"{command} takes one object argument, got {_shown(raw)}",
        )
    try:
        return _converter.structure(dict(raw), cls)
    except Exception as exc:  # cattrs wraps every problem; report the first
        field, expected, wrong = _first_problem(exc, cls)
        where = f"argument {field!r} " if field else "its argument "
        raise ArgumentError(command, field, expected, f"{command}: {where}{wrong}") from exc
