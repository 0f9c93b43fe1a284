"""Typed settings of the server, from initializationOptions and workspace/configuration.

Bad values never stop the server: each is reported (the caller shows the messages with
``window/showMessage``) and replaced by its default.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, cast

from wtls.engine import EngineSettings


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every setting the server understands, under the ``wtls`` section. See README "Settings"."""

    #: Branch to compare against and merge back into; None = the main worktree's branch.
    baseBranch: str | None = None
    #: Where `spawn` puts new worktrees.
    worktreePathTemplate: str = "{repoParent}/{repo}-{slug}"
    #: Branch name `spawn` gives a task name.
    branchTemplate: str = "agent/{slug}"
    #: Extra globs (relative to a worktree) whose changes never trigger a refresh.
    ignore: tuple[str, ...] = ()
    #: Command run by `spawn`/`open` with `open` set, for editors other than VS Code.
    openCommand: str | None = None
    #: Extra quiet time (ms) after a burst of file events before refreshing.
    debounceMs: int = 30
    #: Warn when a branch is this many commits behind base.
    farBehind: int = 50
    #: Predict merge conflicts between worktrees.
    conflictPrediction: bool = True
    #: Run the merge tests (``test`` of a trusted ``.wtls.toml``) when changes settle.
    testOnSettle: bool = False
    #: Ask to prune when merged worktrees hold more than this many MiB (0: never ask).
    pruneNoticeMB: int = 1024

    def engine_settings(self) -> EngineSettings:
        """The part of the settings the core engine needs."""
        return EngineSettings(
            base_branch=self.baseBranch or None, ignore=self.ignore, far_behind=self.farBehind
        )


_TYPES: dict[str, tuple[type, ...]] = {
    "baseBranch": (str, type(None)),
    "worktreePathTemplate": (str,),
    "branchTemplate": (str,),
    "ignore": (list, tuple),
    "openCommand": (str, type(None)),
    "debounceMs": (int,),
    "farBehind": (int,),
    "conflictPrediction": (bool,),
    "testOnSettle": (bool,),
    "pruneNoticeMB": (int,),
}


def parse_settings(raw: Any) -> tuple[Settings, list[str]]:
    """Build :class:`Settings` from a JSON-like mapping; return it and messages for bad values."""
    problems: list[str] = []
    if raw is None:
        return Settings(), problems
    if hasattr(raw, "_asdict"):  # pygls hands unknown structures over as namedtuples
        raw = raw._asdict()
    if not isinstance(raw, dict):
        return Settings(), [f"wtls settings must be an object, got {type(raw).__name__}"]
    if isinstance(raw.get("wtls"), dict):
        raw = raw["wtls"]
    values: dict[str, Any] = {}
    known = {f.name for f in fields(Settings)}
    value: Any
    for key, value in raw.items():
        if key not in known:
            continue  # tolerate settings of newer clients
        expected = _TYPES[key]
        if isinstance(value, bool) and bool not in expected:
            problems.append(f"wtls.{key}: expected {expected[0].__name__}, got {value!r}")
            continue
        if not isinstance(value, expected):
            problems.append(
                f"wtls.{key}: expected {expected[0].__name__}, got {value!r}; using the default"
            )
            continue
        if key == "ignore":
            globs: list[Any] = list(cast("list[Any]", value))
            if not all(isinstance(v, str) for v in globs):
                problems.append("wtls.ignore: expected a list of glob strings; using the default")
                continue
            value = tuple(globs)
        if key in ("debounceMs", "farBehind", "pruneNoticeMB") and value < 0:
            problems.append(f"wtls.{key}: must not be negative, got {value}; using the default")
            continue
        if key in ("worktreePathTemplate", "branchTemplate") and "{slug}" not in value:
            problems.append(f"wtls.{key}: must contain {{slug}}, got {value!r}; using the default")
            continue
        values[key] = value
    return Settings(**values), problems
