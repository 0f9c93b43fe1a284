"""An agent that dies drops its state at once: the server waits on each recorded agent
process (``pid``) with a Linux pidfd, so its exit wakes the event loop, and re-reads that
worktree's agent state (no git). No polling; where pidfds do not exist (not Linux, old
kernels), the state is dropped at the next refresh instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from wtls.engine import Refreshed
from wtls.server.base import RepoSession, Server
from wtls.watch import ChangeSet

#: (repository key, worktree, pid) → pidfd.
_Key = tuple[str, Path, int]


class AgentExits:
    """The agent processes being waited on, one pidfd each."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._fds: dict[_Key, int] = {}

    async def on_refresh(self, ls: Server, session: RepoSession, refreshed: Refreshed) -> None:
        """Wait on the agents of ``session``'s new state; stop waiting on the others."""
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is None:
            return
        wanted: set[_Key] = set()
        if ls.is_open(session):
            wanted = {
                (session.key, wt.path, wt.agent.pid)
                for wt in refreshed.state.worktrees
                if wt.agent is not None and wt.agent.pid is not None
            }
        open_keys = set(ls.sessions)
        for key in list(self._fds):
            if (key[0] == session.key and key not in wanted) or key[0] not in open_keys:
                self._stop(key)
        loop = asyncio.get_running_loop()
        for key in wanted - set(self._fds):
            try:
                fd = pidfd_open(key[2])
            except ProcessLookupError:
                self._exited(key, None)  # gone already: read again now
                continue
            except OSError:
                continue  # no pidfd here (old kernel, sandbox): the next refresh drops it
            self._fds[key] = fd
            loop.add_reader(fd, self._exited, key, fd)

    def _stop(self, key: _Key) -> None:
        fd = self._fds.pop(key, None)
        if fd is None:
            return
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(fd)
        with contextlib.suppress(OSError):
            os.close(fd)

    def _exited(self, key: _Key, fd: int | None) -> None:
        if fd is not None:
            self._stop(key)
        session = self._server.sessions.get(key[0])
        if session is not None:
            self._server.queue_change(session, ChangeSet(agents={key[1]}))


def register(server: Server) -> None:
    """Wait on recorded agent processes after every refresh."""
    exits = AgentExits(server)
    server.agent_hooks.append(exits.on_refresh)
