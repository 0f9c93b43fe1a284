"""Which coding agent works in a worktree, and whether it waits for the person.

Pure core (no LSP). An agent's state is a small JSON file in the worktree's *private* git dir
(``git rev-parse --git-dir`` there: ``.git`` for the main worktree, ``.git/worktrees/<id>`` for a
linked one), so it is never in the work tree, never committed, and goes away with the worktree.
The file watcher sees it change (:func:`wtls.watch.classify`); a change costs one read of the
file, no git.

Writers (``wtls agent set``, ``wtls hook claude``) replace the file atomically (a temporary file
then a rename) under an advisory lock, so readers never see half a file. Readers bound the size
and treat anything unreadable as "no state". A state whose agent process is known (``pid``) and
gone is not reported.

The file also keeps the last few sessions seen, to warn when two different agent sessions work
in one worktree within :data:`GUARD_SECONDS` (they overwrite each other's files).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wtls.filelock import flock_within
from wtls.git import GitError, run_git
from wtls.safety import read_small_file

#: The states an agent can be in.
STATES = ("working", "waiting", "idle")
#: The state file's name in a worktree's private git dir.
AGENT_FILE = "wtls-agent.json"
#: Held (``flock``) while a writer reads, changes and replaces the state file.
_LOCK_FILE = "wtls-agent.lock"
#: A state file larger than this is garbage.
MAX_AGENT_BYTES = 64 * 1024
#: Longest message kept (a notification's text); longer ones are cut.
MAX_MESSAGE_CHARS = 2000
#: Longest tool name and session id kept.
MAX_NAME_CHARS = 200
#: Two sessions seen within this many seconds of each other in one worktree: a warning.
GUARD_SECONDS = 60.0
#: How many recent sessions the state file remembers.
HISTORY = 5


class AgentError(Exception):
    """The agent state could not be read or written where asked; the message says why."""


@dataclass(frozen=True, kw_only=True)
class AgentState:
    """One worktree's agent as the protocol shows it (``agent`` of a worktree object)."""

    #: ``working``, ``waiting`` (needs the person) or ``idle`` (its turn ended).
    state: str
    #: When it entered this state: ISO 8601 UTC, ``2026-11-30T22:08:21Z``.
    since: str
    message: str | None = None
    #: ``claude``, ``codex``, or the caller's word.
    tool: str | None = None
    session: str | None = None
    pid: int | None = None
    #: Other sessions active in this worktree within a minute of this one (the guard).
    others: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class SeenSession:
    """A session id and when it last set a state (seconds since the epoch)."""

    session: str
    seen: float


@dataclass(frozen=True, kw_only=True)
class AgentRecord:
    """Everything the state file holds."""

    agent: AgentState | None
    sessions: tuple[SeenSession, ...] = ()


def utc_text(when: float) -> str:
    """``when`` as ISO 8601 UTC with a ``Z``, to the second."""
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one owned by another user counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return value[:limit]


