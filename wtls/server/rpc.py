"""JSON-RPC helpers for feature modules: commands, their arguments, errors and URIs.

:func:`command` registers ``handler(ls, args)`` as a ``workspace/executeCommand`` handler and
maps the core's errors to JSON-RPC codes in one place: :class:`~wtls.errors.Refused` →
``REFUSED_CODE``, git and repository errors → ``ERROR_CODE``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pygls.exceptions import JsonRpcInvalidParams, JsonRpcServerError

from wtls.arguments import ArgumentError, read_arguments
from wtls.errors import ERROR_CODE, REFUSED_CODE, RefusalData, Refused
from wtls.git import GitError, GitUnavailable
from wtls.locations import BadLocation, to_path
from wtls.server.base import Server
from wtls.wire import to_wire
from wtls.worktrees import RepositoryError

#: JSON-RPC's code for params that cannot be read (a command argument of the wrong kind).
INVALID_PARAMS = -32602

A = TypeVar("A")
CommandHandler = Callable[[Server, A], Awaitable[Any]]


def command(
    server: Server, name: str, args_type: type[A]
) -> Callable[[CommandHandler[A]], CommandHandler[A]]:
    """Register ``handler(ls, args)`` as the server command ``name``.

    The single argument object (``{}`` when omitted) is read as ``args_type`` by
    :func:`wtls.arguments.read_arguments`; one that cannot be read is answered with
    InvalidParams naming the field. The handler's result (a frozen result) is sent in its wire
    form. :class:`Refused` becomes a JSON-RPC error with code ``REFUSED_CODE`` (its ``data``
    carries the refusal's ``fix`` when it has one); git and repository errors ``ERROR_CODE``.
    """

    def decorator(handler: CommandHandler[A]) -> CommandHandler[A]:
        # Not functools.wraps: pygls validates arguments against the visible signature, and
        # the handler's (ls, args) would reject a wrong argument before our clear message.
        async def run(ls: Server, *arguments: Any) -> Any:
            return await _answer(ls, name, args_type, arguments[0] if arguments else {}, handler)

        run.__doc__ = handler.__doc__
        run.__name__ = handler.__name__
        server.command(name)(run)
        return handler

    return decorator


def request(
    server: Server, method: str, params_type: type[A]
) -> Callable[[CommandHandler[A]], CommandHandler[A]]:
    """Register ``handler(ls, params)`` for wtls's own request ``method``, with the same
    typed params, error codes and wire form as :func:`command`."""

    def decorator(handler: CommandHandler[A]) -> CommandHandler[A]:
        async def run(ls: Server, params: Any) -> Any:
            return await _answer(ls, method, params_type, params, handler)

        run.__doc__ = handler.__doc__
        run.__name__ = handler.__name__
        server.feature(method)(run)
        return handler

    return decorator


async def _answer(
    ls: Server, name: str, args_type: type[A], raw: Any, handler: CommandHandler[A]
) -> Any:
    """Read ``raw`` as ``args_type``, run ``handler``, and map the outcome to JSON-RPC."""
    try:
        args = read_arguments(name, args_type, to_dict(raw) if raw is not None else {})
    except ArgumentError as exc:
        data = {"kind": "invalid-argument", "field": exc.field, "expected": exc.expected}
        raise JsonRpcInvalidParams(str(exc), INVALID_PARAMS, data) from exc
    try:
        return to_wire(await handler(ls, args))
    except Refused as exc:
        raise rpc_error(str(exc), REFUSED_CODE, to_wire(RefusalData.of(exc))) from exc
    except (GitError, RepositoryError, GitUnavailable, OSError) as exc:
        raise rpc_error(str(exc), ERROR_CODE, {"kind": "error"}) from exc


def rpc_error(message: str, code: int, data: Any = None) -> JsonRpcServerError:
    """A JSON-RPC error response carrying ``code`` (pygls' constructor is untyped)."""
    return JsonRpcServerError(message, code, data)  # type: ignore[no-untyped-call]


def to_dict(value: Any) -> Any:
    """Turn pygls' namedtuples (how unknown JSON objects arrive) back into plain JSON values."""
    if hasattr(value, "_asdict"):
        return {k: to_dict(v) for k, v in value._asdict().items()}
    if isinstance(value, Mapping):
        return {k: to_dict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_dict(v) for v in value]
    return value


def uri_to_path(uri: str) -> Path | None:
    """A document's local file URI as a path (None for other schemes, remote hosts, NULs)."""
    if not uri.lower().startswith("file:"):
        return None
    try:
        return to_path(uri, name="uri")
    except BadLocation:
        return None
