"""What the engine answers to a ``query`` hello (the CLI's ``list``, ``status``, ``check``
answered from the engine's state). A dispatch point: no query is known yet."""

from __future__ import annotations

from typing import Any


async def answer_query(request: dict[str, Any]) -> dict[str, Any]:
    """The answer to the hello ``request``: ``{"ok": true, "result": ...}`` or ``{"ok": false,
    "error": ...}``."""
    return {"ok": False, "error": f"unknown query {request.get('query')!r}"}
