"""git's merge machinery: ``git merge-tree --write-tree --stdin -z`` and its conflicts.

:func:`merge_many` merges many pairs of commits in one git process; :func:`file_conflicts`
turns one merge's conflicted paths into :class:`~wtls.predict.models.FileConflict` entries
with line ranges in each side's file.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from wtls.git import GitError, run_git
from wtls.predict.models import FileConflict, LineRange
from wtls.predict.ranges import content_ranges, whole_file

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class MergeEntry:
    """One ``<mode> <oid> <stage>\\t<path>`` line of merge-tree's conflicted file info."""

    mode: str
    oid: str
    stage: int
    path: str


@dataclass(frozen=True, kw_only=True)
class MergeRecord:
    """One informational message record of ``merge-tree -z``."""

    paths: tuple[str, ...]
    type: str
    message: str


@dataclass(frozen=True, kw_only=True)
class MergeOutcome:
    """One merge's result as ``merge-tree -z`` reports it (``clean`` when no conflict)."""

    clean: bool
    tree: str
    entries: tuple[MergeEntry, ...]
    records: tuple[MergeRecord, ...]

    def conflicted_paths(self) -> list[str]:
        """Conflicted paths in order, plus paths of conflicts that left no index stages."""
        seen: dict[str, None] = {}
        for e in self.entries:
            seen.setdefault(e.path, None)
        for r in self.records:
            if r.type.startswith("CONFLICT") and not any(p in seen for p in r.paths):
                for p in r.paths[:1]:
                    seen.setdefault(p, None)
        return list(seen)


def _parse_merge_tree(data: bytes) -> list[MergeOutcome | None]:
    """Parse ``git merge-tree --write-tree --stdin -z`` output (one outcome per input line)."""
    fields = data.split(b"\0")
    out: list[MergeOutcome | None] = []
    i = 0

    def take() -> str:
        nonlocal i
        value = fields[i].decode("utf-8", "surrogateescape")
        i += 1
        return value

    while i < len(fields) - 1:
        status = take()
        if status not in ("0", "1"):
            # <0: something prevented this merge; its output is unspecified up to the NUL.
            while i < len(fields) and fields[i]:
                i += 1
            i += 1
            out.append(None)
            continue
        tree = take()
        entries: list[MergeEntry] = []
        records: list[MergeRecord] = []
        if status == "0":
            while fields[i]:
                meta, _, path = take().partition("\t")
                mode, oid, stage = meta.split(" ")
                entries.append(MergeEntry(mode=mode, oid=oid, stage=int(stage), path=path))
            i += 1  # the NUL that starts the messages section
            while fields[i]:
                count = int(take())
                paths = tuple(take() for _ in range(count))
                kind = take()
                message = take().rstrip("\n")
                records.append(MergeRecord(paths=paths, type=kind, message=message))
        i += 1  # the NUL that ends this merge
        out.append(
            MergeOutcome(
                clean=status == "1", tree=tree, entries=tuple(entries), records=tuple(records)
            )
        )
    return out


def merge_many(cwd: Path, pairs: Sequence[tuple[str, str]]) -> list[MergeOutcome | None]:
    """Run ``merge-tree --write-tree`` for every ``(ours, theirs)`` pair in one process.

    A pair git refuses (unrelated histories) yields None; the others are still merged.
    """
    if not pairs:
        return []
    stdin = "".join(f"{a} {b}\n" for a, b in pairs).encode()
    try:
        result = run_git(
            ["merge-tree", "--write-tree", "--stdin", "-z"], cwd, input=stdin, timeout=600
        )
        parsed = _parse_merge_tree(result.stdout)
        if len(parsed) == len(pairs):
            return parsed
    except GitError as exc:
        if len(pairs) == 1:
            log.debug("merge-tree %s failed: %s", pairs[0], exc)
            return [None]
    # One bad pair aborts the whole batch: redo them one by one so the others still count.
    return [merge_many(cwd, [pair])[0] for pair in pairs] if len(pairs) > 1 else [None]


def _cat_blobs(cwd: Path, names: Iterable[str]) -> dict[str, bytes | None]:
    """Contents of many objects (``oid`` or ``tree:path``) with one ``git cat-file --batch``."""
    wanted = [n for n in dict.fromkeys(names) if "\n" not in n]
    if not wanted:
        return {}
    data = run_git(
        ["cat-file", "--batch"],
        cwd,
        input="".join(f"{n}\n" for n in wanted).encode("utf-8", "surrogateescape"),
    ).stdout
    out: dict[str, bytes | None] = {}
    pos = 0
    for name in wanted:
        end = data.index(b"\n", pos)
        header = data[pos:end].split(b" ")
        pos = end + 1
        if header[-1].isdigit() and len(header) == 3:
            size = int(header[2])
            out[name] = data[pos : pos + size] if header[1] == b"blob" else None
            pos += size + 1
        else:
            out[name] = None  # "<name> missing" (or ambiguous)
    return out


