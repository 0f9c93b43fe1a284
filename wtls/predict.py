"""Conflict foresight: predict what merging the worktrees' *current working states* would do.

Pure core (no LSP). For every worktree, its working state (committed and uncommitted changes,
untracked files, never ignored ones, plus unsaved editor buffers given as overlays) is
snapshotted into an unreferenced commit through a *temporary* index: a copy of the worktree's
real index (so stat data lets git skip unchanged files and gitlinks/skip-worktree entries stay
right), ``git add -A``, ``write-tree``, ``commit-tree -p HEAD``. The worktree's real index, HEAD
and refs are never touched. The snapshots are then merged pairwise, and each worktree against
the base branch's tip, with ``git merge-tree --write-tree --stdin -z`` (one process for the whole
matrix), which is git's own merge machinery: the prediction is what ``git merge`` would do.

Snapshot and merge objects are loose unreferenced objects; ``git gc`` removes them.

Results are cached: a worktree is re-snapshotted only when its fingerprint (HEAD, index file,
the changed files' stat data, overlays) changes, and a pair is re-merged only when one of its two
commits changed.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from wtls.git import GitError, require_git, run_git, split_z
from wtls.worktrees import Repository, RepositoryState, WorktreeState

log = logging.getLogger(__name__)

#: Identity of wtls's own (unreferenced) snapshot commits, so they work without user config.
IDENTITY_ENV = {
    "GIT_AUTHOR_NAME": "wtls",
    "GIT_AUTHOR_EMAIL": "wtls@localhost",
    "GIT_COMMITTER_NAME": "wtls",
    "GIT_COMMITTER_EMAIL": "wtls@localhost",
}

#: Two changes (against the merge base) at most this many unchanged lines apart are an overlap.
OVERLAP_DISTANCE = 1

#: Merge-order search: all orders (as a search over subsets) up to this many candidates.
EXHAUSTIVE_ORDER_LIMIT = 6
#: Merge-order search: partial orders kept per step (beam), bounding the number of merges.
ORDER_BEAM = 60

#: An untracked folder with more files than this makes the fingerprint "unknown" (re-snapshot).
_FINGERPRINT_WALK_LIMIT = 5000

LineRange = tuple[int, int]


# ----------------------------------------------------------------------------- public models
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
    kinds: tuple[str, ...] = ()
    paths: Mapping[str, str] = field(default_factory=dict)
    binary: bool = False
    #: git's own conflict message(s) for this path.
    message: str = ""

    def path_in(self, side: Path | str) -> str:
        """This file's relative path in the worktree ``side``."""
        return self.paths.get(str(side), self.path)

    def to_json(self) -> dict[str, Any]:
        """The ``files[]`` entry of ``wtls check --json``."""
        out: dict[str, Any] = {
            "path": self.path,
            "kind": self.kind,
            "lines": {k: [list(r) for r in v] for k, v in self.lines.items()},
        }
        if self.paths:
            out["paths"] = dict(self.paths)
        if self.binary:
            out["binary"] = True
        if self.message:
            out["message"] = self.message
        return out


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

    def to_json(self, entries: tuple[FileConflict, ...]) -> dict[str, Any]:
        """A ``conflicts[]``/``overlaps[]`` entry of ``wtls check --json``."""
        return {
            "worktrees": [str(self.a), str(self.b)],
            "branches": [self.branch_a, self.branch_b],
            "againstBase": self.against_base,
            "files": [f.to_json() for f in entries],
        }


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """Everything conflict foresight predicts for one repository at one moment."""

    pairs: tuple[PairPrediction, ...]
    merge_order: tuple[dict[str, Any], ...] | None
    base_branch: str | None = None
    #: Worktrees or pairs that could not be predicted, and why.
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def has_conflicts(self) -> bool:
        """Whether any merge conflict is predicted."""
        return any(p.conflicts for p in self.pairs)

    def conflicts_for(self, worktree: Path) -> list[dict[str, Any]]:
        """The protocol's per-worktree ``conflicts`` list: ``[{path, branch, files}]``."""
        out: list[dict[str, Any]] = []
        for pair in self.pairs:
            if not pair.conflicts or not pair.involves(worktree):
                continue
            other, branch = pair.other(worktree)
            out.append(
                {
                    "path": str(other),
                    "branch": branch,
                    "files": sorted({f.path_in(worktree) for f in pair.conflicts}),
                    "againstBase": pair.against_base,
                }
            )
        return out

    @property
    def merge_order_text(self) -> str | None:
        """The suggested merge order in words, or None when there is nothing to merge."""
        if not self.merge_order:
            return None
        first, *rest = (str(step["description"]) for step in self.merge_order)
        return f"{first}: {'; '.join(rest)}" if rest else first

    def to_check_json(self) -> dict[str, Any]:
        """The object ``wtls check --json`` prints and the ``wtls.check`` command returns."""
        return {
            "baseBranch": self.base_branch,
            "conflicts": [p.to_json(p.conflicts) for p in self.pairs if p.conflicts],
            "overlaps": [p.to_json(p.overlaps) for p in self.pairs if p.overlaps],
            "mergeOrder": list(self.merge_order) if self.merge_order is not None else None,
            "mergeOrderText": self.merge_order_text,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
        }


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


