"""Work-done progress: a fresh token per piece of work, always ended (in ``finally``).

Progress is optional: a client that does not support it, refuses the token or never answers
gets none, and the work runs all the same.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from typing import TypeVar

from lsprotocol import types
from pygls.lsp.server import LanguageServer

T = TypeVar("T")


class Progress:
    """``$/progress`` reporting for one server."""

    def __init__(self, server: LanguageServer) -> None:
        self._server = server

    async def begin(self, title: str, *, cancellable: bool = False) -> str | None:
        """Start a progress report; its token, or None when the client shows none."""
        caps = self._server.client_capabilities.window
        if caps is None or not caps.work_done_progress:
            return None
        # A new token each time: pygls refuses a reused one ("Token is already registered!").
        token = str(uuid.uuid4())
        progress = self._server.work_done_progress
        try:
            await asyncio.wait_for(progress.create_async(token), timeout=5)
        except Exception:  # the client may refuse or never answer: progress is optional
            return None
        progress.begin(token, types.WorkDoneProgressBegin(title=title, cancellable=cancellable))
        return token

    def end(self, token: str | None) -> None:
        """End the report ``token`` (nothing for None)."""
        if token is not None:
            self._server.work_done_progress.end(token, types.WorkDoneProgressEnd())

    async def run(self, title: str, work: Callable[[Callable[[str], None]], T]) -> T:
        """Run blocking ``work(report)`` in a thread, showing work-done progress meanwhile."""
        token = await self.begin(title)
        loop = asyncio.get_running_loop()
        progress = self._server.work_done_progress

        def report(message: str) -> None:
            if token is not None:
                loop.call_soon_threadsafe(
                    progress.report, token, types.WorkDoneProgressReport(message=message[-200:])
                )

        try:
            return await asyncio.to_thread(work, report)
        finally:
            self.end(token)

    async def run_cancellable(
        self, title: str, work: Callable[[Callable[[str], None], threading.Event], T]
    ) -> T:
        """Like :meth:`run`, with a Cancel button: ``work(report, cancel)`` sees ``cancel`` set
        when the person presses it (pygls cancels the token's future on
        ``window/workDoneProgress/cancel``)."""
        cancel = threading.Event()
        token = await self.begin(title, cancellable=True)
        loop = asyncio.get_running_loop()
        progress = self._server.work_done_progress
        future = progress.tokens.get(token) if token is not None else None
        if future is not None:
            future.add_done_callback(lambda f: cancel.set() if f.cancelled() else None)

        def report(message: str) -> None:
            if token is not None:
                loop.call_soon_threadsafe(
                    progress.report, token, types.WorkDoneProgressReport(message=message[-200:])
                )

        try:
            return await asyncio.to_thread(work, report, cancel)
        finally:
            self.end(token)
            if token is not None:
                progress.tokens.pop(token, None)
