"""One place that owns published diagnostics.

LSP replaces *all* diagnostics of a URI with each ``publishDiagnostics``, so features (worktree
problems, conflict markers, predicted conflicts, broken links) each set their own category and
this store publishes the merged list for every URI whose content changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from lsprotocol import types

from wtls.locations import file_uri
from wtls.problems import Problem

_SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "information": types.DiagnosticSeverity.Information,
    "hint": types.DiagnosticSeverity.Hint,
}
#: LSP: a character past the end of a line means "to the end of the line".
END_OF_LINE = 10_000


def to_diagnostic(problem: Problem) -> types.Diagnostic:
    """A core :class:`Problem` as an LSP diagnostic."""
    end_line = problem.end_line if problem.end_line is not None else problem.line
    end_char = problem.end_character if problem.end_character is not None else END_OF_LINE
    return types.Diagnostic(
        range=types.Range(
            start=types.Position(line=problem.line, character=problem.character),
            end=types.Position(line=end_line, character=end_char),
        ),
        message=problem.message,
        severity=_SEVERITY[problem.severity],
        code=problem.code,
        source="wtls",
        data=problem.data or None,
    )


def uri_of(path: Path) -> str:
    """The file URI of ``path``."""
    return file_uri(path)


class DiagnosticsStore:
    """Diagnostics by (category, owner) → URI, published merged per URI."""

    def __init__(self, publish: Callable[[types.PublishDiagnosticsParams], None]) -> None:
        #: Sends ``textDocument/publishDiagnostics`` (the server's).
        self._publish = publish
        self._by_key: dict[tuple[str, str], dict[str, list[types.Diagnostic]]] = {}
        self._published: dict[str, list[types.Diagnostic]] = {}

    def replace(self, category: str, owner: str, problems: Iterable[Problem]) -> None:
        """Set every diagnostic of ``category`` for ``owner``; publish the URIs that changed."""
        by_uri: dict[str, list[types.Diagnostic]] = {}
        for problem in problems:
            by_uri.setdefault(uri_of(problem.path), []).append(to_diagnostic(problem))
        key = (category, owner)
        old = self._by_key.get(key, {})
        self._by_key[key] = by_uri
        self._flush(set(old) | set(by_uri))

    def replace_uri(self, category: str, owner: str, uri: str, problems: Iterable[Problem]) -> None:
        """Set the diagnostics of ``category``/``owner`` for one URI only."""
        key = (category, owner)
        current = self._by_key.setdefault(key, {})
        diagnostics = [to_diagnostic(p) for p in problems]
        if diagnostics:
            current[uri] = diagnostics
        else:
            current.pop(uri, None)
        self._flush({uri})

    def clear_owner(self, owner: str) -> None:
        """Drop everything ``owner`` published (a repository closed)."""
        uris: set[str] = set()
        for key in [k for k in self._by_key if k[1] == owner]:
            uris |= set(self._by_key.pop(key))
        self._flush(uris)

    def get(self, uri: str) -> list[types.Diagnostic]:
        """What is currently published for ``uri``."""
        return list(self._published.get(uri, []))

    def _flush(self, uris: Iterable[str]) -> None:
        for uri in sorted(uris):
            merged: list[types.Diagnostic] = []
            # Two features may find the same thing (a workspace folder moved by hand is both
            # a folder git does not list and a hand-moved worktree): one finding per code and
            # range across categories, the first one kept.
            seen: set[tuple[Any, ...]] = set()
            for per_uri in self._by_key.values():
                own = per_uri.get(uri, ())
                merged.extend(d for d in own if _finding(d) not in seen)
                seen.update(_finding(d) for d in own)
            if merged == self._published.get(uri, []):
                continue
            if merged:
                self._published[uri] = merged
            else:
                self._published.pop(uri, None)
            self._publish(types.PublishDiagnosticsParams(uri=uri, diagnostics=merged))


def _finding(diagnostic: types.Diagnostic) -> tuple[Any, ...]:
    r = diagnostic.range
    return (diagnostic.code, r.start.line, r.start.character, r.end.line, r.end.character)