# ----------------------------------------------------------------------------- internals
@dataclass(frozen=True, kw_only=True)
class _Commit:
    """A commit to merge: a snapshot, a HEAD, the base tip or a simulated merge."""

    oid: str
    tree: str
    #: Committer timestamp, reused for commits built on top so dates never go backwards.
    date: int


@dataclass(frozen=True, kw_only=True)
class _Snapshot:
    worktree: Path
    head: str
    commit: _Commit
    fingerprint: tuple[Any, ...] | None
    overlays: str


@dataclass(frozen=True, kw_only=True)
class _Entry:
    """One ``<mode> <oid> <stage>\\t<path>`` line of merge-tree's conflicted file info."""

    mode: str
    oid: str
    stage: int
    path: str


@dataclass(frozen=True, kw_only=True)
class _Record:
    """One informational message record of ``merge-tree -z``."""

    paths: tuple[str, ...]
    type: str
    message: str


@dataclass(frozen=True, kw_only=True)
class _MergeOutcome:
    clean: bool
    tree: str
    entries: tuple[_Entry, ...]
    records: tuple[_Record, ...]

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


@dataclass(frozen=True, kw_only=True)
class _PairResult:
    outcome: _MergeOutcome
    conflicts: tuple[FileConflict, ...]
    overlaps: tuple[FileConflict, ...]


_TEMP_PREFIX = "wtls-predict-"
#: A temp folder of ours older than this was left by a process that was killed mid-snapshot.
_STALE_TEMP_SECONDS = 3600


class _TempDir:
    """A private temporary folder, removed on exit (never inside the repository)."""

    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix=_TEMP_PREFIX))
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _commit_info(cwd: Path, rev: str) -> _Commit | None:
    """Commit id, tree and committer date of ``rev``; None if it does not resolve."""
    try:
        out = run_git(
            ["log", "-1", "--no-walk", "--format=%H %T %ct", "--end-of-options", rev, "--"], cwd
        ).text.split()
    except GitError:
        return None
    if len(out) != 3:
        return None
    return _Commit(oid=out[0], tree=out[1], date=int(out[2]))


def _worktree_index(worktree: Path) -> Path:
    """The real index file of ``worktree`` (``git rev-parse --git-path index``)."""
    rel = run_git(["rev-parse", "--git-path", "index"], worktree).text
    path = Path(rel)
    return path if path.is_absolute() else worktree / path


def snapshot_worktree(
    worktree: Path, overlays: Mapping[str, bytes] | None = None, *, index: Path | None = None
) -> tuple[str, _Commit] | None:
    """Snapshot ``worktree``'s working state (plus ``overlays``: relative path → bytes).

    ``index`` is the worktree's real index file when the caller knows it (saves a git call).
    Returns ``(head, commit)``; the commit is HEAD itself when nothing differs from it. None
    for a worktree without commits. The worktree's index, HEAD and refs are not touched.
    """
    head = _commit_info(worktree, "HEAD")
    if head is None:
        return None
    real_index = index if index is not None else _worktree_index(worktree)
    with _TempDir() as tmp:
        index = tmp / "index"
        env = {"GIT_INDEX_FILE": str(index)}
        try:
            # copy2 keeps the mtime: git's racy-clean check compares entries with the index
            # file's own mtime, and a newer copy would hide a same-second edit.
            shutil.copy2(real_index, index)
        except FileNotFoundError:
            run_git(["read-tree", head.oid], worktree, env=env)
        run_git(["add", "-A"], worktree, env=env)
        if overlays:
            _apply_overlays(worktree, overlays, env, tmp)
        tree = run_git(["write-tree"], worktree, env=env).text
    if tree == head.tree:
        return head.oid, head
    oid = run_git(
        ["commit-tree", tree, "-p", head.oid, "-m", f"wtls snapshot of {worktree}"],
        worktree,
        env={
            **IDENTITY_ENV,
            # The parent's date: deterministic ids (same state → same commit) and no clock skew.
            "GIT_AUTHOR_DATE": f"@{head.date} +0000",
            "GIT_COMMITTER_DATE": f"@{head.date} +0000",
        },
    ).text
    return head.oid, _Commit(oid=oid, tree=tree, date=head.date)


def _apply_overlays(
    worktree: Path, overlays: Mapping[str, bytes], env: Mapping[str, str], tmp: Path
) -> None:
    """Put unsaved buffers into the temporary index, as ``git add`` would have (filters too)."""
    rels = sorted(overlays)
    ignored = set(
        split_z(
            run_git(
                ["check-ignore", "-z", "--stdin"],
                worktree,
                env=env,
                input=b"\0".join(r.encode("utf-8", "surrogateescape") for r in rels) + b"\0",
                ok_codes=(0, 1),
            ).stdout
        )
    )
    staged: dict[str, str] = {}
    listing = run_git(
        ["ls-files", "-s", "-z", "--", *rels],
        worktree,
        env={**env, "GIT_LITERAL_PATHSPECS": "1"},  # a file named `*.py` is not a glob here
    ).stdout
    for item in split_z(listing):
        meta, _, path = item.partition("\t")
        staged[path] = meta.split(" ")[0]
    lines: list[bytes] = []
    for n, rel in enumerate(rels):
        if rel in ignored and rel not in staged:
            continue  # an ignored file never takes part in a merge
        blob_file = tmp / f"overlay-{n}"
        blob_file.write_bytes(overlays[rel])
        # --path applies the path's attributes (eol, clean filters) like `git add` does.
        oid = run_git(
            ["hash-object", "-w", f"--path={rel}", "--", str(blob_file)], worktree, env=env
        ).text
        mode = staged.get(rel)
        if mode is None or mode == "160000":
            mode = "100755" if os.access(worktree / rel, os.X_OK) else "100644"
        lines.append(f"{mode} {oid}\t{rel}".encode("utf-8", "surrogateescape"))
    if lines:
        run_git(
            ["update-index", "-z", "--add", "--index-info"],
            worktree,
            env=env,
            input=b"\0".join(lines) + b"\0",
        )


