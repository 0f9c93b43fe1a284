"""Coding agents' hooks: Claude Code's hook events and Codex CLI's ``notify``, turned into agent
states (:mod:`wtls.agents`) and, after an edit, into conflict news for the agent itself.

Pure core (no LSP). A hook must never get in the agent's way: every function here returns an
:class:`HookOutcome` (what to print on stdout, one line for stderr) and never raises; bad input
changes nothing. It reads only what it needs: one ``git rev-parse`` to find the worktree, then
the state file; conflict news (after an edit) runs the predictor for the pairs involving that
worktree only, in a thread bounded by :data:`NEWS_TIMEOUT` (on timeout: say nothing).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wtls.agents import AgentError, clear_agent, locate, set_agent
from wtls.safety import printable

if TYPE_CHECKING:
    from wtls.predict import Prediction
    from wtls.worktrees import RepositoryState

#: The largest hook event read from stdin (a ``Write`` event carries the whole file).
MAX_EVENT_BYTES = 8 * 1024 * 1024
#: Claude Code's tools that change a file: their PostToolUse may bring conflict news.
EDIT_TOOLS = frozenset({"Edit", "Write", "MultiEdit", "NotebookEdit"})
#: Seconds the conflict news may take; ``WTLS_HOOK_TIMEOUT`` overrides it.
NEWS_TIMEOUT = 4.0
#: Claude Code's events and the state each one means.
CLAUDE_STATES = {
    "SessionStart": "working",
    "UserPromptSubmit": "working",
    "PreToolUse": "working",
    "PostToolUse": "working",
    "Notification": "waiting",
    "PermissionRequest": "waiting",
    "Stop": "idle",
}
#: Events that are known and change nothing (no complaint on stderr).
_CLAUDE_QUIET = frozenset({"SubagentStart", "SubagentStop", "PreCompact", "PostToolUseFailure"})
#: Notifications that do not wait for the person.
_NOT_WAITING = frozenset({"auth_success", "elicitation_complete", "elicitation_response"})
#: Process names that are only the shell a hook runs in, not the agent.
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "fish", "busybox", "env", "timeout"})


@dataclass(frozen=True, kw_only=True)
class HookOutcome:
    """What a hook prints: ``stdout`` for the agent to read, ``note`` as one stderr line."""

    stdout: str | None = None
    note: str | None = None
    #: The state recorded (None: nothing changed, or cleared).
    state: str | None = None


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(name, parent pid) of process ``pid`` from ``/proc``, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read(4096).decode("utf-8", "replace")
    except OSError:
        return None
    open_paren, close_paren = data.find("("), data.rfind(")")
    fields = data[close_paren + 2 :].split()
    if open_paren < 0 or close_paren < 0 or len(fields) < 2:
        return None
    try:
        return data[open_paren + 1 : close_paren], int(fields[1])
    except ValueError:
        return None


def agent_pid(start: int | None = None) -> int | None:
    """The agent process that ran this hook: the parent process, skipping the shells a hook
    command runs in (``sh -c``). None where ``/proc`` cannot tell (the state then stays
    until the next event: the agent's death is not detected)."""
    pid = os.getppid() if start is None else start
    for _ in range(4):
        if pid <= 1:
            return None
        found = _proc_stat(pid)
        if found is None:
            return None
        name, parent = found
        if name not in _SHELLS:
            return pid
        pid = parent
    return None


def _text(event: Mapping[str, Any], key: str) -> str | None:
    value = event.get(key)
    return value if isinstance(value, str) and value else None


def claude_hook(
    data: bytes, *, pid: int | None = None, timeout: float | None = None
) -> HookOutcome:
    """Handle one Claude Code hook event (the bytes it wrote on stdin)."""
    if len(data) > MAX_EVENT_BYTES:
        return HookOutcome(note=f"hook event larger than {MAX_EVENT_BYTES} bytes: ignored")
    try:
        event = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return HookOutcome(note="hook event is not JSON: ignored")
    if not isinstance(event, dict):
        return HookOutcome(note="hook event is not a JSON object: ignored")
    name = _text(event, "hook_event_name")
    cwd = _text(event, "cwd")
    if name is None or cwd is None:
        return HookOutcome(note="hook event without hook_event_name or cwd: ignored")
    if name in _CLAUDE_QUIET:
        return HookOutcome()
    if name != "SessionEnd" and name not in CLAUDE_STATES:
        return HookOutcome(note=f"unknown hook event {printable(name[:80])!s}: ignored")
    session = _text(event, "session_id")
    try:
        place = locate(Path(cwd))
        if name == "SessionEnd":
            clear_agent(place.gitdir, session=session)
            return HookOutcome()
        state = CLAUDE_STATES[name]
        message: str | None = None
        if name == "Notification":
            if _text(event, "notification_type") in _NOT_WAITING:
                return HookOutcome()
            message = _text(event, "message") or _text(event, "title")
        elif name == "PermissionRequest":
            tool = _text(event, "tool_name")
            message = f"Claude needs your permission to use {tool}" if tool else None
        set_agent(place.gitdir, state, message=message, tool="claude", session=session, pid=pid)
    except (AgentError, OSError) as exc:
        return HookOutcome(note=f"agent state not recorded: {exc}")
    if name == "PostToolUse" and _text(event, "tool_name") in EDIT_TOOLS:
        tool_input = event.get("tool_input")
        file = None
        if isinstance(tool_input, dict):
            file = _text(tool_input, "file_path") or _text(tool_input, "notebook_path")
        if file is not None:
            news = bounded_news(place.worktree, Path(cwd) / file, timeout)
            if news:
                output = {
                    "hookSpecificOutput": {
                        "hookEventName": "PostToolUse",
                        "additionalContext": news,
                    }
                }
                return HookOutcome(stdout=json.dumps(output), state=state)
    return HookOutcome(state=state)


def codex_hook(argument: str | None, *, cwd: Path, pid: int | None = None) -> HookOutcome:
    """Handle Codex CLI's ``notify`` call (its one JSON argument)."""
    if argument is None:
        return HookOutcome(note="no notification argument: ignored")
    if len(argument) > MAX_EVENT_BYTES:
        return HookOutcome(note="notification too large: ignored")
    try:
        event = json.loads(argument)
    except (ValueError, RecursionError):
        return HookOutcome(note="notification is not JSON: ignored")
    if not isinstance(event, dict):
        return HookOutcome(note="notification is not a JSON object: ignored")
    kind = _text(event, "type")
    if kind != "agent-turn-complete":
        shown = printable((kind or "(none)")[:80], keep_newlines=False)
        return HookOutcome(note=f"unknown notification type {shown}: ignored")
    folder = Path(_text(event, "cwd") or cwd)
    last = _text(event, "last-assistant-message")
    message = last.strip().splitlines()[0][:200] if last and last.strip() else None
    session = _text(event, "thread-id") or _text(event, "session-id")
    try:
        place = locate(folder)
        set_agent(place.gitdir, "idle", message=message, tool="codex", session=session, pid=pid)
    except (AgentError, OSError) as exc:
        return HookOutcome(note=f"agent state not recorded: {exc}")
    return HookOutcome(state="idle")


def news_timeout(default: float = NEWS_TIMEOUT) -> float:
    """The time conflict news may take: ``WTLS_HOOK_TIMEOUT`` seconds, else ``default``."""
    try:
        value = float(os.environ.get("WTLS_HOOK_TIMEOUT", ""))
    except ValueError:
        return default
    return value if 0 < value <= 60 else default


def bounded_news(worktree: Path, file: Path, timeout: float | None = None) -> str | None:
    """:func:`conflict_news` in a thread; None when it takes longer than ``timeout``."""
    box: list[str | None] = []

    def work() -> None:
        try:
            box.append(conflict_news(worktree, file))
        except Exception:  # news is a bonus: never break the agent's hook
            box.append(None)

    thread = threading.Thread(target=work, name="wtls-hook-news", daemon=True)
    thread.start()
    thread.join(news_timeout() if timeout is None else timeout)
    return box[0] if box else None


def _lines(ranges: Any) -> str:
    """``line 5``, ``lines 5-7, 9``."""
    if not ranges:
        return "no lines (the file is deleted there)"
    text = ", ".join(f"{s}-{e}" if s != e else str(s) for s, e in ranges)
    single = len(ranges) == 1 and ranges[0][0] == ranges[0][1]
    return f"line {text}" if single else f"lines {text}"


def conflict_news(worktree: Path, file: Path) -> str | None:
    """What the agent in ``worktree`` should know after changing ``file``: the other branches
    its change to that file will conflict or overlap with; None when nothing."""
    # Imported here, not above: most hook events never need the predictor, and a hook's
    # start-up time is the agent's waiting time.
    from wtls.predict import ConflictPredictor
    from wtls.worktrees import discover, repository_state

    file = Path(os.path.realpath(file))
    try:
        rel = file.relative_to(worktree).as_posix()
    except ValueError:
        return None  # a file outside this worktree
    from wtls.daemon.ask import ask_news

    answered = ask_news(worktree, file)  # the repository's engine has it warm
    if answered is not None:
        return answered.text
    repo = discover(worktree)
    state = repository_state(repo)
    here = state.find(worktree)
    if here is None:
        return None
    prediction = ConflictPredictor(repo).update(state, involving=here.path)
    return news_text(state, prediction, here.path, rel)


def news_text(state: RepositoryState, prediction: Prediction, here: Path, rel: str) -> str | None:
    """The conflict news for worktree ``here``'s file ``rel`` (relative, POSIX) from a
    prediction that covers its pairs; None when nothing collides with it."""
    by_path = {w.path: w for w in state.worktrees}
    notes: list[str] = []
    for pair in prediction.pairs:
        if not pair.involves(here):
            continue
        other, branch = pair.other(here)
        for entries, conflict in ((pair.conflicts, True), (pair.overlaps, False)):
            for fc in entries:
                if fc.path_in(here) != rel:
                    continue
                theirs = fc.path_in(other)
                mine = _lines(fc.lines.get(str(here)))
                their_lines = _lines(fc.lines.get(str(other)))
                name = printable(branch or f"a detached HEAD in {other.name}", keep_newlines=False)
                folder = printable(str(other), keep_newlines=False)
                if pair.against_base:
                    side = f"the base branch {name} (its latest commit)"
                    committed = "committed on the base branch"
                    advice = (
                        f"merge or rebase on {name} early and keep off those lines, or expect "
                        "to resolve it when your branch is merged"
                    )
                else:
                    other_wt = by_path.get(other)
                    dirty = other_wt is not None and theirs in other_wt.status.changed_paths
                    side = f"branch {name} (worktree {folder})"
                    committed = (
                        "uncommitted work in that worktree" if dirty else f"committed on {name}"
                    )
                    advice = (
                        "keep off those lines if your task allows; otherwise coordinate with "
                        f"whoever works on {name}, or expect to resolve it at merge time"
                    )
                if conflict:
                    kind = "" if fc.kind in ("content", "overlap") else f" ({fc.kind})"
                    notes.append(
                        f"Your change to {rel} will CONFLICT{kind} with {side} when merged: "
                        f"your {mine} against its {their_lines} of {theirs} "
                        f"({committed}). What to do: {advice}."
                    )
                else:
                    notes.append(
                        f"Your change to {rel} overlaps changes of {side}: your {mine}, "
                        f"its {their_lines} of {theirs} ({committed}). git would merge "
                        "them cleanly, but check that the two changes still fit together; keep "
                        "them apart if you can."
                    )
    if not notes:
        return None
    return "wtls (worktree conflict foresight): " + " ".join(notes)