def _kind_of(record: MergeRecord) -> str:
    """The kind git's `git merge` would print: ``CONFLICT (<kind>): ...``."""
    match = re.match(r"CONFLICT \(([^)]*)\)", record.message)
    if match:
        return match.group(1)
    match = re.match(r"CONFLICT \(([^)]*)\)", record.type)
    return match.group(1) if match else record.type


def file_conflicts(
    cwd: Path,
    outcome: MergeOutcome,
    commit_a: str,
    commit_b: str,
    key_a: str,
    key_b: str,
    *,
    sides: tuple[bool, bool] = (True, True),
    labels: tuple[str, str] | None = None,
) -> tuple[FileConflict, ...]:
    """Turn one merge's conflicted paths into :class:`FileConflict` entries with line ranges.

    ``key_a``/``key_b`` are the sides' keys in ``lines`` (worktree paths); ``sides`` says for
    which sides line ranges are wanted; ``labels`` name the sides (branches) in git's messages,
    which otherwise name the internal commits merged.
    """
    return _unhide_commits(
        _file_conflicts(cwd, outcome, commit_a, commit_b, key_a, key_b, sides),
        {commit_a: labels[0], commit_b: labels[1]} if labels else {},
    )


def _unhide_commits(
    conflicts: tuple[FileConflict, ...], labels: Mapping[str, str]
) -> tuple[FileConflict, ...]:
    """git keeps both versions of a path whose types differ (file vs symlink, file vs folder)
    by renaming one to ``<path>~<side>``; the side is the commit merged, a snapshot nobody
    knows. Report such a copy under its own path (each side still has it as ``<path>``),
    merged with the path's other entry, and say branch names where git's messages say commits.
    """
    merged: dict[str, FileConflict] = {}
    for c in conflicts:
        path = c.path
        base, tilde, suffix = path.rpartition("~")
        if tilde and base and suffix in labels:
            path = base
        message = c.message
        for oid, label in labels.items():
            if label:
                message = message.replace(oid, label)
        c = replace(c, path=path, message=message)
        old = merged.get(path)
        if old is not None:
            c = replace(
                old,
                lines={**c.lines, **old.lines},
                kinds=tuple(dict.fromkeys((*old.kinds, *c.kinds))),
                paths={**c.paths, **old.paths},
                binary=old.binary or c.binary,
                message="\n".join(dict.fromkeys(filter(None, (old.message, c.message)))),
            )
        merged[path] = c
    return tuple(merged.values())


def _file_conflicts(
    cwd: Path,
    outcome: MergeOutcome,
    commit_a: str,
    commit_b: str,
    key_a: str,
    key_b: str,
    sides: tuple[bool, bool],
) -> tuple[FileConflict, ...]:
    if outcome.clean:
        return ()
    paths = outcome.conflicted_paths()
    stages: dict[str, dict[int, str]] = {}
    for e in outcome.entries:
        stages.setdefault(e.path, {})[e.stage] = e.oid
    by_path: dict[str, list[MergeRecord]] = {}
    for r in outcome.records:
        if r.type.startswith("CONFLICT"):
            for p in r.paths:
                by_path.setdefault(p, []).append(r)
    names: list[str] = []
    for path in paths:
        st = stages.get(path, {})
        names.extend(st[k] for k in (2, 3) if k in st)
        names.append(f"{outcome.tree}:{path}")
    blobs = _cat_blobs(cwd, names)
    out: list[FileConflict] = []
    for path in paths:
        st = stages.get(path, {})
        records = by_path.get(path, [])
        binary = any(r.type == "CONFLICT (binary)" for r in records)
        kinds = tuple(
            dict.fromkeys(_kind_of(r) for r in records if r.type != "CONFLICT (binary)")
        ) or (("binary",) if binary else ("content",))
        ours = blobs.get(st[2]) if 2 in st else None
        theirs = blobs.get(st[3]) if 3 in st else None
        merged = blobs.get(f"{outcome.tree}:{path}")
        ranges_a = whole_file(ours)
        ranges_b = whole_file(theirs)
        paths_map: dict[str, str] = {}
        if merged is not None and ours is not None and theirs is not None and not binary:
            found = content_ranges(merged, ours, theirs, commit_a, commit_b)
            if found is not None:
                ranges_a, ranges_b, own_a, own_b = found
                if own_a and own_a != path:
                    paths_map[key_a] = own_a
                if own_b and own_b != path:
                    paths_map[key_b] = own_b
        lines: dict[str, tuple[LineRange, ...]] = {}
        if sides[0] and ranges_a:
            lines[key_a] = ranges_a
        if sides[1] and ranges_b:
            lines[key_b] = ranges_b
        out.append(
            FileConflict(
                path=path,
                kind=kinds[0],
                kinds=kinds,
                lines=lines,
                paths=paths_map,
                binary=binary,
                message="\n".join(dict.fromkeys(r.message for r in records)),
            )
        )
    return tuple(out)
