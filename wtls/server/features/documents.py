"""Open documents: every feature's document hooks run when a buffer opens, changes or closes
(conflict markers in unsaved buffers, overlays for conflict prediction); and every window's
unsaved buffers for the commands that delete or rewrite files (:func:`unsaved_finder`)."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from wtls.server.base import Server
from wtls.server.rpc import uri_to_path
from wtls.unsaved import OpenBuffer, UnsavedFinder, finder_over


def open_texts(ls: Server) -> dict[Path, str]:
    """The text of every open local buffer, by its resolved path (saved or not)."""
    out: dict[Path, str] = {}
    for uri, doc in list(ls.workspace.text_documents.items()):
        path = uri_to_path(uri)
        if path is not None:
            out[path.resolve()] = doc.source
    return out


async def unsaved_finder(ls: Server, start: Path) -> UnsavedFinder:
    """What a command that deletes or rewrites files in the repository of ``start`` asks: the
    open buffers of EVERY session of this process on that repository (in the engine: every
    editor window and agent, not only the one that runs the command), taken now on the event
    loop, compared with the disk when the command asks (in its thread)."""
    engine = await ls.engine_for(start)
    session = ls.sessions.get(engine.repository.key)
    if session is not None:
        return finder_over(session.shared.open_buffers())
    return finder_over([OpenBuffer(path=p, text=t) for p, t in open_texts(ls).items()])


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
