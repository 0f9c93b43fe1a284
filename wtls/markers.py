"""The grammar of git's conflict markers: find every conflict block of a file, exactly.

git writes a conflicted hunk as (``git help merge``, "HOW CONFLICTS ARE PRESENTED")::

    <<<<<<< OURS-LABEL
    ours lines
    ||||||| BASE-LABEL        (merge.conflictStyle=diff3 or zdiff3 only)
    base lines
    =======
    theirs lines
    >>>>>>> THEIRS-LABEL

Each marker starts a line and is a run of exactly N identical characters, where N is the
``conflict-marker-size`` attribute (7 by default, any larger value possible). Blocks of different
sizes are scanned independently: a size-9 block may hold a whole size-7 block in one of its
sections (both are reported, the inner one with a larger ``depth``), and a run of 8 ``<`` is not a
marker of a size-7 block. A lone ``=======`` outside a block (a Markdown setext heading, an RST
underline) or a lone ``>>>>>>>`` is not a conflict.

Lines are numbered the way LSP numbers them (0-based; ``\\n``, ``\\r\\n`` and a lone ``\\r`` each
end a line), so a block's line numbers can go straight into LSP ranges; character offsets are
counted by a function the caller passes (the editor's negotiated position encoding), UTF-16 by
default (:func:`utf16_length`). This module knows nothing of LSP types: the server translates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

#: The marker size git uses unless the ``conflict-marker-size`` attribute says otherwise; it is
#: also the smallest size recognised (shorter runs are ordinary text).
DEFAULT_MARKER_SIZE = 7

#: git treats a file with a NUL byte in its first 8000 bytes as binary (``buffer_is_binary``) and
#: never writes conflict markers into it.
BINARY_CHECK_BYTES = 8000

#: Anything that can open a block contains this; files without it are skipped undecoded.
_QUICK_NEEDLE = b"<" * DEFAULT_MARKER_SIZE

# A candidate marker line: at a line start, a run of 7+ identical marker characters, then the rest
# of the line up to (not including) its line break. Whether the rest is valid depends on the kind.
# Single-character repeats (not a backreference) keep a 5 MB run of "=" linear and fast. The
# "^" form is several times faster than the lookbehind one, which is only needed for text that
# has a lone "\r" line break.
_MARKER_BODY = r"(?P<run><{7,}|\|{7,}|={7,}|>{7,})(?P<rest>[^\r\n]*)"
_MARKER_RE = re.compile(r"^" + _MARKER_BODY, re.MULTILINE)
_MARKER_ANY_BREAK_RE = re.compile(r"(?:\A|(?<=[\r\n]))" + _MARKER_BODY)

# An opener line, for counting the blocks past a scan limit ("\n" and "\r\n" line breaks).
_OPENER_RE = re.compile(r"^<{7,}(?: [^\r\n]*)?(?=\r|$)", re.MULTILINE)

#: Files (and open buffers) larger than this are not scanned for conflict markers.
MAX_SCAN_BYTES = 20_000_000

# One line with its line break (LSP's three kinds), or a last line without one.
_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")

Resolution = Literal["current", "incoming", "both", "base"]
"""How to resolve a block: ``current`` keeps ours, ``incoming`` keeps theirs, ``both`` keeps ours
then theirs, ``base`` keeps the common ancestor's lines (diff3/zdiff3 blocks only)."""

RESOLUTIONS: tuple[Resolution, ...] = ("current", "incoming", "both", "base")


@dataclass(frozen=True, kw_only=True)
class ConflictBlock:
    """One complete conflict block. Line numbers are 0-based; spans are ``[first, last + 1)``."""

    start_line: int
    """The line of the opening ``<<<<<<<`` marker."""
    end_line: int
    """The line of the closing ``>>>>>>>`` marker (inclusive)."""
    marker_size: int
    ours: tuple[int, int]
    """The "ours" (current) lines, between ``<<<<<<<`` and ``|||||||`` or ``=======``."""
    base: tuple[int, int] | None
    """The common ancestor's lines (diff3/zdiff3 style), or ``None`` without a base section."""
    theirs: tuple[int, int]
    """The "theirs" (incoming) lines, between ``=======`` and ``>>>>>>>``."""
    ours_label: str | None
    base_label: str | None
    theirs_label: str | None
    depth: int
    """0 at top level, 1 inside a block of another marker size, and so on."""

    @property
    def base_line(self) -> int | None:
        """The line of the ``|||||||`` marker, or ``None``."""
        return self.ours[1] if self.base is not None else None

    @property
    def separator_line(self) -> int:
        """The line of the ``=======`` marker."""
        return self.theirs[0] - 1


@dataclass(frozen=True, kw_only=True)
class Unterminated:
    """An opening ``<<<<<<<`` marker whose block never completes."""

    line: int
    marker_size: int
    message: str


