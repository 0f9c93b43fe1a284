"""JSON-RPC helpers for feature modules: commands, their arguments, errors and URIs.

:func:`command` registers ``handler(ls, args)`` as a ``workspace/executeCommand`` handler and
maps the core's errors to JSON-RPC codes in one place: :class:`~wtls.errors.Refused` →
``REFUSED_CODE``, git and repository errors → ``ERROR_CODE``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from pygls.exceptions import JsonRpcServerError

from wtls.errors import ERROR_CODE, REFUSED_CODE, Refused
from wtls.git import GitError, GitUnavailable
from wtls.locations import BadLocation, to_path
from wtls.server.base import Server
from wtls.worktrees import RepositoryError

CommandHandler = Callable[[Server, dict[str, Any]], Awaitable[Any]]


def command(server: Server, name: str) -> Callable[[CommandHandler], CommandHandler]:
    """Register ``handler(ls, args)`` as the server command ``name``.

    The single argument object arrives as a dict (``{}`` when omitted). :class:`Refused` becomes
    a JSON-RPC error with code ``REFUSED_CODE``; git and repository errors ``ERROR_CODE``.
    """

    def decorator(handler: CommandHandler) -> CommandHandler:
        # Not functools.wraps: pygls validates arguments against the visible signature, and
        # the handler's (ls, args) would reject a wrong argument before our clear message.
        async def run(ls: Server, *arguments: Any) -> Any:
            args = to_dict(arguments[0]) if arguments else {}
            if not isinstance(args, dict):
                raise rpc_error(
                    f"{name} takes one object argument, got {type(args).__name__}", ERROR_CODE
                )
            try:
                return await handler(ls, args)
            except Refused as exc:
                raise rpc_error(str(exc), REFUSED_CODE, {"kind": "refused"}) from exc
            except (GitError, RepositoryError, GitUnavailable, OSError) as exc:
                raise rpc_error(str(exc), ERROR_CODE, {"kind": "error"}) from exc

        run.__doc__ = handler.__doc__
        run.__name__ = handler.__name__
        server.command(name)(run)
        return handler

    return decorator


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


def arg_str(args: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    """A string argument of a command, with a clear refusal for a wrong type."""
    value = args.get(key)
    if value is None:
        if required:
            raise Refused(f"missing argument {key!r}")
        return None
    if not isinstance(value, str):
        raise Refused(f"argument {key!r} must be a string, got {type(value).__name__}")
    return value


def arg_required(args: Mapping[str, Any], key: str) -> str:
    """A string argument a command cannot do without: a clear refusal naming it when absent."""
    value = arg_str(args, key, required=True)
    if value is None:  # pragma: no cover - arg_str refused already
        raise Refused(f"missing argument {key!r}")
    return value


def arg_bool(args: Mapping[str, Any], key: str) -> bool:
    """A boolean argument of a command (absent = False)."""
    value = args.get(key, False)
    if not isinstance(value, bool):
        raise Refused(f"argument {key!r} must be true or false, got {value!r}")
    return value


def arg_path(args: Mapping[str, Any], key: str, *, required: bool = False) -> Path | None:
    """A command argument that names a place (a file URI or a path), checked by
    :func:`wtls.locations.to_path`: a clear refusal naming ``key`` when it does not."""
    value = arg_str(args, key, required=required)
    return to_path(value, name=key) if value is not None else None


def uri_to_path(uri: str) -> Path | None:
    """A document's local file URI as a path (None for other schemes, remote hosts, NULs)."""
    if not uri.lower().startswith("file:"):
        return None
    try:
        return to_path(uri, name="uri")
    except BadLocation:
        return None
