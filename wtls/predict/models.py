"""What conflict foresight predicts: the public models (pure data, JSON forms).

A :class:`Prediction` holds one :class:`PairPrediction` per pair of sides that would conflict
or overlap; each lists :class:`FileConflict` entries with line ranges in each side's own file.
A :class:`ConflictNotice` is one range for an editor (made by :func:`wtls.predict.notices_for`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from wtls.wire import wire
from wtls.worktrees import MergeStep, WorktreeConflict

LineRange = tuple[int, int]


@dataclass(frozen=True, kw_only=True)
class FileConflict:
    """One file that conflicts (or overlaps) between two sides.

    ``lines`` maps a side's worktree path (``str``) to 1-based inclusive line ranges in that
    side's working file; a side where the file does not exist (deleted there) has no key.
    ``paths`` gives a side's own relative path when it differs from ``path`` (renames).
    """

    path: str
    kind: str
    lines: Mapping[str, tuple[LineRange, ...]]
    #: Every conflict type git reported for this path (``kind`` is the first).
    kinds: tuple[str, ...] = field(default=(), metadata=wire(internal=True))
    paths: Mapping[str, str] = field(default_factory=dict, metadata=wire(omit_default=True))
    binary: bool = field(default=False, metadata=wire(omit_default=True))
    #: git's own conflict message(s) for this path.
    message: str = field(default="", metadata=wire(omit_default=True))

    def path_in(self, side: Path | str) -> str:
        """This file's relative path in the worktree ``side``."""
        return self.paths.get(str(side), self.path)


@dataclass(frozen=True, kw_only=True)
class PairPrediction:
    """The predicted outcome of merging side ``b`` into side ``a``.

    For a comparison with the base branch (``against_base``), ``a`` is the main worktree's path
    (or the worktree that has the base branch checked out), ``branch_a`` the base branch, and
    the ``a`` side's line numbers refer to the base branch's tip.
    """

    a: Path
    b: Path
    branch_a: str | None
    branch_b: str | None
    conflicts: tuple[FileConflict, ...]
    overlaps: tuple[FileConflict, ...]
    against_base: bool

    def other(self, side: Path) -> tuple[Path, str | None]:
        """The other side's path and branch, seen from ``side``."""
        return (self.b, self.branch_b) if side == self.a else (self.a, self.branch_a)

    def involves(self, worktree: Path) -> bool:
        """Whether ``worktree`` is a side of this pair (the base side of a base pair is not)."""
        return worktree == self.b or (worktree == self.a and not self.against_base)

    def payload(self, entries: tuple[FileConflict, ...]) -> PairPayload:
        """A ``conflicts[]``/``overlaps[]`` entry of ``wtls check --json`` listing ``entries``."""
        return PairPayload(
            worktrees=(self.a, self.b),
            branches=(self.branch_a, self.branch_b),
            against_base=self.against_base,
            files=entries,
        )


@dataclass(frozen=True, kw_only=True)
class PairPayload:
    """A ``conflicts[]``/``overlaps[]`` entry of ``wtls check --json``."""

    worktrees: tuple[Path, Path]
    branches: tuple[str | None, str | None]
    against_base: bool
    files: tuple[FileConflict, ...]


@dataclass(frozen=True, kw_only=True)
class Skipped:
    """A worktree or pair that could not be predicted."""

    path: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class CheckPayload:
    """The object ``wtls check --json`` prints and the ``wtls.check`` command returns."""

    base_branch: str | None
    conflicts: tuple[PairPayload, ...]
    overlaps: tuple[PairPayload, ...]
    merge_order: tuple[MergeStep, ...] | None
    merge_order_text: str | None
    skipped: tuple[Skipped, ...]


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """Everything conflict foresight predicts for one repository at one moment."""

    pairs: tuple[PairPrediction, ...]
    merge_order: tuple[MergeStep, ...] | None
    base_branch: str | None = None
    #: Worktrees or pairs that could not be predicted, and why.
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def has_conflicts(self) -> bool:
        """Whether any merge conflict is predicted."""
        return any(p.conflicts for p in self.pairs)

    def conflicts_for(self, worktree: Path) -> list[WorktreeConflict]:
        """The protocol's per-worktree ``conflicts`` list: ``[{path, branch, files}]``."""
        out: list[WorktreeConflict] = []
        for pair in self.pairs:
            if not pair.conflicts or not pair.involves(worktree):
                continue
            other, branch = pair.other(worktree)
            out.append(
                WorktreeConflict(
                    path=other,
                    branch=branch,
                    files=tuple(sorted({f.path_in(worktree) for f in pair.conflicts})),
                    against_base=pair.against_base,
                )
            )
        return out

    @property
    def merge_order_text(self) -> str | None:
        """The suggested merge order in words, or None when there is nothing to merge."""
        if not self.merge_order:
            return None
        first, *rest = (step.description for step in self.merge_order)
        return f"{first}: {'; '.join(rest)}" if rest else first

    def check_payload(self) -> CheckPayload:
        """The object ``wtls check --json`` prints and the ``wtls.check`` command returns."""
        return CheckPayload(
            base_branch=self.base_branch,
            conflicts=tuple(p.payload(p.conflicts) for p in self.pairs if p.conflicts),
            overlaps=tuple(p.payload(p.overlaps) for p in self.pairs if p.overlaps),
            merge_order=self.merge_order,
            merge_order_text=self.merge_order_text,
            skipped=tuple(Skipped(path=p, reason=r) for p, r in self.skipped),
        )


@dataclass(frozen=True, kw_only=True)
class ConflictNotice:
    """One diagnostic-to-be: a range of a file in one worktree and what it collides with."""

    worktree: Path
    #: Absolute path of the file in ``worktree``.
    file: Path
    rel_path: str
    #: 1-based inclusive lines in the worktree's file.
    start: int
    end: int
    #: ``"warning"`` for a predicted conflict, ``"information"`` for an overlap.
    severity: str
    kind: str
    other: Path
    other_branch: str | None
    against_base: bool
    message: str