def _parse_merge_tree(data: bytes) -> list[_MergeOutcome | None]:
    """Parse ``git merge-tree --write-tree --stdin -z`` output (one outcome per input line)."""
    fields = data.split(b"\0")
    out: list[_MergeOutcome | None] = []
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
        entries: list[_Entry] = []
        records: list[_Record] = []
        if status == "0":
            while fields[i]:
                meta, _, path = take().partition("\t")
                mode, oid, stage = meta.split(" ")
                entries.append(_Entry(mode=mode, oid=oid, stage=int(stage), path=path))
            i += 1  # the NUL that starts the messages section
            while fields[i]:
                count = int(take())
                paths = tuple(take() for _ in range(count))
                kind = take()
                message = take().rstrip("\n")
                records.append(_Record(paths=paths, type=kind, message=message))
        i += 1  # the NUL that ends this merge
        out.append(
            _MergeOutcome(
                clean=status == "1", tree=tree, entries=tuple(entries), records=tuple(records)
            )
        )
    return out


def merge_many(cwd: Path, pairs: Sequence[tuple[str, str]]) -> list[_MergeOutcome | None]:
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


def _kind_of(record: _Record) -> str:
    """The kind git's `git merge` would print: ``CONFLICT (<kind>): ...``."""
    match = re.match(r"CONFLICT \(([^)]*)\)", record.message)
    if match:
        return match.group(1)
    match = re.match(r"CONFLICT \(([^)]*)\)", record.type)
    return match.group(1) if match else record.type


def _split_lines(data: bytes) -> list[bytes]:
    """Lines without their terminators (a final newline does not start an empty line)."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line.removesuffix(b"\r") for line in lines]


def _whole_file(data: bytes | None) -> tuple[LineRange, ...]:
    if data is None:
        return ()
    return ((1, max(1, len(_split_lines(data)))),)


@dataclass
class _Block:
    """One conflict block of a merged file, located in the ours-view and theirs-view."""

    ours_start: int  # 0-based index in the ours-view where the block's ours lines begin
    ours_len: int
    theirs_start: int
    theirs_len: int
    ours_label: str
    theirs_label: str


def parse_conflict_blocks(
    merged: bytes, label_a: str, label_b: str
) -> tuple[list[bytes], list[bytes], list[_Block]] | None:
    """Split a merged file with conflict markers into its ours-view, theirs-view and blocks.

    The ours-view is the merged file with each conflict block replaced by its "ours" lines
    (theirs-view likewise). Only markers whose labels name the merged commits (``label_a``,
    ``label_b``, optionally followed by ``:path`` when renames were involved) count, so a file
    that already contains marker-like lines is not misread. None if no block was found.
    """
    lines = _split_lines(merged)
    ours: list[bytes] = []
    theirs: list[bytes] = []
    blocks: list[_Block] = []
    a = label_a.encode()
    b = label_b.encode()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(rb"^(<{7,}) (.*)$", line)
        if m and (m.group(2) == a or m.group(2).startswith(a + b":")):
            size = len(m.group(1))
            ours_label = m.group(2).decode("utf-8", "surrogateescape")
            j = i + 1
            ours_part: list[bytes] = []
            theirs_part: list[bytes] = []
            section = "ours"
            theirs_label = None
            while j < len(lines):
                cur = lines[j]
                if section == "ours" and re.match(rb"^\|{%d}( |$)" % size, cur):
                    section = "base"
                elif section in ("ours", "base") and cur == b"=" * size:
                    section = "theirs"
                elif section == "theirs":
                    m2 = re.match(rb"^>{%d} (.*)$" % size, cur)
                    if m2 and (m2.group(1) == b or m2.group(1).startswith(b + b":")):
                        theirs_label = m2.group(1).decode("utf-8", "surrogateescape")
                        break
                    theirs_part.append(cur)
                elif section == "ours":
                    ours_part.append(cur)
                j += 1
            if theirs_label is not None:
                blocks.append(
                    _Block(
                        ours_start=len(ours),
                        ours_len=len(ours_part),
                        theirs_start=len(theirs),
                        theirs_len=len(theirs_part),
                        ours_label=ours_label,
                        theirs_label=theirs_label,
                    )
                )
                ours.extend(ours_part)
                theirs.extend(theirs_part)
                i = j + 1
                continue
        ours.append(line)
        theirs.append(line)
        i += 1
    if not blocks:
        return None
    return ours, theirs, blocks


def _view_to_side(view: list[bytes], side: list[bytes]) -> list[int | None]:
    """For each line of ``view``, its 0-based line in ``side`` (None where it has none).

    ``view`` differs from ``side`` only by the other side's cleanly merged changes, which never
    touch a conflict block, so a line diff aligns the blocks exactly.
    """
    mapping: list[int | None] = [None] * len(view)
    # Common prefix and suffix first: cheap, and keeps difflib's work to the changed middle.
    p = 0
    while p < len(view) and p < len(side) and view[p] == side[p]:
        mapping[p] = p
        p += 1
    s = 0
    while (
        s < len(view) - p
        and s < len(side) - p
        and view[len(view) - 1 - s] == side[len(side) - 1 - s]
    ):
        mapping[len(view) - 1 - s] = len(side) - 1 - s
        s += 1
    middle_v = view[p : len(view) - s]
    middle_s = side[p : len(side) - s]
    matcher = difflib.SequenceMatcher(None, middle_v, middle_s, autojunk=False)
    for tag, i1, i2, j1, _j2 in matcher.get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                mapping[p + i1 + k] = p + j1 + k
    return mapping


def _block_range(mapping: list[int | None], start: int, length: int, side_len: int) -> LineRange:
    """1-based inclusive range in the side's file of view lines ``[start, start+length)``."""
    hits = [m for m in mapping[start : start + length] if m is not None]
    if hits:
        return (min(hits) + 1, max(hits) + 1)
    # The block is empty on this side (it deleted those lines): point at where they were.
    after = next((m for m in mapping[start + length :] if m is not None), None)
    if after is None:
        before = next((m for m in reversed(mapping[:start]) if m is not None), None)
        line = (before + 2) if before is not None else 1
    else:
        line = after + 1
    line = min(max(1, line), max(1, side_len))
    return (line, line)


