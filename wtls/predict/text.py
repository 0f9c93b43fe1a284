"""A prediction in words: editor notices per file range, and the report of ``wtls check``."""

from __future__ import annotations

import os
from pathlib import Path

from wtls.predict.models import ConflictNotice, FileConflict, Prediction


def notices_for(prediction: Prediction, worktree: Path) -> list[ConflictNotice]:
    """What the editor of ``worktree`` should show, file by file and range by range.

    Example message: ``cli.py:5 will conflict with feature/wipe (../tasks-app-wipe, lines
    5–5) when merged``.
    """
    out: list[ConflictNotice] = []
    key = str(worktree)
    for pair in prediction.pairs:
        if not pair.involves(worktree):
            continue
        other, branch = pair.other(worktree)
        where = os.path.relpath(other, worktree)
        name = branch or f"detached {other.name}"
        for entries, severity in ((pair.conflicts, "warning"), (pair.overlaps, "information")):
            for fc in entries:
                rel = fc.path_in(worktree)
                ranges = fc.lines.get(key)
                if not ranges:
                    # Deleted on this side (modify/delete): nothing to underline here.
                    continue
                theirs = fc.lines.get(str(other))
                if theirs:
                    their_text = ", ".join(f"lines {s}–{e}" for s, e in theirs)
                else:
                    their_text = "deleted there"
                kind = "" if fc.kind in ("content", "overlap") else f" ({fc.kind})"
                for start, end in ranges:
                    if severity == "warning":
                        into = f" into {branch}" if pair.against_base else ""
                        message = (
                            f"{rel}:{start} will conflict with {name} ({where}, {their_text}) "
                            f"when merged{into}{kind}"
                        )
                    else:
                        message = (
                            f"{rel}:{start} overlaps with changes in {name} ({where}, "
                            f"{their_text}): git would merge it cleanly, but check the result"
                        )
                    out.append(
                        ConflictNotice(
                            worktree=worktree,
                            file=worktree / rel,
                            rel_path=rel,
                            start=start,
                            end=end,
                            severity=severity,
                            kind=fc.kind,
                            other=other,
                            other_branch=branch,
                            against_base=pair.against_base,
                            message=message,
                        )
                    )
    return out


def format_prediction(
    prediction: Prediction, *, cwd: Path | None = None, order: bool = False
) -> str:
    """The human report of ``wtls check``: conflicts, overlaps and (``order``) the merge order."""

    def where(path: Path) -> str:
        return os.path.relpath(path, cwd) if cwd is not None else str(path)

    def ranges(fc: FileConflict, side: Path) -> str:
        found = fc.lines.get(str(side))
        if not found:
            return "deleted"
        return ", ".join(f"{s}–{e}" if s != e else str(s) for s, e in found)

    out: list[str] = []
    for title, attr in (("CONFLICT", "conflicts"), ("overlap", "overlaps")):
        for pair in prediction.pairs:
            entries: tuple[FileConflict, ...] = getattr(pair, attr)
            if not entries:
                continue
            a = f"{pair.branch_a or 'detached'} ({where(pair.a)})"
            b = f"{pair.branch_b or 'detached'} ({where(pair.b)})"
            base_note = " [base branch tip]" if pair.against_base else ""
            out.append(f"{title}: {a}{base_note} <-> {b}")
            for fc in entries:
                kind = "binary" if fc.binary else fc.kind
                out.append(
                    f"  {fc.path} ({kind}): lines {ranges(fc, pair.a)} in {fc.path_in(pair.a)} "
                    f"<-> lines {ranges(fc, pair.b)} in {fc.path_in(pair.b)}"
                )
    if not prediction.has_conflicts:
        base = f" or with {prediction.base_branch}" if prediction.base_branch else ""
        out.insert(0, f"No merge conflicts predicted between worktrees{base}.")
    for path, reason in prediction.skipped:
        out.append(f"skipped {path}: {reason}")
    if order:
        text = prediction.merge_order_text
        out.append(f"Merge order: {text}." if text else "Merge order: nothing to merge.")
    return "\n".join(out)
