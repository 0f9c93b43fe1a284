"""Quick fixes that resolve a git conflict block: accept current, incoming, both, or base.

The conflict-marker diagnostics themselves come from
:mod:`wtls.server.features.marker_diagnostics`; this module adds the ``textDocument/codeAction``
quick fixes for them. The document is scanned again when the editor asks (its open buffer, or
the file on disk), so the edit always matches the text the editor has now, and the block under
the cursor is the one resolved: the innermost one when blocks of different marker sizes nest.
Each action is a ``WorkspaceEdit`` that replaces exactly the block's lines, from its ``<<<<<<<``
line through the ``>>>>>>>`` line's line break.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec

from wtls.marker_files import MAX_BLOCKS_PER_FILE
from wtls.markers import (
    MAX_SCAN_BYTES,
    ConflictBlock,
    Resolution,
    block_edit,
    is_binary,
    scan_text,
    split_lines,
)
from wtls.server.base import Server
from wtls.server.rpc import uri_to_path

#: The action titles, in the order they are offered ("base" only for diff3/zdiff3 blocks).
TITLES: dict[Resolution, str] = {
    "current": "Accept current change",
    "incoming": "Accept incoming change",
    "both": "Accept both changes",
    "base": "Accept base",
}
#: The diagnostic code marker_diagnostics gives a complete conflict block.
MARKER_CODE = "conflict-marker"
#: Files larger than this get no quick fix (the scanner's own limit).
MAX_FILE_BYTES = MAX_SCAN_BYTES


def register(server: Server) -> None:
    """Offer the conflict quick fixes through the server's shared code-action handler."""
    server.code_action_providers.append(provide)


async def provide(ls: Server, params: types.CodeActionParams) -> list[types.CodeAction]:
    """The quick fixes for the conflict block at ``params.range`` (none outside a block)."""
    if not _wants_quick_fixes(params.context.only):
        return []
    uri = params.text_document.uri
    doc = ls.workspace.text_documents.get(uri)
    version: int | None
    if doc is not None:
        text, version, codec = doc.source, doc.version, doc.position_codec
    else:
        path = uri_to_path(uri)
        if path is None:
            return []
        read = await asyncio.to_thread(_read_text, path)
        if read is None:
            return []
        text, version, codec = read, None, ls.workspace.position_codec
    if len(text) > MAX_FILE_BYTES:
        return []
    scan = await asyncio.to_thread(scan_text, text, max_blocks=MAX_BLOCKS_PER_FILE)
    first, last = params.range.start.line, params.range.end.line
    if last > first and params.range.end.character == 0:
        last -= 1  # a selection that ends at a line's start does not include that line
    block = pick_block(scan.blocks, first, last)
    if block is None:
        return []
    return conflict_actions(
        uri=uri,
        text=text,
        version=version,
        block=block,
        diagnostics=params.context.diagnostics,
        document_changes=_supports_document_changes(ls),
        codec=codec,
    )


def pick_block(blocks: Sequence[ConflictBlock], first: int, last: int) -> ConflictBlock | None:
    """The block a selection of lines ``first..last`` is about.

    The innermost block containing the selection's first line; failing that, the first block
    the selection overlaps (a selection that starts above a block).
    """
    containing = [b for b in blocks if b.start_line <= first <= b.end_line]
    if containing:
        return max(containing, key=lambda b: b.depth)
    return next((b for b in blocks if b.start_line <= last and b.end_line >= first), None)


def conflict_actions(
    *,
    uri: str,
    text: str,
    version: int | None,
    block: ConflictBlock,
    diagnostics: Sequence[types.Diagnostic] = (),
    document_changes: bool = True,
    codec: PositionCodec | None = None,
) -> list[types.CodeAction]:
    """One quick fix per way to resolve ``block`` in ``text`` (the document at ``version``).

    With ``document_changes`` the edit names the document version, so a client refuses to apply
    it to a buffer that changed since; otherwise it is a plain ``changes`` map.
    """
    lines = split_lines(text)
    codec = codec or PositionCodec()
    related = [
        d
        for d in diagnostics
        if d.source == "wtls" and d.code == MARKER_CODE and d.range.start.line == block.start_line
    ]
    hows: list[Resolution] = ["current", "incoming", "both"]
    if block.base is not None:
        hows.append("base")
    actions: list[types.CodeAction] = []
    for how in hows:
        edit = block_edit(lines, block, how)
        span = edit.span
        end_character = span.end_character
        if end_character:
            # Only a closer with no line break ends mid-line; count in the negotiated encoding.
            end_character = codec.client_num_units(lines[block.end_line])
        text_edit = types.TextEdit(
            range=types.Range(
                start=types.Position(line=span.start_line, character=0),
                end=types.Position(line=span.end_line, character=end_character),
            ),
            new_text=edit.new_text,
        )
        if document_changes:
            workspace_edit = types.WorkspaceEdit(
                document_changes=[
                    types.TextDocumentEdit(
                        text_document=types.OptionalVersionedTextDocumentIdentifier(
                            uri=uri, version=version
                        ),
                        edits=[text_edit],
                    )
                ]
            )
        else:
            workspace_edit = types.WorkspaceEdit(changes={uri: [text_edit]})
        actions.append(
            types.CodeAction(
                title=TITLES[how],
                kind=types.CodeActionKind.QuickFix,
                diagnostics=related or None,
                edit=workspace_edit,
            )
        )
    return actions


def _wants_quick_fixes(only: Sequence[str] | None) -> bool:
    """Does a ``context.only`` filter admit quick fixes? (Kinds are hierarchical: "quickfix.x".)"""
    if not only:
        return True
    quick_fix = types.CodeActionKind.QuickFix.value
    for kind in only:
        name = str(getattr(kind, "value", kind))  # an enum member or a plain string
        if not name or quick_fix == name or quick_fix.startswith(f"{name}."):
            return True
    return False


def _supports_document_changes(ls: Server) -> bool:
    workspace = ls.client_capabilities.workspace
    edit = workspace.workspace_edit if workspace is not None else None
    return bool(edit is not None and edit.document_changes)


def _read_text(path: Path) -> str | None:
    """A file's text for an edit, or None when it is missing, huge, binary or not UTF-8.

    Only valid UTF-8 is edited: an editor shows undecodable bytes its own way, and an edit made
    from other text would write the wrong bytes back.
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_FILE_BYTES or is_binary(data):
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