def _content_ranges(
    merged: bytes, ours: bytes, theirs: bytes, label_a: str, label_b: str
) -> tuple[tuple[LineRange, ...], tuple[LineRange, ...], str | None, str | None] | None:
    """Each side's conflicting line ranges in its own file, and its own path if renamed."""
    parsed = parse_conflict_blocks(merged, label_a, label_b)
    if parsed is None:
        return None
    ours_view, theirs_view, blocks = parsed
    ours_lines = _split_lines(ours)
    theirs_lines = _split_lines(theirs)
    map_a = _view_to_side(ours_view, ours_lines)
    map_b = _view_to_side(theirs_view, theirs_lines)
    ranges_a = tuple(
        _block_range(map_a, blk.ours_start, blk.ours_len, len(ours_lines)) for blk in blocks
    )
    ranges_b = tuple(
        _block_range(map_b, blk.theirs_start, blk.theirs_len, len(theirs_lines)) for blk in blocks
    )
    path_a = blocks[0].ours_label.partition(":")[2] or None
    path_b = blocks[0].theirs_label.partition(":")[2] or None
    return _merge_ranges(ranges_a), _merge_ranges(ranges_b), path_a, path_b


def _merge_ranges(ranges: Iterable[LineRange]) -> tuple[LineRange, ...]:
    """Sorted, with overlapping or touching ranges joined."""
    out: list[list[int]] = []
    for s, e in sorted(ranges):
        if out and s <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return tuple((s, e) for s, e in out)


