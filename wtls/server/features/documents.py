"""Open documents: every feature's document hooks run when a buffer opens, changes or closes
(conflict markers in unsaved buffers, overlays for conflict prediction); and every window's
unsaved buffers for the commands that delete or rewrite files (:func:`unsaved_finder`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from lsprotocol import types

from wtls.server.base import Server
from wtls.server.rpc import uri_to_path
from wtls.unsaved import OpenBuffer, UnsavedBuffer, UnsavedFinder, unsaved_in

#: Seconds a command's thread waits for the event loop to hand it the open buffers.
GATHER_TIMEOUT = 30.0


def open_texts(ls: Server) -> dict[Path, str]:
    """The text of every open local buffer, by its resolved path (saved or not)."""
    out: dict[Path, str] = {}
    for uri, doc in list(ls.workspace.text_documents.items()):
        path = uri_to_path(uri)
        if path is not None:
            out[path.resolve()] = doc.source
    return out


async def unsaved_finder(ls: Server, start: Path) -> UnsavedFinder:
    """What a command that deletes or rewrites files in the repository of ``start`` asks, from
    its worker thread: the open buffers of EVERY session of this process on that repository (in
    the engine: every editor window and agent, not only the one that runs the command), read on
    the event loop at the moment the command asks (a long ``land`` sees the buffers of then),
    compared with the disk in the asking thread."""
    engine = await ls.engine_for(start)
    loop = asyncio.get_running_loop()

    async def gather() -> list[OpenBuffer]:
        session = ls.sessions.get(engine.repository.key)
        if session is not None:
            return session.shared.open_buffers()
        return [OpenBuffer(path=p, text=t) for p, t in open_texts(ls).items()]

    def find(targets: Sequence[Path]) -> Sequence[UnsavedBuffer]:
        buffers = asyncio.run_coroutine_threadsafe(gather(), loop).result(GATHER_TIMEOUT)
        return unsaved_in(buffers, targets)

    return find


def register(server: Server) -> None:
    """Track didOpen/didChange/didSave/didClose."""

    async def changed(ls: Server, uri: str) -> None:
        for hook in ls.document_hooks:
            ls.spawn_task(hook(ls, uri), f"document hook {hook.__name__}")

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: Server, params: types.DidOpenTextDocumentParams) -> None:
        """Scan a newly opened buffer."""
        await changed(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: Server, params: types.DidChangeTextDocumentParams) -> None:
        """Rescan the buffer as it is typed (markers clear the moment they are fixed)."""
        await changed(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    async def did_close(ls: Server, params: types.DidCloseTextDocumentParams) -> None:
        """Back to the file on disk."""
        await changed(ls, params.text_document.uri)