@dataclass(frozen=True, kw_only=True)
class MarkerScan:
    """Everything found in one file, each tuple sorted by line."""

    blocks: tuple[ConflictBlock, ...] = ()
    unterminated: tuple[Unterminated, ...] = ()
    #: Conflict openers (``<<<<<<<`` lines) after the last one parsed, when a ``max_blocks``
    #: limit stopped the scan: blocks that exist but are not in ``blocks``.
    more: int = 0
    #: The line of the first opener not parsed (when ``more``).
    more_line: int | None = None

    @property
    def empty(self) -> bool:
        """True when the file has neither blocks nor unterminated openers."""
        return not self.blocks and not self.unterminated


@dataclass(frozen=True, kw_only=True)
class LineSpan:
    """A range in a document: 0-based lines, characters in UTF-16 code units (LSP's unit)."""

    start_line: int
    start_character: int
    end_line: int
    end_character: int


@dataclass(frozen=True, kw_only=True)
class BlockEdit:
    """Replace ``span`` with ``new_text``: the text edit that resolves one block.

    The span covers the block's whole lines including the closing marker's line break (when it
    has one), so applying the edit leaves no empty line behind.
    """

    span: LineSpan
    new_text: str


EMPTY_SCAN = MarkerScan()


def has_markers_quick(data: bytes) -> bool:
    """Cheap pre-check: could ``data`` hold a conflict block at all? (False means certainly not.)"""
    return _QUICK_NEEDLE in data


def is_binary(data: bytes) -> bool:
    """git's own test: a NUL byte in the first 8000 bytes makes a file binary."""
    return b"\0" in data[:BINARY_CHECK_BYTES]


def scan_bytes(data: bytes) -> MarkerScan:
    """Scan a file's raw content: binary files have no blocks; text is decoded UTF-8.

    Undecodable bytes are kept as surrogate escapes, so they count as one character each and
    never stop the scan.
    """
    if not has_markers_quick(data) or is_binary(data):
        return EMPTY_SCAN
    return scan_text(data.decode("utf-8", "surrogateescape"))


