"""Domain errors shared by the core, the server and the CLI, and the fix a refusal offers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from wtls.wire import wire


@dataclass(frozen=True, kw_only=True)
class Fix:
    """What gets past a refusal, for each face to word its own way: the CLI as a flag or a
    command (``pass --force``, ```wtls unlock```), an editor as a button (``label``).

    ``action`` is the command that does it (``remove`` is ``wtls.remove`` / ``wtls remove``),
    ``option`` the boolean argument to turn on when the same command is run again (``force``:
    the ``force: true`` argument, the ``--force`` flag), or None when the action is another
    command on the same worktree (``unlock``).
    """

    action: str
    option: str | None = None
    label: str

    @property
    def slot(self) -> str:
        """Where this fix's words go in a refusal's message (see :meth:`Refused.worded`)."""
        return f"\0{self.option or self.action}\0"


def _labelled(fix: Fix) -> str:
    return f"choose “{fix.label}”"


class Refused(Exception):
    """wtls refused an operation on purpose; nothing was changed. The message says why.

    A refusal that something would get past carries ``fixes``; its message then holds each
    fix's :attr:`Fix.slot`, filled in by :meth:`worded` with the face's words for it. The CLI
    prints it on stderr and exits 1; the server answers the command with a JSON-RPC error whose
    code is :data:`REFUSED_CODE` and whose ``data`` carries the fixes.
    """

    def __init__(self, message: str, *, fixes: tuple[Fix, ...] = ()) -> None:
        self.template = message
        self.fixes = fixes
        super().__init__(self.worded(_labelled))

    @property
    def fix(self) -> Fix | None:
        """The main fix (the first), if any."""
        return self.fixes[0] if self.fixes else None

    def worded(self, words: Callable[[Fix], str]) -> str:
        """The message with each fix put in ``words``."""
        text = self.template
        for fix in self.fixes:
            text = text.replace(fix.slot, words(fix))
        return text


@dataclass(frozen=True, kw_only=True)
class RefusalData:
    """The ``data`` of a refusal's JSON-RPC error: ``fix`` (the main one) and ``fixes`` (all,
    in the message's order) when something would get past it."""

    kind: str = "refused"
    fix: Fix | None = field(default=None, metadata=wire(omit_default=True))
    fixes: tuple[Fix, ...] = field(default=(), metadata=wire(omit_default=True))

    @classmethod
    def of(cls, exc: Refused) -> RefusalData:
        """The data of refusal ``exc``."""
        return cls(fix=exc.fix, fixes=exc.fixes)


#: JSON-RPC error code (server-defined range) for a refused command.
REFUSED_CODE = -32001
#: JSON-RPC error code for a git failure or other error.
ERROR_CODE = -32002