def _parse(data: bytes) -> AgentRecord:
    """The record in ``data``; garbage (anything not as written) is an empty record."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return AgentRecord(agent=None)
    if not isinstance(raw, dict):
        return AgentRecord(agent=None)
    sessions: list[SeenSession] = []
    history = raw.get("sessions")
    if isinstance(history, list):
        for item in history[:HISTORY]:
            if not isinstance(item, dict):
                continue
            sid = _text(item.get("session"), MAX_NAME_CHARS)
            seen = item.get("seen")
            if sid and isinstance(seen, int | float) and not isinstance(seen, bool):
                sessions.append(SeenSession(session=sid, seen=float(seen)))
    agent: AgentState | None = None
    body = raw.get("agent")
    if (
        isinstance(body, dict)
        and body.get("state") in STATES
        and isinstance(body.get("since"), str)
    ):
        pid = body.get("pid")
        others = body.get("others")
        agent = AgentState(
            state=body["state"],
            since=body["since"][:40],
            message=_text(body.get("message"), MAX_MESSAGE_CHARS),
            tool=_text(body.get("tool"), MAX_NAME_CHARS),
            session=_text(body.get("session"), MAX_NAME_CHARS),
            pid=pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None,
            others=tuple(o[:MAX_NAME_CHARS] for o in others[:HISTORY] if isinstance(o, str) and o)
            if isinstance(others, list)
            else (),
        )
    return AgentRecord(agent=agent, sessions=tuple(sessions))


def read_record(gitdir: Path | None) -> AgentRecord:
    """The state file of the worktree whose private git dir is ``gitdir``, as written."""
    if gitdir is None:
        return AgentRecord(agent=None)
    try:
        data = read_small_file(gitdir / AGENT_FILE, limit=MAX_AGENT_BYTES)
    except OSError:  # missing, too large, not a regular file, unreadable: no state
        return AgentRecord(agent=None)
    return _parse(data)


def read_agent(gitdir: Path | None) -> AgentState | None:
    """The agent state to show for a worktree: None when there is none, when the file is
    garbage, or when its process is known and gone."""
    agent = read_record(gitdir).agent
    if agent is not None and agent.pid is not None and not process_alive(agent.pid):
        return None
    return agent


@dataclass(frozen=True, kw_only=True)
class AgentPlace:
    """Where a folder's agent state lives: its worktree's top folder and private git dir."""

    worktree: Path
    gitdir: Path


def locate(folder: Path) -> AgentPlace:
    """The worktree holding ``folder`` and its private git dir (one ``git rev-parse``).

    Raises :class:`AgentError` when ``folder`` is in no worktree (outside a repository, inside
    a git dir, a bare repository).
    """
    if not folder.is_dir():
        raise AgentError(f"{folder} is not a folder")
    try:
        result = run_git(
            ["rev-parse", "--path-format=absolute", "--git-dir", "--show-toplevel"],
            folder,
            ok_codes=(0, 128),
        )
    except GitError as exc:
        raise AgentError(f"{folder}: {exc}") from exc
    lines = result.text.splitlines()
    if result.returncode != 0 or len(lines) != 2:
        raise AgentError(f"{folder} is not inside a worktree of a git repository")
    return AgentPlace(worktree=Path(lines[1]), gitdir=Path(lines[0]))


@contextlib.contextmanager
def _locked(gitdir: Path, timeout: float = 1.0) -> Iterator[None]:
    """Hold the state file's lock (at most ``timeout`` seconds of waiting; after that, go on:
    an agent's hook must never hang on a stuck writer)."""
    try:
        fd = os.open(gitdir / _LOCK_FILE, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise AgentError(f"cannot write in {gitdir}: {exc.strerror or exc}") from exc
    try:
        flock_within(fd, timeout, poll=0.01)  # not taken in time: go on regardless
        yield
    finally:
        os.close(fd)  # releases the lock


def _write(gitdir: Path, record: AgentRecord) -> None:
    """Replace the state file atomically (``None`` agent and no history: remove it)."""
    target = gitdir / AGENT_FILE
    if record.agent is None and not record.sessions:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        return
    body: dict[str, Any] = {
        "version": 1,
        "agent": None,
        "sessions": [{"session": s.session, "seen": s.seen} for s in record.sessions],
    }
    if record.agent is not None:
        a = record.agent
        body["agent"] = {
            "state": a.state,
            "since": a.since,
            "message": a.message,
            "tool": a.tool,
            "session": a.session,
            "pid": a.pid,
            "others": list(a.others),
        }
    temp = gitdir / f"{AGENT_FILE}.{os.getpid()}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(body, handle, ensure_ascii=True)
        os.replace(temp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise AgentError(f"cannot write {target}: {exc.strerror or exc}") from exc


def set_agent(
    gitdir: Path,
    state: str,
    *,
    message: str | None = None,
    tool: str | None = None,
    session: str | None = None,
    pid: int | None = None,
    now: float | None = None,
) -> AgentState:
    """Record ``state`` for the worktree whose private git dir is ``gitdir``; return it.

    ``since`` stays the same while the same session stays in the same state (a stream of
    tool calls is one "working since"). Raises :class:`ValueError` for an unknown state and
    :class:`AgentError` when ``gitdir`` is gone (a worktree being removed) or not writable:
    the git dir is never created.
    """
    if state not in STATES:
        raise ValueError(f"unknown agent state {state!r} (one of: {', '.join(STATES)})")
    if not gitdir.is_dir():
        raise AgentError(f"{gitdir} does not exist (was the worktree removed?)")
    when = time.time() if now is None else now
    with _locked(gitdir):
        old = read_record(gitdir)
        sessions = list(old.sessions)
        if session:
            sessions = [s for s in sessions if s.session != session]
            sessions.insert(0, SeenSession(session=session[:MAX_NAME_CHARS], seen=when))
            sessions = sessions[:HISTORY]
        others = tuple(
            s.session for s in sessions if s.session != session and when - s.seen <= GUARD_SECONDS
        )
        previous = old.agent
        same = (
            previous is not None
            and previous.state == state
            and previous.session == session
            and previous.message == message
        )
        agent = AgentState(
            state=state,
            since=previous.since if same and previous is not None else utc_text(when),
            message=message[:MAX_MESSAGE_CHARS] if message else None,
            tool=tool[:MAX_NAME_CHARS] if tool else None,
            session=session[:MAX_NAME_CHARS] if session else None,
            pid=pid if pid is not None and pid > 0 else None,
            others=others if session else (),
        )
        if agent != previous or sessions != list(old.sessions):
            _write(gitdir, AgentRecord(agent=agent, sessions=tuple(sessions)))
    return agent


def clear_agent(gitdir: Path, *, session: str | None = None) -> bool:
    """Remove the worktree's agent state; True when there was one.

    With ``session``, that session also leaves the guard's history, and the state is left
    alone when another session set it (one agent ending must not erase another's state).
    """
    if not gitdir.is_dir():
        raise AgentError(f"{gitdir} does not exist (was the worktree removed?)")
    with _locked(gitdir):
        old = read_record(gitdir)
        sessions = tuple(s for s in old.sessions if s.session != session) if session else ()
        agent = old.agent
        if agent is not None and (session is None or agent.session in (None, session)):
            agent = None
        elif agent is not None and session is not None:
            agent = replace(agent, others=tuple(o for o in agent.others if o != session))
        if agent == old.agent and sessions == old.sessions:
            return False
        _write(gitdir, AgentRecord(agent=agent, sessions=sessions))
        return old.agent is not None and agent is None