def read_for_scan(path: Path, max_bytes: int = MAX_SCAN_BYTES) -> bytes | None:
    """A file's bytes for a marker scan, or None when it is missing, unreadable or larger than
    ``max_bytes`` (never more than ``max_bytes + 1`` bytes are read)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError:
        return None
    return data if len(data) <= max_bytes else None


def scan_file(path: Path, max_bytes: int = MAX_SCAN_BYTES) -> MarkerScan:
    """Scan a file on disk; a missing, unreadable or larger-than-``max_bytes`` file scans empty."""
    data = read_for_scan(path, max_bytes)
    return scan_bytes(data) if data is not None else EMPTY_SCAN


def scan_text(text: str, *, max_blocks: int | None = None) -> MarkerScan:
    """Find every conflict block and every unterminated opener of ``text``.

    With ``max_blocks``, parsing stops at the opener after the first ``max_blocks`` ones: the
    blocks after it are only counted (:attr:`MarkerScan.more`), so the work and the result stay
    bounded however many blocks a file has. Linear in the size of ``text``. Never raises.
    """
    if "<" * DEFAULT_MARKER_SIZE not in text or "\0" in text[:BINARY_CHECK_BYTES]:
        return EMPTY_SCAN
    by_size: dict[int, list[_Marker]] = {}
    openers = 0
    more = 0
    more_line: int | None = None
    for marker in _find_markers(text):
        if marker.kind == "<":
            openers += 1
            if max_blocks is not None and openers > max_blocks:
                more, more_line = 1 + _count_openers(text, marker.end), marker.line
                break
        by_size.setdefault(marker.size, []).append(marker)
    blocks: list[_OpenBlock] = []
    unterminated: list[Unterminated] = []
    for size, markers in by_size.items():
        # Only sizes that have an opener can form a block; skip the rest cheaply.
        if any(m.kind == "<" for m in markers):
            # A block still open where the scan stopped is not unterminated, only unseen.
            found, broken = _parse_size(size, markers, complete=not more)
            blocks.extend(found)
            unterminated.extend(broken)
    blocks.sort(key=lambda b: b.start_line)
    unterminated.sort(key=lambda u: u.line)
    return MarkerScan(
        blocks=tuple(_with_depths(blocks)),
        unterminated=tuple(unterminated),
        more=more,
        more_line=more_line,
    )


def _count_openers(text: str, start: int) -> int:
    """How many lines after offset ``start`` open a conflict block (a cheap count, no parse)."""
    return sum(1 for _ in _OPENER_RE.finditer(text, start))


def split_lines(text: str) -> list[str]:
    """``text`` as lines that keep their line breaks, numbered like :func:`scan_text` numbers them.

    Lines end at ``\\n``, ``\\r\\n`` or a lone ``\\r`` (LSP's rule); unlike ``str.splitlines`` no
    other character breaks a line. ``"".join(split_lines(t)) == t`` always holds.
    """
    return _LINE_RE.findall(text)


def line_break(line: str) -> str:
    """The line break that ends ``line``: ``"\\r\\n"``, ``"\\n"``, ``"\\r"`` or ``""``."""
    if line.endswith("\r\n"):
        return "\r\n"
    if line.endswith(("\n", "\r")):
        return line[-1]
    return ""


def utf16_length(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (LSP's default position encoding).

    Characters outside the Basic Multilingual Plane take two units; a surrogate escape of an
    undecodable byte counts as one.
    """
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def block_span(
    lines: Sequence[str], block: ConflictBlock, units: Callable[[str], int] = utf16_length
) -> LineSpan:
    """A block's range for a diagnostic: from the opener's start to the closer's last character.

    ``lines`` are the document's lines as :func:`split_lines` gives them; ``units`` counts a
    line's length in the position encoding the editor agreed to (UTF-16 unless told).
    """
    closer = lines[block.end_line]
    end_character = units(closer[: len(closer) - len(line_break(closer))])
    return LineSpan(
        start_line=block.start_line,
        start_character=0,
        end_line=block.end_line,
        end_character=end_character,
    )


def resolve_block(lines: Sequence[str], block: ConflictBlock, how: Resolution) -> list[str]:
    """The lines that replace ``lines[block.start_line : block.end_line + 1]`` to resolve ``block``.

    Content lines keep their own line breaks. When the closing marker is the file's last line and
    has no line break, the replacement's last line loses its break too, so a file that did not end
    with a newline still does not. ``how == "base"`` on a block without a base section raises
    ``ValueError``.
    """
    if how == "current":
        spans = [block.ours]
    elif how == "incoming":
        spans = [block.theirs]
    elif how == "both":
        spans = [block.ours, block.theirs]
    elif how == "base":
        if block.base is None:
            raise ValueError("this conflict block has no base section (not diff3/zdiff3 style)")
        spans = [block.base]
    else:
        raise ValueError(f"unknown resolution {how!r}; expected one of {', '.join(RESOLUTIONS)}")
    out = [line for first, stop in spans for line in lines[first:stop]]
    if out and not line_break(lines[block.end_line]):
        last = out[-1]
        out[-1] = last[: len(last) - len(line_break(last))]
    return out


def block_edit(lines: Sequence[str], block: ConflictBlock, how: Resolution) -> BlockEdit:
    """The text edit that resolves ``block`` in a document split by :func:`split_lines`.

    The span runs from the start of the opener's line to the start of the line after the closer
    (LSP's way to include a line break), or to the closer's end when it has no line break.
    """
    closer = lines[block.end_line]
    if line_break(closer):
        span = LineSpan(
            start_line=block.start_line,
            start_character=0,
            end_line=block.end_line + 1,
            end_character=0,
        )
    else:
        span = LineSpan(
            start_line=block.start_line,
            start_character=0,
            end_line=block.end_line,
            end_character=utf16_length(closer),
        )
    return BlockEdit(span=span, new_text="".join(resolve_block(lines, block, how)))


def resolve_all(text: str, how: Resolution, marker_size: int | None = None) -> str:
    """``text`` with every top-level block (of ``marker_size``, if given) resolved by ``how``.

    Blocks nested inside a resolved block are kept or dropped together with their section.
    """
    lines = split_lines(text)
    blocks = scan_text(text).blocks
    # Blocks of one size never nest, so the blocks of a given size are all outermost for it.
    if marker_size is None:
        chosen = [b for b in blocks if b.depth == 0]
    else:
        chosen = [b for b in blocks if b.marker_size == marker_size]
    out: list[str] = []
    position = 0
    for block in chosen:
        if block.start_line < position:
            # Only possible for hand-made blocks of different sizes that overlap without nesting.
            continue
        out.extend(lines[position : block.start_line])
        out.extend(resolve_block(lines, block, how))
        position = block.end_line + 1
    out.extend(lines[position:])
    return "".join(out)


# --- the scanner ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Marker:
    """A syntactically valid marker line: its kind (``<``, ``|``, ``=``, ``>``), size and label."""

    line: int
    kind: str
    size: int
    label: str | None
    #: Offset in the text just after the marker line (before its line break).
    end: int


@dataclass(slots=True)
class _OpenBlock:
    """A block under construction (mutable while parsing, frozen into ConflictBlock at the end)."""

    start_line: int
    size: int
    ours_label: str | None
    base_line: int | None = None
    base_label: str | None = None
    separator_line: int | None = None
    end_line: int = -1
    theirs_label: str | None = None


def _find_markers(text: str) -> Iterable[_Marker]:
    """Every line of ``text`` that is a well-formed marker of some size, in order.

    Line numbers come from counting line breaks between consecutive matches, so the cost is one
    pass over the text however long its lines are.
    """
    line = 0
    position = 0
    lone_cr = text.count("\r") != text.count("\r\n")
    pattern = _MARKER_ANY_BREAK_RE if lone_cr else _MARKER_RE
    for match in pattern.finditer(text):
        start = match.start()
        if lone_cr:
            # Matches start at line starts, so no "\r\n" pair straddles the slice's edges.
            line += (
                text.count("\n", position, start)
                + text.count("\r", position, start)
                - text.count("\r\n", position, start)
            )
        else:
            line += text.count("\n", position, start)
        position = start
        run = match.group("run")
        kind = run[0]
        rest = match.group("rest")
        label: str | None
        if kind == "=":
            # git writes the separator bare; anything after it makes it ordinary text.
            if rest:
                continue
            label = None
        elif kind == "|":
            # git's rerere accepts any whitespace after the base marker, or none.
            if rest and rest[0] not in " \t":
                continue
            label = rest[1:] or None
        else:
            # "<<<<<<< label" / ">>>>>>> label": a space, as git writes and rerere requires.
            if rest and rest[0] != " ":
                continue
            label = rest[1:] or None
        yield _Marker(line=line, kind=kind, size=len(run), label=label, end=match.end())


def _parse_size(
    size: int, markers: list[_Marker], *, complete: bool = True
) -> tuple[list[_OpenBlock], list[Unterminated]]:
    """Run the block grammar over the markers of one size (markers of other sizes are text).

    ``complete=False``: the markers stop before the text's end, so a block still open after the
    last one is not reported as unterminated."""
    blocks: list[_OpenBlock] = []
    broken: list[Unterminated] = []
    current: _OpenBlock | None = None

    def abandon(block: _OpenBlock, message: str) -> None:
        # An opener without a label is more likely a decorative line than a conflict git wrote
        # (git always labels "<<<<<<<"), so only a labelled one is worth an error.
        if block.ours_label is not None:
            broken.append(Unterminated(line=block.start_line, marker_size=size, message=message))

    opener, separator, closer = "<" * size, "=" * size, ">" * size
    for marker in markers:
        kind = marker.kind
        if kind == "<":
            if current is not None:
                abandon(current, _missing_message(current, opener, separator, closer))
            current = _OpenBlock(start_line=marker.line, size=size, ours_label=marker.label)
        elif current is None:
            # A stray "=======", "|||||||" or ">>>>>>>" outside any block is ordinary text.
            continue
        elif kind == "|":
            if current.base_line is None and current.separator_line is None:
                current.base_line = marker.line
                current.base_label = marker.label
            # Otherwise it is content of the base or theirs section.
        elif kind == "=":
            if current.separator_line is None:
                current.separator_line = marker.line
            # A second "=======" inside "theirs" is content (an RST underline in the conflict).
        else:  # ">"
            if current.separator_line is None:
                abandon(
                    current,
                    f"malformed conflict block: '{opener}' is closed by '{closer}' without a "
                    f"'{separator}' separator",
                )
            else:
                current.end_line = marker.line
                current.theirs_label = marker.label
                blocks.append(current)
            current = None
    if current is not None and complete:
        abandon(current, _missing_message(current, opener, separator, closer))
    return blocks, broken


def _missing_message(block: _OpenBlock, opener: str, separator: str, closer: str) -> str:
    """Why an open block is unterminated: which markers never came."""
    if block.separator_line is None:
        return (
            f"unterminated conflict block: '{opener}' has no matching '{separator}' and '{closer}'"
        )
    return f"unterminated conflict block: '{opener}' has no matching '{closer}'"


def _with_depths(blocks: list[_OpenBlock]) -> list[ConflictBlock]:
    """Freeze sorted blocks, giving each the number of blocks that strictly enclose it."""
    out: list[ConflictBlock] = []
    enclosing: list[_OpenBlock] = []
    for block in blocks:
        # Blocks that ended before this one starts can enclose neither it nor any later block.
        while enclosing and enclosing[-1].end_line < block.start_line:
            enclosing.pop()
        depth = sum(1 for outer in enclosing if outer.end_line > block.end_line)
        enclosing.append(block)
        separator = block.separator_line
        assert separator is not None  # only completed blocks get here
        ours_stop = block.base_line if block.base_line is not None else separator
        out.append(
            ConflictBlock(
                start_line=block.start_line,
                end_line=block.end_line,
                marker_size=block.size,
                ours=(block.start_line + 1, ours_stop),
                base=(block.base_line + 1, separator) if block.base_line is not None else None,
                theirs=(separator + 1, block.end_line),
                ours_label=block.ours_label,
                base_label=block.base_label,
                theirs_label=block.theirs_label,
                depth=depth,
            )
        )
    return out
