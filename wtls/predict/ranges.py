"""Line ranges: where a conflict or an overlap sits in each side's own file.

Conflicts: a merged file's conflict blocks (:func:`parse_conflict_blocks`) are mapped back to
each side's lines with a line diff (:func:`content_ranges`). Overlaps: the ``git diff -U0``
hunks of both sides against their merge base (:func:`parse_hunks`) that touch the same or
nearby base lines (:func:`overlaps_between`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from wtls.predict.models import FileConflict, LineRange

#: Two changes (against the merge base) at most this many unchanged lines apart are an overlap.
OVERLAP_DISTANCE = 1


def split_lines(data: bytes) -> list[bytes]:
    """Lines without their terminators (a final newline does not start an empty line)."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line.removesuffix(b"\r") for line in lines]


def whole_file(data: bytes | None) -> tuple[LineRange, ...]:
    """The range of every line of a file; none for a file that does not exist (None)."""
    if data is None:
        return ()
    return ((1, max(1, len(split_lines(data)))),)


@dataclass
class Block:
    """One conflict block of a merged file, located in the ours-view and theirs-view."""

    ours_start: int  # 0-based index in the ours-view where the block's ours lines begin
    ours_len: int
    theirs_start: int
    theirs_len: int
    ours_label: str
    theirs_label: str


def parse_conflict_blocks(
    merged: bytes, label_a: str, label_b: str
) -> tuple[list[bytes], list[bytes], list[Block]] | None:
    """Split a merged file with conflict markers into its ours-view, theirs-view and blocks.

    The ours-view is the merged file with each conflict block replaced by its "ours" lines
    (theirs-view likewise). Only markers whose labels name the merged commits (``label_a``,
    ``label_b``, optionally followed by ``:path`` when renames were involved) count, so a file
    that already contains marker-like lines is not misread. None if no block was found.
    """
    lines = split_lines(merged)
    ours: list[bytes] = []
    theirs: list[bytes] = []
    blocks: list[Block] = []
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
                    Block(
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


def content_ranges(
    merged: bytes, ours: bytes, theirs: bytes, label_a: str, label_b: str
) -> tuple[tuple[LineRange, ...], tuple[LineRange, ...], str | None, str | None] | None:
    """Each side's conflicting line ranges in its own file, and its own path if renamed."""
    parsed = parse_conflict_blocks(merged, label_a, label_b)
    if parsed is None:
        return None
    ours_view, theirs_view, blocks = parsed
    ours_lines = split_lines(ours)
    theirs_lines = split_lines(theirs)
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


@dataclass(frozen=True)
class Hunk:
    """One hunk of a ``git diff -U0`` against the merge base."""

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


def parse_hunks(patch: bytes) -> dict[str, list[Hunk]]:
    """Hunks of a ``git diff -U0`` patch, per (new-side, else old-side) path."""
    out: dict[str, list[Hunk]] = {}
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
                Hunk(base_start=base_start, base_end=base_start + oc, new_start=ns, new_count=nc)
            )
    return out


def _hunk_lines(h: Hunk) -> LineRange:
    if h.new_count == 0:
        line = max(1, h.new_start)
        return (line, line)
    return (h.new_start, h.new_start + h.new_count - 1)


def _near(x: Hunk, y: Hunk) -> bool:
    gap = max(y.base_start - x.base_end, x.base_start - y.base_end)
    return gap <= OVERLAP_DISTANCE


def overlaps_between(
    hunks_a: Mapping[str, list[Hunk]],
    hunks_b: Mapping[str, list[Hunk]],
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
