"""Wiring a new worktree's coding agent to wtls: Claude Code's hooks in the worktree's
``.claude/settings.local.json``, so its states and conflict news flow with no set-up.

The settings file is merged (the person's own settings and hooks stay), never written when git
tracks it, never written through a symbolic link, and kept out of ``git status`` in every
worktree: by a self-ignoring ``.claude/.gitignore`` when git tracks nothing in ``.claude/``
(it names only itself and the settings file), else by a line in the repository's
``info/exclude`` (git has no per-worktree exclude file). A tracked ``.gitignore`` is never
edited.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path
from typing import Any

from wtls.git import run_git
from wtls.safety import UnsafeFile, read_small_file

#: The folder and file Claude Code reads a worktree's local (never shared) settings from.
CLAUDE_DIR = ".claude"
CLAUDE_SETTINGS = "settings.local.json"
#: The command the hooks run.
CLAUDE_HOOK_COMMAND = "wtls hook claude"
#: The events wtls listens to (docs/agents.md).
CLAUDE_EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "Notification",
    "Stop",
    "SessionEnd",
)
_TOOL_EVENTS = frozenset({"PreToolUse", "PostToolUse"})
#: Claude Code's timeout for the hook, in seconds (the hook itself keeps well inside it).
_HOOK_TIMEOUT = 10
_SELF_IGNORE = (
    f"# created by wtls: these files are local to this worktree\n.gitignore\n{CLAUDE_SETTINGS}\n"
)
_EXCLUDE_LINE = f"/{CLAUDE_DIR}/{CLAUDE_SETTINGS}"


def merged_claude_settings(existing: Any, command: str = CLAUDE_HOOK_COMMAND) -> dict[str, Any]:
    """``existing`` settings with wtls's hooks added (none twice; everything else kept).

    Raises :class:`ValueError` when the settings or their ``hooks`` are not JSON objects (the
    person's file is then left alone).
    """
    if not isinstance(existing, dict):
        raise ValueError("it is not a JSON object")
    settings = dict(existing)
    hooks = settings.get("hooks", {})
    if not isinstance(hooks, dict):
        raise ValueError('its "hooks" is not a JSON object')
    hooks = dict(hooks)
    for event in CLAUDE_EVENTS:
        groups = hooks.get(event, [])
        if not isinstance(groups, list):
            raise ValueError(f'its "hooks.{event}" is not a list')
        present = any(
            isinstance(g, dict)
            and isinstance(g.get("hooks"), list)
            and any(isinstance(h, dict) and h.get("command") == command for h in g["hooks"])
            for g in groups
        )
        if present:
            continue
        group: dict[str, Any] = {
            "hooks": [{"type": "command", "command": command, "timeout": _HOOK_TIMEOUT}]
        }
        if event in _TOOL_EVENTS:
            group = {"matcher": "*", **group}
        hooks[event] = [*groups, group]
    settings["hooks"] = hooks
    return settings


def _tracked(worktree: Path, rel: str) -> list[str]:
    out = run_git(["ls-files", "-z", "--", rel], worktree).stdout
    return [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]


def _ignored(worktree: Path, rel: str) -> bool:
    result = run_git(["check-ignore", "-q", "--no-index", "--", rel], worktree, ok_codes=(0, 1))
    return result.returncode == 0


def _open_claude_dir(worktree: Path) -> int:
    top = os.open(worktree, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(CLAUDE_DIR, 0o777, dir_fd=top)
        try:
            return os.open(
                CLAUDE_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=top
            )
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafeFile(
                    f"{worktree / CLAUDE_DIR} is a symbolic link or not a folder: wtls writes "
                    "nothing through it"
                ) from exc
            raise
    finally:
        os.close(top)


def _write_in(folder: int, name: str, text: str, *, exclusive: bool = False) -> None:
    """Write ``name`` in the open folder ``folder``: atomically (temp + rename), or only when
    it does not exist (``exclusive``); never through a symbolic link."""
    if exclusive:
        fd = os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
            dir_fd=folder,
        )  # fmt: skip
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return
    temp = f".{name}.wtls-{os.getpid()}.tmp"
    fd = os.open(
        temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
        dir_fd=folder,
    )  # fmt: skip
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=folder)
        raise


def _exclude(common_dir: Path) -> None:
    """Add the settings file to the repository's ``info/exclude`` (once)."""
    info = common_dir / "info"
    info.mkdir(exist_ok=True)
    path = info / "exclude"
    try:
        text = read_small_file(path).decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        text = ""
    if _EXCLUDE_LINE in text.splitlines():
        return
    with open(path, "a", encoding="utf-8", errors="surrogateescape") as handle:
        if text and not text.endswith("\n"):
            handle.write("\n")
        handle.write(f"# wtls: Claude Code's local settings of each worktree\n{_EXCLUDE_LINE}\n")


def wire_claude_hooks(worktree: Path, common_dir: Path) -> Path:
    """Add wtls's hooks to ``worktree``'s ``.claude/settings.local.json``; return its path.

    Raises :class:`OSError` (an :class:`~wtls.safety.UnsafeFile` for a link) or
    :class:`ValueError` with a clear message, having written nothing, when the file is tracked
    or is not a JSON object.
    """
    rel = f"{CLAUDE_DIR}/{CLAUDE_SETTINGS}"
    path = worktree / rel
    if _tracked(worktree, rel):
        raise ValueError(f"{path} is tracked by git: wtls does not change a shared file")
    folder = _open_claude_dir(worktree)
    try:
        try:
            raw = read_small_file(path).decode("utf-8")
            existing: Any = json.loads(raw)
        except FileNotFoundError:
            existing = {}
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"{path} is not valid JSON ({exc}): left as it is") from exc
        try:
            settings = merged_claude_settings(existing)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}; left as it is") from exc
        if not _ignored(worktree, rel):
            if not _tracked(worktree, CLAUDE_DIR):
                with contextlib.suppress(FileExistsError):
                    _write_in(folder, ".gitignore", _SELF_IGNORE, exclusive=True)
            if not _ignored(worktree, rel):
                _exclude(common_dir)
        if settings != existing:
            _write_in(folder, CLAUDE_SETTINGS, json.dumps(settings, indent=2) + "\n")
    finally:
        os.close(folder)
    return path
