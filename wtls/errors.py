"""Domain errors shared by the core, the server and the CLI."""

from __future__ import annotations


class Refused(Exception):
    """wtls refused an operation on purpose; nothing was changed. The message says why.

    The CLI prints it on stderr and exits 1; the server answers the command with a JSON-RPC
    error whose code is :data:`REFUSED_CODE` and whose message is this text.
    """


#: JSON-RPC error code (server-defined range) for a refused command.
REFUSED_CODE = -32001
#: JSON-RPC error code for a git failure or other error.
ERROR_CODE = -32002
