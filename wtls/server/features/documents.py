"""Open documents: every feature's document hooks run when a buffer opens, changes or closes
(conflict markers in unsaved buffers, overlays for conflict prediction)."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from wtls.server.base import Server
from wtls.server.rpc import uri_to_path


def open_texts(ls: Server) -> dict[Path, str]:
    """The text of every open local buffer, by its resolved path (saved or not)."""
    out: dict[Path, str] = {}
    for uri, doc in list(ls.workspace.text_documents.items()):
        path = uri_to_path(uri)
        if path is not None:
            out[path.resolve()] = doc.source
    return out


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