def file_conflicts(
    cwd: Path,
    outcome: _MergeOutcome,
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
    outcome: _MergeOutcome,
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
    by_path: dict[str, list[_Record]] = {}
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
        ranges_a = _whole_file(ours)
        ranges_b = _whole_file(theirs)
        paths_map: dict[str, str] = {}
        if merged is not None and ours is not None and theirs is not None and not binary:
            found = _content_ranges(merged, ours, theirs, commit_a, commit_b)
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


# ----------------------------------------------------------------------------- overlaps
@dataclass(frozen=True)
class _Hunk:
    base_start: int  # 0-based, half-open in the merge base
    base_end: int
    new_start: int  # 1-based first line in the side's file
    new_count: int


def _c_unquote(text: str) -> str:
    """Undo git's C-style quoting of a path in diff headers."""
    if not (text.startswith('"') and text.endswith('"')):
        return text
    raw = text[1:-1].encode("latin-1", "backslashreplace")
    out = bytearray()
    i = 0
    escapes = {
        b"n": 10,
        b"t": 9,
        b'"': 34,
        b"\\": 92,
        b"a": 7,
        b"b": 8,
        b"f": 12,
        b"r": 13,
        b"v": 11,
    }
    while i < len(raw):
        c = raw[i : i + 1]
        if c == b"\\" and i + 1 < len(raw):
            nxt = raw[i + 1 : i + 2]
            if nxt in escapes:
                out.append(escapes[nxt])
                i += 2
                continue
            if nxt.isdigit():
                out.append(int(raw[i + 1 : i + 4], 8))
                i += 4
                continue
        out += c
        i += 1
    return out.decode("utf-8", "surrogateescape")


_HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def parse_hunks(patch: bytes) -> dict[str, list[_Hunk]]:
    """Hunks of a ``git diff -U0`` patch, per (new-side, else old-side) path."""
    out: dict[str, list[_Hunk]] = {}
    current: str | None = None
    old_path: str | None = None
    for raw in patch.split(b"\n"):
        line = raw.decode("utf-8", "surrogateescape")
        if line.startswith("diff --git "):
            current = old_path = None
        elif line.startswith("--- "):
            name = _c_unquote(line[4:])
            old_path = None if name == "/dev/null" else name.removeprefix("a/")
        elif line.startswith("+++ "):
            name = _c_unquote(line[4:])
            current = old_path if name == "/dev/null" else name.removeprefix("b/")
        elif line.startswith("@@") and current is not None:
            m = _HUNK_RE.match(line)
            if not m:
                continue
            os_, oc = int(m.group(1)), int(m.group(2) if m.group(2) is not None else 1)
            ns, nc = int(m.group(3)), int(m.group(4) if m.group(4) is not None else 1)
            # With a count of 0 the start is the line *before* the change.
            base_start = os_ if oc == 0 else os_ - 1
            out.setdefault(current, []).append(
                _Hunk(base_start=base_start, base_end=base_start + oc, new_start=ns, new_count=nc)
            )
    return out


def _hunk_lines(h: _Hunk) -> LineRange:
    if h.new_count == 0:
        line = max(1, h.new_start)
        return (line, line)
    return (h.new_start, h.new_start + h.new_count - 1)


def _near(x: _Hunk, y: _Hunk) -> bool:
    gap = max(y.base_start - x.base_end, x.base_start - y.base_end)
    return gap <= OVERLAP_DISTANCE


def overlaps_between(
    hunks_a: Mapping[str, list[_Hunk]],
    hunks_b: Mapping[str, list[_Hunk]],
    key_a: str,
    key_b: str,
    exclude: Iterable[str] = (),
) -> tuple[FileConflict, ...]:
    """Files both sides changed at the same or nearby lines of the merge base."""
    skip = set(exclude)
    out: list[FileConflict] = []
    for path in sorted(set(hunks_a) & set(hunks_b) - skip):
        ra: list[LineRange] = []
        rb: list[LineRange] = []
        for x in hunks_a[path]:
            for y in hunks_b[path]:
                if _near(x, y):
                    ra.append(_hunk_lines(x))
                    rb.append(_hunk_lines(y))
        if ra:
            out.append(
                FileConflict(
                    path=path,
                    kind="overlap",
                    kinds=("overlap",),
                    lines={key_a: _merge_ranges(ra), key_b: _merge_ranges(rb)},
                )
            )
    return tuple(out)


# ----------------------------------------------------------------------------- predictor
@dataclass(frozen=True, kw_only=True)
class _Side:
    path: Path
    branch: str | None
    commit: _Commit


def _label(side: _Side) -> str:
    """A side's name in messages: its branch, else its folder."""
    return side.branch or f"detached {side.path.name}"


@dataclass(frozen=True, kw_only=True)
class _OrderNode:
    members: frozenset[int]
    commit: _Commit
    cost: int
    steps: tuple[tuple[int, _MergeOutcome, str], ...]  # (candidate, outcome, ours commit)


class ConflictPredictor:
    """Keeps snapshots and pair results of one repository between updates. Thread-safe.

    Blocking (git processes): the server calls :meth:`update` from a worker thread.
    """

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        _sweep_stale_temp_dirs()
        self._lock = threading.Lock()
        self._snapshots: dict[Path, _Snapshot] = {}
        self._pairs: dict[tuple[str, str, str, str], _PairResult | None] = {}
        self._diffs: dict[tuple[str, str], dict[str, list[_Hunk]]] = {}
        self._order_cache: tuple[Any, tuple[dict[str, Any], ...] | None] | None = None

    # -- snapshots
    def _fingerprint(self, wt: WorktreeState) -> tuple[Any, ...] | None:
        """What must be unchanged for a cached snapshot to still be right; None: unknown.

        HEAD, the real index file's stat data, and the stat data of every path ``git status``
        reported as changed (every file of an untracked folder).
        """
        index = wt.gitdir / "index" if wt.gitdir is not None else None
        try:
            st = index.stat() if index is not None else None
            index_key = (st.st_mtime_ns, st.st_size, st.st_ino) if st else None
        except OSError:
            index_key = None
        files: list[tuple[Any, ...]] = []
        for rel in wt.status.changed_paths:
            for item in _walk_changed(wt.path, rel):
                files.append(item)
                if len(files) > _FINGERPRINT_WALK_LIMIT:
                    return None
        return (wt.head, wt.branch, index_key, tuple(files))

    def _snapshot(
        self, wt: WorktreeState, overlays: Mapping[str, bytes], check: bool
    ) -> _Snapshot | None:
        """The worktree's snapshot: cached when nothing it depends on changed."""
        old = self._snapshots.get(wt.path)
        digest = _overlay_digest(overlays)
        unchanged = old is not None and old.head == wt.head and old.overlays == digest
        if unchanged and not check:
            return old  # the caller says its files did not change
        fingerprint = self._fingerprint(wt)
        if (
            old is not None
            and fingerprint is not None
            and old.fingerprint == fingerprint
            and old.overlays == digest
        ):
            return old
        made = snapshot_worktree(
            wt.path, overlays, index=wt.gitdir / "index" if wt.gitdir is not None else None
        )
        if made is None:
            return None
        head, commit = made
        snap = _Snapshot(
            worktree=wt.path, head=head, commit=commit, fingerprint=fingerprint, overlays=digest
        )
        self._snapshots[wt.path] = snap
        return snap

    # -- the main entry point
    def update(
        self,
        state: RepositoryState,
        *,
        changed: Iterable[Path] | None = None,
        overlays: Mapping[Path, bytes] | None = None,
    ) -> Prediction:
        """Predict conflicts for ``state``.

        ``changed``: worktrees whose files may have changed since the last update (None:
        any). ``overlays``: unsaved editor buffers, absolute file path → bytes.
        """
        require_git()
        with self._lock:
            return self._update(state, changed, overlays or {})

    def _update(
        self,
        state: RepositoryState,
        changed: Iterable[Path] | None,
        overlays: Mapping[Path, bytes],
    ) -> Prediction:
        cwd = self.repo.common_dir
        changed_set = None if changed is None else {Path(p) for p in changed}
        per_wt: dict[Path, dict[str, bytes]] = {}
        for file, data in overlays.items():
            owner = state.find(file)
            if owner is not None:
                rel = Path(file).resolve().relative_to(owner.path).as_posix()
                per_wt.setdefault(owner.path, {})[rel] = data
        skipped: list[tuple[str, str]] = []
        sides: list[_Side] = []
        for wt in state.worktrees:
            reason = _unusable(wt)
            if reason is not None:
                if not wt.bare:
                    skipped.append((str(wt.path), reason))
                self._snapshots.pop(wt.path, None)
                continue
            check = changed_set is None or wt.path in changed_set
            try:
                snap = self._snapshot(wt, per_wt.get(wt.path, {}), check)
            except (GitError, OSError) as exc:
                skipped.append((str(wt.path), f"could not snapshot it: {exc}"))
                continue
            if snap is None:
                skipped.append((str(wt.path), "it has no commits yet"))
                continue
            sides.append(_Side(path=wt.path, branch=wt.branch, commit=snap.commit))
        live = {s.path for s in sides}
        for gone in set(self._snapshots) - live:
            del self._snapshots[gone]

        base_side = self._base_side(state, sides)
        jobs: list[tuple[_Side, _Side, bool]] = []
        for x, y in itertools.combinations(sides, 2):
            jobs.append((x, y, False))
        if base_side is not None:
            base_sides = [s for s in sides if s.branch == state.base_branch]
            for s in sides:
                if s.branch == state.base_branch:
                    continue
                # The clean base worktree's snapshot *is* the tip: that pair already says it.
                if any(bs.commit.oid == base_side.commit.oid for bs in base_sides):
                    continue
                jobs.append((base_side, s, True))
        results = self._merge_pairs(cwd, jobs)
        pairs: list[PairPrediction] = []
        for (x, y, against_base), res in zip(jobs, results, strict=True):
            if res is None:
                skipped.append(
                    (f"{x.path} + {y.path}", "git cannot merge them (unrelated histories?)")
                )
                continue
            if not res.conflicts and not res.overlaps:
                continue
            pairs.append(
                PairPrediction(
                    a=x.path,
                    b=y.path,
                    branch_a=x.branch,
                    branch_b=y.branch,
                    conflicts=res.conflicts,
                    overlaps=res.overlaps,
                    against_base=against_base,
                )
            )
        merge_order = self._merge_order(cwd, state, sides, base_side)
        return Prediction(
            pairs=tuple(pairs),
            merge_order=merge_order,
            base_branch=state.base_branch,
            skipped=tuple(skipped),
        )

    def _base_side(self, state: RepositoryState, sides: Sequence[_Side]) -> _Side | None:
        base = state.base_branch
        if base is None:
            return None
        tip = _commit_info(self.repo.common_dir, f"refs/heads/{base}")
        if tip is None:
            return None
        holder = state.find_by_branch(base)
        main = state.main
        path = main.path if main is not None else holder.path if holder else self.repo.common_dir
        return _Side(path=path, branch=base, commit=tip)

    # -- pairwise merges
    def _merge_pairs(
        self, cwd: Path, jobs: Sequence[tuple[_Side, _Side, bool]]
    ) -> list[_PairResult | None]:
        keys = [(x.commit.oid, y.commit.oid, str(x.path), str(y.path)) for x, y, _ in jobs]
        todo: dict[tuple[str, str, str, str], tuple[_Side, _Side, bool]] = {}
        for key, job in zip(keys, jobs, strict=True):
            if key not in self._pairs and key[0] != key[1]:
                todo[key] = job
        outcomes = merge_many(cwd, [(k[0], k[1]) for k in todo])
        for (key, job), outcome in zip(todo.items(), outcomes, strict=True):
            self._pairs[key] = self._pair_result(cwd, key, job, outcome)
        # Keep only what this update used: the cache never grows past the current matrix.
        wanted = set(keys)
        for stale in [k for k in self._pairs if k not in wanted]:
            del self._pairs[stale]
        empty = _PairResult(
            outcome=_MergeOutcome(clean=True, tree="", entries=(), records=()),
            conflicts=(),
            overlaps=(),
        )
        return [empty if k[0] == k[1] else self._pairs[k] for k in keys]

    def _pair_result(
        self,
        cwd: Path,
        key: tuple[str, str, str, str],
        job: tuple[_Side, _Side, bool],
        outcome: _MergeOutcome | None,
    ) -> _PairResult | None:
        if outcome is None:
            return None
        x, y, _ = job
        conflicts = file_conflicts(
            cwd, outcome, key[0], key[1], key[2], key[3], labels=(_label(x), _label(y))
        )
        overlaps: tuple[FileConflict, ...] = ()
        try:
            overlaps = self._overlaps(cwd, x, y, [c.path for c in conflicts], conflicts)
        except GitError as exc:
            log.debug("overlap detection failed for %s/%s: %s", x.path, y.path, exc)
        return _PairResult(outcome=outcome, conflicts=conflicts, overlaps=overlaps)

    def _overlaps(
        self,
        cwd: Path,
        x: _Side,
        y: _Side,
        conflicted: Sequence[str],
        conflicts: Sequence[FileConflict],
    ) -> tuple[FileConflict, ...]:
        bases = run_git(
            ["merge-base", "--end-of-options", x.commit.oid, y.commit.oid], cwd, ok_codes=(0, 1)
        ).text.split()
        if not bases:
            return ()
        base = bases[0]
        if base in (x.commit.oid, y.commit.oid):
            return ()  # one side has nothing of its own: nothing can overlap
        exclude = set(conflicted)
        for c in conflicts:
            exclude.update(c.paths.values())
        return overlaps_between(
            self._diff(cwd, base, x.commit.oid),
            self._diff(cwd, base, y.commit.oid),
            str(x.path),
            str(y.path),
            exclude,
        )

    def _diff(self, cwd: Path, base: str, commit: str) -> dict[str, list[_Hunk]]:
        key = (base, commit)
        cached = self._diffs.get(key)
        if cached is None:
            patch = run_git(
                [
                    "diff",
                    "-U0",
                    "--no-color",
                    "--no-ext-diff",
                    "--no-textconv",
                    "--no-renames",
                    "--end-of-options",
                    base,
                    commit,
                    "--",
                ],
                cwd,
            ).stdout
            cached = parse_hunks(patch)
            if len(self._diffs) > 256:
                self._diffs.clear()
            self._diffs[key] = cached
        return cached

    # -- merge order
    def _merge_order(
        self,
        cwd: Path,
        state: RepositoryState,
        sides: Sequence[_Side],
        base_side: _Side | None,
    ) -> tuple[dict[str, Any], ...] | None:
        if base_side is None:
            return None
        by_path = {wt.path: wt for wt in state.worktrees}
        candidates: list[_Side] = []
        for s in sides:
            if s.branch == state.base_branch:
                continue
            wt = by_path[s.path]
            ahead = wt.base.ahead if wt.base is not None else 0
            dirty = s.commit.oid != wt.head
            if ahead > 0 or dirty:
                candidates.append(s)
        if not candidates:
            return None
        # Ties are broken by this order: by path, not by `git worktree list`'s (readdir) order.
        candidates.sort(key=lambda c: str(c.path))
        key = (base_side.commit.oid, tuple((c.path, c.branch, c.commit.oid) for c in candidates))
        if self._order_cache is not None and self._order_cache[0] == key:
            return self._order_cache[1]
        result = simulate_merge_order(cwd, base_side, candidates)
        self._order_cache = (key, result)
        return result


def simulate_merge_order(
    cwd: Path, base: _Side, candidates: Sequence[_Side]
) -> tuple[dict[str, Any], ...] | None:
    """Merge the candidates into ``base`` in every order (few) or greedily (many); return the
    steps of the order with the fewest conflicting files, each described in words."""
    exhaustive = len(candidates) <= EXHAUSTIVE_ORDER_LIMIT
    beam = ORDER_BEAM if exhaustive else 1
    frontier = [_OrderNode(members=frozenset(), commit=base.commit, cost=0, steps=())]
    #: Candidates git can merge into base at all (not an unrelated history).
    usable = set(range(len(candidates)))
    level = 0
    while level < len(usable):
        expansions = [(node, idx) for node in frontier for idx in sorted(usable - node.members)]
        outcomes = merge_many(
            cwd, [(node.commit.oid, candidates[idx].commit.oid) for node, idx in expansions]
        )
        results: list[tuple[_OrderNode, int, _MergeOutcome]] = [
            (node, idx, out)
            for (node, idx), out in zip(expansions, outcomes, strict=True)
            if out is not None
        ]
        if level == 0:
            usable = {idx for _, idx, _ in results}
        if not results:
            return None
        last = level == len(usable) - 1
        commits = (
            [None] * len(results)
            if last
            else _make_merge_commits(
                cwd,
                [(out.tree, node.commit, candidates[idx].commit) for node, idx, out in results],
            )
        )
        best: dict[tuple[frozenset[int], str], _OrderNode] = {}
        for (node, idx, out), made in zip(results, commits, strict=True):
            cost = len(out.conflicted_paths()) if not out.clean else 0
            child = _OrderNode(
                members=node.members | {idx},
                commit=made or node.commit,
                cost=node.cost + cost,
                steps=(*node.steps, (idx, out, node.commit.oid)),
            )
            # Same members and same merged tree: the same future, keep the cheaper past.
            k = (child.members, out.tree)
            if k not in best or _order_key(child) < _order_key(best[k]):
                best[k] = child
        frontier = sorted(best.values(), key=_order_key)[:beam]
        level += 1
    chosen = frontier[0]
    steps: list[dict[str, Any]] = []
    for n, (idx, out, ours) in enumerate(chosen.steps):
        cand = candidates[idx]
        name = cand.branch or f"detached {cand.path.name}"
        conflicts = file_conflicts(
            cwd,
            out,
            ours,
            cand.commit.oid,
            "",
            str(cand.path),
            sides=(False, True),
            labels=("the merges before", name),
        )
        spots = ", ".join(
            f"{c.path_in(cand.path)}:{c.lines[str(cand.path)][0][0]}"
            if c.lines.get(str(cand.path))
            else c.path_in(cand.path)
            for c in conflicts
        )
        if n == 0:
            description = f"merge {name} first" + (f" (it conflicts in {spots})" if spots else "")
        else:
            description = f"then {name} " + (f"conflicts in {spots}" if spots else "merges cleanly")
        steps.append(
            {
                "path": str(cand.path),
                "branch": cand.branch,
                "files": [c.path_in(cand.path) for c in conflicts],
                "conflicts": [
                    {
                        "path": c.path_in(cand.path),
                        "kind": c.kind,
                        "lines": [list(r) for r in c.lines.get(str(cand.path), ())],
                    }
                    for c in conflicts
                ],
                "description": description,
            }
        )
    return tuple(steps)


def _order_key(node: _OrderNode) -> tuple[int, int, tuple[int, ...]]:
    """Fewest conflicting files, then fewest conflicting steps, then the worktrees' order."""
    conflicted_steps = sum(1 for _, out, _ in node.steps if not out.clean)
    return (node.cost, conflicted_steps, tuple(idx for idx, _, _ in node.steps))


def _make_merge_commits(cwd: Path, items: Sequence[tuple[str, _Commit, _Commit]]) -> list[_Commit]:
    """Unreferenced two-parent commits for simulated merge results, in one git process."""
    with _TempDir() as tmp:
        files: list[str] = []
        dates: list[int] = []
        for n, (tree, p1, p2) in enumerate(items):
            date = max(p1.date, p2.date)
            who = f"wtls <wtls@localhost> {date} +0000"
            text = (
                f"tree {tree}\nparent {p1.oid}\nparent {p2.oid}\nauthor {who}\n"
                f"committer {who}\n\nwtls merge-order simulation\n"
            )
            f = tmp / f"c{n}"
            f.write_text(text, encoding="utf-8")
            files.append(str(f))
            dates.append(date)
        out = run_git(
            ["hash-object", "-t", "commit", "-w", "--stdin-paths"],
            cwd,
            input="".join(f"{f}\n" for f in files).encode(),
        ).text.split()
    return [
        _Commit(oid=oid, tree=tree, date=date)
        for oid, (tree, _, _), date in zip(out, items, dates, strict=True)
    ]


def _unusable(wt: WorktreeState) -> str | None:
    """Why a worktree cannot be snapshotted, or None."""
    if wt.bare:
        return "bare"
    if wt.prunable:
        return "its folder is gone (prunable)"
    if wt.broken:
        return f"it is broken: {wt.broken}"
    if not wt.path.is_dir():
        return "its folder is missing"
    if wt.head is None:
        return "it has no commits yet"
    return None


def _sweep_stale_temp_dirs() -> None:
    """Remove our temp folders that a killed process left behind (only old ones: a live
    snapshot takes milliseconds, never an hour)."""
    now = time.time()
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(_TEMP_PREFIX):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if (
                entry.is_dir(follow_symlinks=False)
                and (not hasattr(os, "getuid") or st.st_uid == os.getuid())
                and (now - st.st_mtime > _STALE_TEMP_SECONDS)
            ):
                shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            continue


def _overlay_digest(overlays: Mapping[str, bytes]) -> str:
    digest = hashlib.sha1()
    for rel in sorted(overlays):
        digest.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        digest.update(hashlib.sha1(overlays[rel]).digest())
    return digest.hexdigest()


def _walk_changed(root: Path, rel: str) -> Iterator[tuple[Any, ...]]:
    """Stat data of a changed path; every file of an untracked folder (``dir/``)."""
    target = root / rel
    if rel.endswith("/"):
        for folder, _dirs, names in os.walk(target):
            for name in sorted(names):
                p = Path(folder) / name
                yield _stat_key(p, p.relative_to(root).as_posix())
        return
    yield _stat_key(target, rel)


def _stat_key(path: Path, rel: str) -> tuple[Any, ...]:
    try:
        st = path.lstat()
    except OSError:
        return (rel, None)
    return (rel, st.st_mtime_ns, st.st_size, st.st_mode, st.st_ino)


def predict(path: Path | str, base_branch: str | None = None) -> Prediction:
    """One-shot prediction for the repository containing ``path`` (what ``wtls check`` runs)."""
    from wtls.worktrees import discover, repository_state

    require_git()
    repo = discover(path)
    state = repository_state(repo, base_branch)
    return ConflictPredictor(repo).update(state)


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
