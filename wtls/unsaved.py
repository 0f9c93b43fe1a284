"""Unsaved editor buffers in what a command deletes or rewrites: the one rule both faces use.

An editor's open document whose text differs from its file on disk (or whose file is missing)
holds work the disk does not. A command that deletes or rewrites that file (``remove``,
``merge --remove``, the files a merge changes in the base worktree, ``move``, ``discard``,
``prune --merged``) would leave the editor with a buffer of a file that is gone or changed under
it. The engine knows every window's buffers (each LSP session's open documents): the server
gathers them (:meth:`wtls.server.shared.SharedRepository.open_buffers`), the CLI asks the running
engine (:func:`wtls.daemon.ask.ask_unsaved`, answered by :func:`unsaved_in` there), and the core
commands call :func:`refuse_unsaved` with the paths they are about to change, after their own
checks and before changing anything. No LSP, no git.

The question and the answer that travel between the CLI and the engine are typed here
(:class:`UnsavedQuestion`, :class:`UnsavedAnswer`), read and written in one place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wtls.errors import Fix, Refused
from wtls.overlays import differs_from_disk

#: At most this many buffers are named in a refusal (then "and N more").
LISTED = 12
#: A question's targets take at most this many bytes of JSON (a hello line is 64 KiB at most):
#: a merge of thousands of files asks about their folders instead (see :meth:`covering`).
QUESTION_BYTES = 32 * 1024


@dataclass(frozen=True)
class OpenBuffer:
    """One open document of one editor window (saved or not)."""

    path: Path
    text: str
    #: Which window holds it ("the window on /path"), when known.
    window: str | None = None


@dataclass(frozen=True)
class UnsavedBuffer:
    """An open document whose text differs from its file on disk."""

    path: Path
    window: str | None = None

    def describe(self) -> str:
        """``/path/file`` and, when known, the window that holds it."""
        return f"{self.path} (in {self.window})" if self.window else str(self.path)


#: What a command asks before it changes files: the unsaved buffers inside these paths (files,
#: or folders: everything below them). Blocking; may ask another process.
UnsavedFinder = Callable[[Sequence[Path]], Sequence[UnsavedBuffer]]


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _inside(path: Path, targets: Sequence[Path]) -> bool:
    return any(path == t or t in path.parents for t in targets)


def unsaved_in(buffers: Iterable[OpenBuffer], targets: Sequence[Path]) -> tuple[UnsavedBuffer, ...]:
    """The buffers inside ``targets`` whose text differs from the disk, sorted by path (a buffer
    whose text equals its file is saved, whatever the editor's dirty flag says). Blocking."""
    real = [_real(t) for t in targets]
    found: set[UnsavedBuffer] = set()
    for buffer in buffers:
        path = _real(buffer.path)
        if _inside(path, real) and differs_from_disk(path, buffer.text):
            found.add(UnsavedBuffer(path=path, window=buffer.window))
    return tuple(sorted(found, key=lambda b: (str(b.path), b.window or "")))


def refuse_unsaved(
    find: UnsavedFinder | None,
    targets: Sequence[Path],
    *,
    what: str,
    fix: Fix | None = None,
    otherwise: str | None = None,
) -> None:
    """Raise :class:`Refused` when an editor holds unsaved buffers inside ``targets``, naming them.

    ``what`` says what would happen to them ("removing worktree /x/b deletes"), ``fix`` is what
    gets past it (``--force``), ``otherwise`` another way on, in words ("merge without
    --remove"). ``find`` None: nobody to ask (no engine), nothing to refuse.
    """
    if find is None or not targets:
        return
    unsaved = list(find(targets))
    if not unsaved:
        return
    named = [b.describe() for b in unsaved[:LISTED]]
    more = f" and {len(unsaved) - LISTED} more" if len(unsaved) > LISTED else ""
    ways = ["save or close them first"]
    if otherwise:
        ways.append(otherwise)
    if fix is not None:
        ways.append(f"{fix.slot} to go on anyway (their unsaved text is not saved anywhere)")
    raise Refused(
        f"{what} files with unsaved changes in an editor: {', '.join(named)}{more}; "
        f"{', or '.join(ways)}; nothing was changed",
        fixes=(fix,) if fix is not None else (),
    )


@dataclass(frozen=True)
class UnsavedQuestion:
    """The CLI's question to the engine: the unsaved buffers inside these absolute paths."""

    targets: tuple[Path, ...]

    @classmethod
    def covering(cls, targets: Sequence[Path], budget: int = QUESTION_BYTES) -> UnsavedQuestion:
        """A question about ``targets``, or, when they would not fit in ``budget`` bytes, about
        folders that hold them all (their parents, then theirs…): the answer then covers more,
        and :meth:`UnsavedAnswer.inside` keeps what is inside ``targets``."""
        paths = sorted({_real(t) for t in targets})
        while len(json.dumps(cls(targets=tuple(paths)).to_json())) > budget and len(paths) > 1:
            parents = sorted({p.parent for p in paths})
            paths = [p for p in parents if not any(q in p.parents for q in parents)]
        return cls(targets=tuple(paths))

    def to_json(self) -> dict[str, Any]:
        """The hello's ``unsaved`` field."""
        return {"targets": [os.fspath(t) for t in self.targets]}

    @classmethod
    def from_json(cls, value: Any) -> UnsavedQuestion:
        """Read a hello's ``unsaved`` field; ValueError says what is wrong."""
        targets = value.get("targets") if isinstance(value, dict) else None
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise ValueError("`unsaved` needs `targets`, a list of strings")
        if not all(os.path.isabs(t) for t in targets):
            raise ValueError("`unsaved` targets must be absolute paths")
        return cls(targets=tuple(Path(t) for t in targets))


@dataclass(frozen=True)
class UnsavedAnswer:
    """The engine's answer: the unsaved buffers found (each with its window)."""

    buffers: tuple[UnsavedBuffer, ...]

    def to_json(self) -> dict[str, Any]:
        """The reply's ``unsaved`` field."""
        return {"buffers": [{"path": os.fspath(b.path), "window": b.window} for b in self.buffers]}

    def inside(self, targets: Sequence[Path]) -> tuple[UnsavedBuffer, ...]:
        """The buffers inside ``targets`` (an answer to a :meth:`UnsavedQuestion.covering`
        question may hold more)."""
        real = [_real(t) for t in targets]
        return tuple(b for b in self.buffers if _inside(_real(b.path), real))

    @classmethod
    def from_json(cls, value: Any) -> UnsavedAnswer:
        """Read a reply's ``unsaved`` field; ValueError says what is wrong."""
        items = value.get("buffers") if isinstance(value, dict) else None
        if not isinstance(items, list):
            raise ValueError("`unsaved` needs `buffers`, a list")
        out: list[UnsavedBuffer] = []
        for item in items:
            path = item.get("path") if isinstance(item, dict) else None
            window = item.get("window") if isinstance(item, dict) else None
            if not isinstance(path, str) or not (window is None or isinstance(window, str)):
                raise ValueError("each unsaved buffer needs `path` and `window` (string or null)")
            out.append(UnsavedBuffer(path=Path(path), window=window))
        return cls(buffers=tuple(out))
