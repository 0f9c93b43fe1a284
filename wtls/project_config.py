"""A repository's own spawn recipe: ``.wtls.toml`` and ``.worktreeinclude``.

Both files live at the top of the worktree a spawn starts from (usually committed, so every
clone shares the recipe). ``.wtls.toml``::

    copy = [".env", "config/local.json"]   # ignored files a new worktree needs (gitignore syntax)
    ports = ["PORT", "DB_PORT"]            # a free, stable number per worktree for each name
    setup = ["npm ci"]                     # run in a new worktree, only when trusted
    test = "python -m unittest"            # `wtls check --test`/`wtls land`, only when trusted
    teardown = ["docker compose down"]     # run before a worktree is removed, only when trusted
    share = ["node_modules"]               # ignored folders linked, not copied (one copy, shared)

``.worktreeinclude`` is the convention other agent tools already use: gitignore-syntax patterns
of ignored files to copy into a new worktree. Its patterns are added to ``copy``.

A file that cannot be read or has a wrong shape makes spawn refuse with the exact problem:
silently dropping a ``setup`` command or a port would be worse than saying so before anything
is created. So does a file wtls will not read (a FIFO, a device, a folder, a symbolic link
leaving the worktree, more than 1 MiB: see :func:`wtls.safety.read_small_file`) and a ``copy``
pattern with a ``..`` component (gitignore patterns never leave the worktree; one that tries is
a mistake or an attack).
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wtls.errors import Refused
from wtls.safety import UnsafeFile, read_small_file

CONFIG_NAME = ".wtls.toml"
INCLUDE_NAME = ".worktreeinclude"

_KNOWN_KEYS = ("copy", "ports", "setup", "share", "teardown", "test")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, kw_only=True)
class ProjectConfig:
    """The spawn recipe of one worktree (empty when it has neither file)."""

    #: Gitignore-syntax patterns of ignored files to copy (``copy`` then ``.worktreeinclude``).
    copy: tuple[str, ...] = ()
    #: Environment variable names that get a per-worktree port.
    ports: tuple[str, ...] = ()
    #: Setup commands, each already split into an argument list (never run through a shell).
    setup: tuple[tuple[str, ...], ...] = ()
    #: The test command(s) of ``wtls check --test``/``wtls land`` (same form as ``setup``; a
    #: single string is one command). Run only when the config is trusted.
    test: tuple[tuple[str, ...], ...] = ()
    #: Teardown commands, run before the worktree is removed (same form and trust as ``setup``).
    teardown: tuple[tuple[str, ...], ...] = ()
    #: Ignored folders or files of the source worktree that a new worktree links to (a
    #: symbolic link at the same relative path) instead of copying; plain relative paths.
    share: tuple[str, ...] = ()
    #: The files the recipe came from (for messages).
    sources: tuple[Path, ...] = ()


def _string_list(value: Any, key: str, path: Path) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Refused(f"{path}: `{key}` must be a list of strings, got {value!r}")
    return list(value)


def _parse_setup(value: Any, path: Path, key: str = "setup") -> tuple[tuple[str, ...], ...]:
    """``setup`` entries: a string (split like a shell would, no shell run) or an argv list."""
    if key == "test" and isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise Refused(f"{path}: `{key}` must be a list of commands, got {value!r}")
    commands: list[tuple[str, ...]] = []
    for item in value:
        if isinstance(item, str):
            try:
                argv = shlex.split(item)
            except ValueError as exc:
                raise Refused(f"{path}: {key} command {item!r} cannot be split: {exc}") from exc
        elif isinstance(item, list) and all(isinstance(v, str) for v in item):
            argv = list(item)
        else:
            raise Refused(
                f"{path}: each {key} command must be a string or a list of strings, got {item!r}"
            )
        if not argv:
            raise Refused(f"{path}: empty {key} command in `{key}`")
        commands.append(tuple(argv))
    return tuple(commands)


def _read(path: Path, root: Path) -> bytes | None:
    """The bytes of a recipe file, None when there is none; :class:`Refused` when unsafe."""
    try:
        return read_small_file(path, inside=root)
    except FileNotFoundError:
        return None
    except UnsafeFile as exc:
        raise Refused(str(exc)) from exc
    except OSError as exc:
        raise Refused(f"cannot read {path}: {exc}") from exc


def _check_pattern(pattern: str, path: Path) -> None:
    """Refuse a pattern that is empty, multi-line or reaches outside the worktree (``..``)."""
    if "\n" in pattern or "\r" in pattern or not pattern.strip():
        raise Refused(f"{path}: bad pattern {pattern!r}")
    if ".." in pattern.removeprefix("!").split("/"):
        raise Refused(
            f"{path}: pattern {pattern!r} points outside the worktree (`..`): patterns are "
            "relative to the worktree's top and only name files inside it"
        )


def check_relative_path(entry: str, what: str) -> str:
    """``entry`` as a plain relative path (``a/b``, no trailing ``/``); :class:`Refused` when
    it is empty, absolute, has ``.``/``..``/empty components or control characters.

    ``what`` names the entry in the message (``share entry``, ``sparse path``).
    """
    if not entry.strip() or any(ord(c) < 32 for c in entry):
        raise Refused(f"{what} {entry!r} is empty or holds control characters")
    if entry.startswith("/") or entry.startswith("\\") or re.match(r"[A-Za-z]:[/\\]", entry):
        raise Refused(f"{what} {entry!r} is an absolute path: name a path inside the worktree")
    parts = entry.rstrip("/").split("/")
    if ".." in parts:
        raise Refused(f"{what} {entry!r} points outside the worktree (`..`)")
    if any(p in ("", ".") for p in parts) or "\\" in entry:
        raise Refused(f"{what} {entry!r} is not a plain relative path (like `node_modules`)")
    if parts[0] in (".git", ".wtls"):
        raise Refused(f"{what} {entry!r} names wtls's or git's own folder")
    return "/".join(parts)


def _parse_share(value: Any, path: Path) -> tuple[str, ...]:
    """``share``: plain relative paths, none inside another (one link would hide the other)."""
    shared: list[str] = []
    for entry in _string_list(value, "share", path):
        try:
            rel = check_relative_path(entry, "share entry")
        except Refused as exc:
            raise Refused(f"{path}: {exc}") from exc
        for other in shared:
            if rel == other:
                raise Refused(f"{path}: share entry {entry!r} appears twice")
            if rel.startswith(other + "/") or other.startswith(rel + "/"):
                inner, outer = (rel, other) if len(rel) > len(other) else (other, rel)
                raise Refused(
                    f"{path}: share entry {inner!r} lies inside share entry {outer!r}: the "
                    "outer link already shares it"
                )
        shared.append(rel)
    return tuple(shared)


def read_include_file(root: Path) -> tuple[str, ...]:
    """The patterns of ``root/.worktreeinclude`` (gitignore syntax; comments and blanks dropped)."""
    path = root / INCLUDE_NAME
    raw = _read(path, root)
    if raw is None:
        return ()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(f"cannot read {path}: {exc}") from exc
    patterns = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        _check_pattern(line, path)
        patterns.append(line)
    return tuple(patterns)


def load_project_config(root: Path) -> ProjectConfig:
    """Read ``.wtls.toml`` and ``.worktreeinclude`` at the top of worktree ``root``.

    Raises :class:`~wtls.errors.Refused` naming the file and the problem when either is invalid.
    """
    path = root / CONFIG_NAME
    sources: list[Path] = []
    data: dict[str, Any] = {}
    raw = _read(path, root)
    if raw is not None:
        sources.append(path)
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise Refused(f"{path} is not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - set(_KNOWN_KEYS))
    if unknown:
        raise Refused(
            f"{path}: unknown key{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(_KNOWN_KEYS)})"
        )
    copy = _string_list(data.get("copy", []), "copy", path)
    for pattern in copy:
        _check_pattern(pattern, path)
    ports = _string_list(data.get("ports", []), "ports", path)
    for name in ports:
        if not _ENV_NAME.fullmatch(name):
            raise Refused(
                f"{path}: port name {name!r} is not an environment variable name "
                "(letters, digits and _, not starting with a digit)"
            )
    if len(set(ports)) != len(ports):
        raise Refused(f"{path}: a port name appears twice in `ports`")
    setup = _parse_setup(data.get("setup", []), path)
    test = _parse_setup(data.get("test", []), path, "test")
    teardown = _parse_setup(data.get("teardown", []), path, "teardown")
    share = _parse_share(data.get("share", []), path)
    include = read_include_file(root)
    if include:
        sources.append(root / INCLUDE_NAME)
    return ProjectConfig(
        copy=(*copy, *include),
        ports=tuple(ports),
        setup=setup,
        test=test,
        teardown=teardown,
        share=share,
        sources=tuple(sources),
    )
