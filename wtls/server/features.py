"""The feature modules of the server, each with one ``register(server)`` function."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wtls.server.server import WtlsServer

#: Registered in this order at server construction (capabilities are computed from them).
FEATURES = (
    "wtls.server.documents",
    "wtls.server.markers_feature",
    "wtls.server.repair",
    "wtls.server.commands",
    "wtls.server.conflicts",
)


def register_all(server: WtlsServer) -> None:
    """Register every feature module."""
    for name in FEATURES:
        importlib.import_module(name).register(server)
