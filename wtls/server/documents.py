"""Open documents: conflict markers in unsaved buffers, and hooks for features (overlays)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

if TYPE_CHECKING:
    from wtls.server.server import WtlsServer


def register(server: WtlsServer) -> None:
    """Track didOpen/didChange/didSave/didClose."""

    async def changed(ls: WtlsServer, uri: str) -> None:
        ls.markers.on_document(uri)
        for hook in ls.document_hooks:
            ls.spawn_task(hook(ls, uri), f"document hook {hook.__name__}")

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: WtlsServer, params: types.DidOpenTextDocumentParams) -> None:
        """Scan a newly opened buffer."""
        await changed(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: WtlsServer, params: types.DidChangeTextDocumentParams) -> None:
        """Rescan the buffer as it is typed (markers clear the moment they are fixed)."""
        await changed(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    async def did_close(ls: WtlsServer, params: types.DidCloseTextDocumentParams) -> None:
        """Back to the file on disk."""
        await changed(ls, params.text_document.uri)
