"""The conflict-marker grammar, on conflicts that real git wrote and on hand-made edge cases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.gitutil import commit_all, git, make_repo
from wtls.git import run_git
from wtls.markers import (
    BlockEdit,
    ConflictBlock,
    Resolution,
    block_edit,
    block_span,
    has_markers_quick,
    resolve_all,
    resolve_block,
    scan_bytes,
    scan_file,
    scan_text,
    split_lines,
    utf16_length,
)

# --- helpers ---------------------------------------------------------------------------------


def merge_conflict(
    root: Path,
    *,
    base: dict[str, str],
    ours: dict[str, str],
    theirs: dict[str, str],
    style: str | None = None,
) -> Path:
    """A repository on ``main`` in the middle of ``git merge side`` that stopped on conflicts."""
    repo = make_repo(root, files=base)
    git(repo, "checkout", "-q", "-b", "side")
    for rel, text in theirs.items():
        (repo / rel).write_bytes(text.encode())
    commit_all(repo, "theirs")
    git(repo, "checkout", "-q", "main")
    for rel, text in ours.items():
        (repo / rel).write_bytes(text.encode())
    commit_all(repo, "ours")
    config = ["-c", f"merge.conflictStyle={style}"] if style else []
    out = git(repo, *config, "merge", "side", check=False)
    assert "CONFLICT (content)" in out, out
    return repo


def stage(repo: Path, number: int, rel: str) -> str:
    """The exact content of index stage ``number`` (2 = ours, 3 = theirs) of ``rel``."""
    return run_git(["show", f":{number}:{rel}"], repo).stdout.decode("utf-8", "surrogateescape")


def short_merge_base(repo: Path) -> str:
    """The abbreviated merge base id, which git uses as the base label of diff3 blocks."""
    merge_base = git(repo, "merge-base", "HEAD", "side")
    return git(repo, "rev-parse", "--short", merge_base)


def block(
    start: int,
    end: int,
    *,
    ours: tuple[int, int],
    theirs: tuple[int, int],
    base: tuple[int, int] | None = None,
    size: int = 7,
    labels: tuple[str | None, str | None, str | None] = ("HEAD", None, "side"),
    depth: int = 0,
) -> ConflictBlock:
    """Shorthand for an expected block."""
    return ConflictBlock(
        start_line=start,
        end_line=end,
        marker_size=size,
        ours=ours,
        base=base,
        theirs=theirs,
        ours_label=labels[0],
        base_label=labels[1],
        theirs_label=labels[2],
        depth=depth,
    )


def apply_edit(text: str, edit: BlockEdit) -> str:
    """Apply an edit the way an LSP client does: positions are lines + UTF-16 offsets."""
    lines = split_lines(text)

    def offset(line: int, character: int) -> int:
        start = sum(len(x) for x in lines[:line])
        if line >= len(lines):
            assert character == 0
            return start
        units = 0
        for index, ch in enumerate(lines[line]):
            if units >= character:
                return start + index
            units += 2 if ord(ch) > 0xFFFF else 1
        return start + len(lines[line])

    span = edit.span
    first = offset(span.start_line, span.start_character)
    last = offset(span.end_line, span.end_character)
    return text[:first] + edit.new_text + text[last:]


# Two changes far enough apart (seven unchanged lines) that git keeps them as separate blocks.
BASE_12 = "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\neleven\ntwelve\n"
OURS_12 = BASE_12.replace("two\n", "TWO-ours\n").replace("ten\n", "TEN-ours\n")
THEIRS_12 = BASE_12.replace("two\n", "TWO-theirs\n").replace("ten\n", "TEN-theirs\n")


# --- conflicts written by real git -----------------------------------------------------------


def test_default_style_two_blocks(tmp_path: Path) -> None:
    repo = merge_conflict(
        tmp_path,
        base={"f.txt": BASE_12},
        ours={"f.txt": OURS_12},
        theirs={"f.txt": THEIRS_12},
    )
    scan = scan_file(repo / "f.txt")
    assert scan.blocks == (
        block(1, 5, ours=(2, 3), theirs=(4, 5)),
        block(13, 17, ours=(14, 15), theirs=(16, 17)),
    )
    assert scan.unterminated == ()
    lines = split_lines((repo / "f.txt").read_text())
    assert lines[2] == "TWO-ours\n" and lines[16] == "TEN-theirs\n"


def test_diff3_style_has_base_sections(tmp_path: Path) -> None:
    repo = merge_conflict(
        tmp_path,
        base={"f.txt": BASE_12},
        ours={"f.txt": OURS_12},
        theirs={"f.txt": THEIRS_12},
        style="diff3",
    )
    label = short_merge_base(repo)
    labels = ("HEAD", label, "side")
    assert scan_file(repo / "f.txt").blocks == (
        block(1, 7, ours=(2, 3), base=(4, 5), theirs=(6, 7), labels=labels),
        block(15, 21, ours=(16, 17), base=(18, 19), theirs=(20, 21), labels=labels),
    )


def test_zdiff3_moves_common_lines_out_of_the_block(tmp_path: Path) -> None:
    repo = merge_conflict(
        tmp_path,
        base={"f.txt": "a\nb\nc\n"},
        ours={"f.txt": "a\nX\nY1\nZ\nc\n"},
        theirs={"f.txt": "a\nX\nY2\nZ\nc\n"},
        style="zdiff3",
    )
    text = (repo / "f.txt").read_text()
    lines = split_lines(text)
    (found,) = scan_text(text).blocks
    # The common "X" and "Z" stay outside: only Y1 / b / Y2 are in conflict.
    assert found == block(
        2,
        8,
        ours=(3, 4),
        base=(5, 6),
        theirs=(7, 8),
        labels=("HEAD", short_merge_base(repo), "side"),
    )
    assert lines[1] == "X\n" and lines[9] == "Z\n"


def test_conflict_marker_size_attribute(tmp_path: Path) -> None:
    repo = merge_conflict(
        tmp_path,
        base={"f.txt": BASE_12, ".gitattributes": "*.txt conflict-marker-size=10\n"},
        ours={"f.txt": OURS_12},
        theirs={"f.txt": THEIRS_12},
        style="diff3",
    )
    text = (repo / "f.txt").read_text()
    assert "<<<<<<<<<< HEAD\n" in text  # git really used size 10
    labels = ("HEAD", short_merge_base(repo), "side")
    assert scan_text(text).blocks == (
        block(1, 7, ours=(2, 3), base=(4, 5), theirs=(6, 7), labels=labels, size=10),
        block(15, 21, ours=(16, 17), base=(18, 19), theirs=(20, 21), labels=labels, size=10),
    )


def test_crlf_conflict(tmp_path: Path) -> None:
    repo = merge_conflict(
        tmp_path,
        base={"w.txt": "one\r\ntwo\r\nthree\r\n"},
        ours={"w.txt": "one\r\nTWO-ours\r\nthree\r\n"},
        theirs={"w.txt": "one\r\nTWO-theirs\r\nthree\r\n"},
        style="diff3",
    )
    data = (repo / "w.txt").read_bytes()
    assert b"<<<<<<< HEAD\r\n" in data  # git kept the file's CRLF on its markers
    scan = scan_bytes(data)
    assert scan.blocks == (
        block(
            1,
            7,
            ours=(2, 3),
            base=(4, 5),
            theirs=(6, 7),
            labels=("HEAD", short_merge_base(repo), "side"),
        ),
    )
    lines = split_lines(data.decode())
    # The diagnostic ends at the last character of ">>>>>>> side", before "\r\n".
    span = block_span(lines, scan.blocks[0])
    assert (span.start_line, span.start_character, span.end_line, span.end_character) == (
        1,
        0,
        7,
        len(">>>>>>> side"),
    )
    assert resolve_all(data.decode(), "current") == stage(repo, 2, "w.txt")
    assert resolve_all(data.decode(), "incoming") == stage(repo, 3, "w.txt")


def test_no_trailing_newline_conflict(tmp_path: Path) -> None:
    repo = merge_conflict(
        tmp_path,
        base={"g.txt": "one\ntwo"},
        ours={"g.txt": "one\nTWO-ours"},
        theirs={"g.txt": "one\nTWO-theirs"},
    )
    text = (repo / "g.txt").read_text()
    assert scan_text(text).blocks == (block(1, 5, ours=(2, 3), theirs=(4, 5)),)
    # git ends every line of a conflict block with a newline, so the missing one is lost.
    assert text.endswith(">>>>>>> side\n")
    assert resolve_all(text, "current") == stage(repo, 2, "g.txt") + "\n"
    assert resolve_all(text, "incoming") == stage(repo, 3, "g.txt") + "\n"


def test_recursive_merge_nests_larger_markers_in_the_base(tmp_path: Path) -> None:
    """A criss-cross merge: git's virtual merge base has its own conflict, marked with size 9."""
    repo = make_repo(tmp_path, files={"f.txt": "a\nb\nc\n"})
    git(repo, "checkout", "-q", "-b", "A")
    (repo / "f.txt").write_text("a\nbA\nc\n")
    commit_all(repo, "A")
    git(repo, "checkout", "-q", "-b", "B", "main")
    (repo / "f.txt").write_text("a\nbB\nc\n")
    commit_all(repo, "B")
    for branch, other, content in (("A2", "B", "bA2"), ("B2", "A", "bB2")):
        git(repo, "checkout", "-q", "-b", branch, branch[0])
        git(repo, "merge", "-q", other, check=False)
        (repo / "f.txt").write_text(f"a\n{content}\nc\n")
        commit_all(repo, branch)
    git(repo, "checkout", "-q", "A2")
    out = git(repo, "-c", "merge.conflictStyle=diff3", "merge", "B2", check=False)
    assert "CONFLICT (content)" in out
    scan = scan_file(repo / "f.txt")
    outer, inner = scan.blocks
    assert (outer.start_line, outer.end_line, outer.marker_size, outer.depth) == (1, 13, 7, 0)
    assert (outer.ours, outer.base, outer.theirs) == ((2, 3), (4, 11), (12, 13))
    assert (outer.ours_label, outer.base_label, outer.theirs_label) == (
        "HEAD",
        "merged common ancestors",
        "B2",
    )
    assert (inner.start_line, inner.end_line, inner.marker_size, inner.depth) == (4, 10, 9, 1)
    assert (inner.ours, inner.base, inner.theirs) == ((5, 6), (7, 8), (9, 10))
    lines = split_lines((repo / "f.txt").read_text())
    assert resolve_block(lines, inner, "current") == ["bB\n"]
    assert resolve_block(lines, inner, "incoming") == ["bA\n"]


@pytest.mark.parametrize("style", [None, "diff3", "zdiff3"])
def test_resolving_gives_what_git_had_on_each_side(tmp_path: Path, style: str | None) -> None:
    repo = merge_conflict(
        tmp_path,
        base={"cli.py": "import sys\n\n\ndef main():\n    return 0\n"},
        ours={"cli.py": "import sys\n\n\ndef main():\n    print('ours')\n    return 1\n"},
        theirs={"cli.py": "import sys\n\n\ndef main():\n    print('theirs')\n    return 2\n"},
        style=style,
    )
    text = (repo / "cli.py").read_text()
    lines = split_lines(text)
    (found,) = scan_text(text).blocks
    sides: tuple[tuple[Resolution, int], ...] = (("current", 2), ("incoming", 3))
    for how, number in sides:
        edit = block_edit(lines, found, how)
        assert apply_edit(text, edit) == stage(repo, number, "cli.py")
        assert resolve_all(text, how) == stage(repo, number, "cli.py")
    if style is not None:
        # Both sides changed the same lines, so "base" restores the merge base's content.
        assert resolve_all(text, "base") == stage(repo, 1, "cli.py")


# --- lines that are not conflicts ------------------------------------------------------------


def test_markdown_and_rst_underlines_are_not_conflicts() -> None:
    text = "Title\n=======\n\nSection\n-------\n\nRST\n=======\nbody\n>>>>>>> not a closer\n"
    assert scan_text(text).empty
    assert scan_bytes(text.encode()).empty


def test_lone_markers_are_ignored() -> None:
    for text in (
        ">>>>>>> side\n",
        "=======\n",
        "||||||| base\n",
        "<<<<<< six is too short\n=======\n>>>>>> six\n",
        "<<<<<<<x no space after the run\n=======\n>>>>>>> side\n",
        "<<<<<<< a\nours\n======= trailing text\ntheirs\n>>>>>>> b\n",
    ):
        scan = scan_text(text)
        assert scan.blocks == (), text
    # The last two open a labelled block that never gets a separator: reported, not a block.
    scan = scan_text("<<<<<<< a\nours\n======= trailing text\ntheirs\n>>>>>>> b\n")
    assert [u.line for u in scan.unterminated] == [0]
    assert "'=======' separator" in scan.unterminated[0].message


def test_a_run_of_eight_is_not_a_size_seven_marker() -> None:
    text = "<<<<<<< a\nx\n<<<<<<<< eight\n========\n=======\ny\n>>>>>>>> eight\n>>>>>>> b\n"
    scan = scan_text(text)
    assert scan.blocks == (
        block(0, 7, ours=(1, 4), theirs=(5, 7), labels=("a", None, "b")),
        # The size-8 markers happen to form their own block, nested in the size-7 one.
        block(2, 6, ours=(3, 3), theirs=(4, 6), size=8, labels=("eight", None, "eight"), depth=1),
    )


def test_an_eight_opener_alone_inside_a_seven_block() -> None:
    text = "<<<<<<< a\n<<<<<<<< stray\n=======\ny\n>>>>>>> b\n"
    scan = scan_text(text)
    assert scan.blocks == (block(0, 4, ours=(1, 2), theirs=(3, 4), labels=("a", None, "b")),)
    assert [(u.line, u.marker_size) for u in scan.unterminated] == [(1, 8)]


def test_unterminated_blocks() -> None:
    scan = scan_text("ok\n<<<<<<< HEAD\nours\n")
    assert scan.blocks == ()
    ((broken),) = scan.unterminated
    assert (broken.line, broken.marker_size) == (1, 7)
    assert "'=======' and '>>>>>>>'" in broken.message

    scan = scan_text("<<<<<<< HEAD\nours\n=======\ntheirs")
    assert [(u.line, u.message) for u in scan.unterminated] == [
        (0, "unterminated conflict block: '<<<<<<<' has no matching '>>>>>>>'")
    ]


def test_an_abandoned_opener_before_a_real_block() -> None:
    text = "<<<<<<< left over\nx\n<<<<<<< HEAD\na\n=======\nb\n>>>>>>> side\n"
    scan = scan_text(text)
    assert scan.blocks == (block(2, 6, ours=(3, 4), theirs=(5, 6)),)
    assert [u.line for u in scan.unterminated] == [0]


def test_unlabelled_unterminated_opener_is_decoration() -> None:
    # git always labels "<<<<<<<"; a bare run of '<' that closes nothing is a drawn line.
    assert scan_text("<<<<<<<<<<<<<<<<<<<<\ntext\n").empty
    # ...but a bare opener that does complete a block is still a block.
    assert scan_text("<<<<<<<\na\n=======\nb\n>>>>>>>\n").blocks == (
        block(0, 4, ours=(1, 2), theirs=(3, 4), labels=(None, None, None)),
    )


def test_second_separator_is_content_of_theirs() -> None:
    text = "<<<<<<< a\nx\n=======\nHeading\n=======\n>>>>>>> b\n"
    assert scan_text(text).blocks == (
        block(0, 5, ours=(1, 2), theirs=(3, 5), labels=("a", None, "b")),
    )


def test_nested_blocks_of_different_sizes() -> None:
    text = (
        "<<<<<<<<< outer-ours\n"  # 0
        "<<<<<<< inner-ours\n"  # 1
        "i1\n"  # 2
        "=======\n"  # 3
        "i2\n"  # 4
        ">>>>>>> inner-theirs\n"  # 5
        "=========\n"  # 6
        "<<<<<<<<<<< deeper\n"  # 7 (size 11, inside theirs)
        "<<<<<<< x\n"  # 8
        "=======\n"  # 9
        ">>>>>>> y\n"  # 10
        "|||||||||||\n"  # 11
        "===========\n"  # 12
        ">>>>>>>>>>> deeper\n"  # 13
        ">>>>>>>>> outer-theirs\n"  # 14
    )
    scan = scan_text(text)
    assert scan.blocks == (
        block(
            0, 14, ours=(1, 6), theirs=(7, 14), size=9, labels=("outer-ours", None, "outer-theirs")
        ),
        block(
            1, 5, ours=(2, 3), theirs=(4, 5), labels=("inner-ours", None, "inner-theirs"), depth=1
        ),
        block(
            7,
            13,
            ours=(8, 11),
            base=(12, 12),
            theirs=(13, 13),
            size=11,
            labels=("deeper", None, "deeper"),
            depth=1,
        ),
        block(8, 10, ours=(9, 9), theirs=(10, 10), labels=("x", None, "y"), depth=2),
    )
    assert scan.unterminated == ()
    assert (
        resolve_all(text, "current")
        == "<<<<<<< inner-ours\ni1\n=======\ni2\n>>>>>>> inner-theirs\n"
    )
    sevens_resolved = scan_text(resolve_all(text, "current", marker_size=7))
    assert [(b.marker_size, b.depth) for b in sevens_resolved.blocks] == [(9, 0), (11, 1)]


def test_binary_empty_and_odd_inputs() -> None:
    conflict = b"<<<<<<< a\nx\n=======\ny\n>>>>>>> b\n"
    assert scan_bytes(b"\0" + conflict).empty  # NUL in the first 8000 bytes: binary
    assert scan_bytes(b"x" * 7999 + b"\0" + conflict).empty
    assert len(scan_bytes(b"x" * 8000 + b"\0\n" + conflict).blocks) == 1  # NUL too late to count
    assert scan_bytes(b"").empty and scan_text("").empty
    assert split_lines("") == []
    assert not has_markers_quick(b"=======\n>>>>>>>\n")
    assert has_markers_quick(conflict)
    # Invalid UTF-8 in content and labels survives as surrogate escapes.
    odd = b"<<<<<<< caf\xe9\n\xff\xfe\n=======\nok\n>>>>>>> b\n"
    (found,) = scan_bytes(odd).blocks
    assert found.ours_label == "caf\udce9" and found.ours == (1, 2)


def test_lone_carriage_returns_break_lines_like_lsp() -> None:
    text = "old mac\rline\r<<<<<<< a\rx\r=======\ry\r>>>>>>> b\rend"
    (found,) = scan_text(text).blocks
    assert found == block(2, 6, ours=(3, 4), theirs=(5, 6), labels=("a", None, "b"))
    assert split_lines(text)[2] == "<<<<<<< a\r"
    assert resolve_all(text, "incoming") == "old mac\rline\ry\rend"


def test_large_inputs() -> None:
    one_line = b"x" * 5_000_000 + b"<<<<<<< not at a line start"
    assert scan_bytes(one_line).empty
    marker_line = b"<<<<<<< " + b"y" * 5_000_000
    (broken,) = scan_bytes(marker_line).unterminated
    assert broken.line == 0
    many = "".join(
        f"line {i}\n" if i % 10 else "<<<<<<< a\nx\n=======\ny\n>>>>>>> b\n" for i in range(50_000)
    )
    scan = scan_text(many)
    assert len(scan.blocks) == 5_000
    # The last block is followed by nine plain lines.
    assert scan.blocks[-1].start_line == len(split_lines(many)) - 5 - 9
    assert scan_text(resolve_all(many, "both")).empty


def test_scan_file_survives_missing_unreadable_and_huge(tmp_path: Path) -> None:
    assert scan_file(tmp_path / "missing.txt").empty
    assert scan_file(tmp_path).empty  # a folder
    big = tmp_path / "big.txt"
    big.write_text("<<<<<<< a\nx\n=======\ny\n>>>>>>> b\n")
    assert len(scan_file(big).blocks) == 1
    assert scan_file(big, max_bytes=10).empty


# --- resolving -------------------------------------------------------------------------------

DIFF3_TEXT = (
    "before\r\n"  # 0
    "<<<<<<< HEAD\r\n"  # 1
    "ours 1\r\n"  # 2
    "ours 2\r\n"  # 3
    "||||||| base\r\n"  # 4
    "base\r\n"  # 5
    "=======\r\n"  # 6
    "theirs\r\n"  # 7
    ">>>>>>> side\r\n"  # 8
    "after\r\n"  # 9
)


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("current", ["ours 1\r\n", "ours 2\r\n"]),
        ("incoming", ["theirs\r\n"]),
        ("both", ["ours 1\r\n", "ours 2\r\n", "theirs\r\n"]),
        ("base", ["base\r\n"]),
    ],
)
def test_resolve_block_each_way(how: Resolution, expected: list[str]) -> None:
    lines = split_lines(DIFF3_TEXT)
    (found,) = scan_text(DIFF3_TEXT).blocks
    assert resolve_block(lines, found, how) == expected
    edit = block_edit(lines, found, how)
    assert (edit.span.start_line, edit.span.start_character) == (1, 0)
    assert (edit.span.end_line, edit.span.end_character) == (9, 0)  # includes the closer's CRLF
    assert apply_edit(DIFF3_TEXT, edit) == "before\r\n" + "".join(expected) + "after\r\n"


def test_base_needs_a_base_section() -> None:
    text = "<<<<<<< a\nx\n=======\ny\n>>>>>>> b\n"
    (found,) = scan_text(text).blocks
    with pytest.raises(ValueError, match="no base section"):
        resolve_block(split_lines(text), found, "base")


def test_closer_without_newline_keeps_the_file_without_one() -> None:
    text = "top\n<<<<<<< a\nx\n=======\ny1\ny2\n>>>>>>> b"
    lines = split_lines(text)
    (found,) = scan_text(text).blocks
    assert resolve_block(lines, found, "incoming") == ["y1\n", "y2"]
    edit = block_edit(lines, found, "current")
    assert (edit.span.end_line, edit.span.end_character) == (6, len(">>>>>>> b"))
    assert apply_edit(text, edit) == "top\nx"
    assert resolve_all(text, "both") == "top\nx\ny1\ny2"


def test_empty_sections_delete_the_block_whole() -> None:
    text = "a\n<<<<<<< x\n=======\nnew\n>>>>>>> y\nb\n"
    assert resolve_all(text, "current") == "a\nb\n"
    assert resolve_all(text, "incoming") == "a\nnew\nb\n"


def test_utf16_columns() -> None:
    text = "<<<<<<< a\nx\n=======\ny\n>>>>>>> 🎉 é\n"
    lines = split_lines(text)
    (found,) = scan_text(text).blocks
    assert found.theirs_label == "🎉 é"
    span = block_span(lines, found)
    assert span.end_character == len(">>>>>>> ") + 2 + 2  # the emoji is two UTF-16 units
    assert utf16_length("a🎉\udcff") == 4
    # In the encoding an editor negotiated (Neovim asks for UTF-8 first): bytes.
    utf8 = block_span(lines, found, lambda line: len(line.encode("utf-8")))
    assert utf8.end_character == len(">>>>>>> ") + 4 + 1 + 2


# --- properties ------------------------------------------------------------------------------

SIZES = (7, 8, 10)
# Lines that look like markers but must not disturb the blocks around them. None of them is a
# valid closer of a size in SIZES, so they can never complete a block of their own.
TRICKY = (
    "=======",
    "========",
    "==========",
    "<<<<<<< x",
    "<<<<<<<< y",
    "<<<<<<<",
    "|||||||",
    "||||||| base",
    "<<<<<<",
    ">>>>>>",
    ">>>>>>>x",
    ">>>>>>>>>>>> twelve",
    "======= trailing",
    "=======\t",
    "<<<<<<<x",
    "|||||||x",
    "||||||||||\tten",
    ">>>>>>>>>>",
    "plain text",
    "",
    "    indented <<<<<<< x",
    "é 🎉",
)


@dataclass(frozen=True)
class Gen:
    """A generated block: its size, labels and sections (items are lines or nested Gen blocks)."""

    size: int
    labels: tuple[str, str, str]
    ours: tuple[Item, ...]
    base: tuple[Item, ...] | None
    theirs: tuple[Item, ...]
    ending: str


Item: TypeAlias = "Gen | tuple[str, str]"
"""A line of the model: a generated block, or (content, line break)."""


def run_size(line: str) -> int:
    """Length of the run of one marker character that starts ``line`` (0 if none)."""
    if not line or line[0] not in "<|=>":
        return 0
    return len(line) - len(line.lstrip(line[0]))


labels_st = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\0"), max_size=8)
endings_st = st.sampled_from(["\n", "\r\n"])


def is_marker(line: str, size: int) -> bool:
    """Is ``line`` (without its break) a marker of ``size``, by the grammar git writes?"""
    if run_size(line) != size:
        return False
    kind, rest = line[0], line[size:]
    if kind == "=":
        return rest == ""
    if kind == "|":
        return rest == "" or rest[0] in " \t"
    return rest == "" or rest[0] == " "


def plain_lines(
    excluded: frozenset[int], own_size: int = 0, allowed: str = ""
) -> st.SearchStrategy[tuple[str, str]]:
    """A (content, ending) pair that is no marker of the ``excluded`` sizes.

    ``allowed`` names the marker kinds of ``own_size`` that the section may hold as plain text
    anyway: ``|`` in a base section, ``|`` and ``=`` in a theirs section.
    """

    def ok(line: str) -> bool:
        if any(is_marker(line, size) for size in SIZES if line.startswith(">")):
            return False  # no plain line may close a block: stray openers stay unterminated
        if line[:1] in allowed and run_size(line) == own_size:
            return True
        return not any(is_marker(line, size) for size in excluded)

    content = st.one_of(st.sampled_from(TRICKY), labels_st).filter(ok)
    return st.tuples(content, endings_st)


@st.composite
def gen_block(draw: st.DrawFn, excluded: frozenset[int], depth: int) -> Gen:
    """A well-formed block whose sections hold no markers of its own or enclosing sizes (except
    the ones the grammar reads as text there)."""
    size = draw(st.sampled_from([s for s in SIZES if s not in excluded]))
    inner_excluded = excluded | {size}

    def section(allowed: str) -> tuple[Item, ...]:
        plain = plain_lines(inner_excluded, size, allowed)
        items: list[Item] = list(draw(st.lists(plain, max_size=3)))
        if depth < 2 and len(inner_excluded) < len(SIZES) and draw(st.booleans()):
            items.insert(
                draw(st.integers(0, len(items))), draw(gen_block(inner_excluded, depth + 1))
            )
            # A plain line after a nested block, so no section ends on a nested closer.
            items.append(draw(plain_lines(inner_excluded)))
        return tuple(items)

    ours = section("")
    base = section("|") if draw(st.booleans()) else None
    theirs = section("|=")
    labels = (draw(labels_st), draw(labels_st), draw(labels_st))
    return Gen(size, labels, ours, base, theirs, draw(endings_st))


@st.composite
def gen_file(draw: st.DrawFn) -> tuple[list[Item], bool]:
    """Top-level items (plain lines and blocks) and whether the last line loses its break."""
    items: list[Item] = list(draw(st.lists(plain_lines(frozenset()), max_size=6)))
    for _ in range(draw(st.integers(0, 4))):
        items.insert(draw(st.integers(0, len(items))), draw(gen_block(frozenset(), 0)))
    return items, draw(st.booleans())


def marker(char: str, size: int, label: str | None, ending: str) -> str:
    """One marker line as git writes it."""
    return char * size + (f" {label}" if label is not None else "") + ending


def render(items: list[Item], *, strip_last: bool) -> tuple[str, list[ConflictBlock]]:
    """The file text for ``items`` and the blocks a correct scanner must find in it."""
    lines: list[str] = []
    blocks: list[ConflictBlock] = []

    def emit(section: Sequence[Item], depth: int) -> None:
        for item in section:
            if isinstance(item, Gen):
                start = len(lines)
                ours_label, base_label, theirs_label = (x or None for x in item.labels)
                lines.append(marker("<", item.size, ours_label, item.ending))
                emit(item.ours, depth + 1)
                ours = (start + 1, len(lines))
                base = None
                if item.base is not None:
                    lines.append(marker("|", item.size, base_label, item.ending))
                    first = len(lines)
                    emit(item.base, depth + 1)
                    base = (first, len(lines))
                lines.append("=" * item.size + item.ending)
                first = len(lines)
                emit(item.theirs, depth + 1)
                theirs = (first, len(lines))
                lines.append(marker(">", item.size, theirs_label, item.ending))
                blocks.append(
                    ConflictBlock(
                        start_line=start,
                        end_line=len(lines) - 1,
                        marker_size=item.size,
                        ours=ours,
                        base=base,
                        theirs=theirs,
                        ours_label=ours_label,
                        base_label=base_label if item.base is not None else None,
                        theirs_label=theirs_label,
                        depth=depth,
                    )
                )
            else:
                content, ending = item
                lines.append(content + ending)

    emit(items, 0)
    if strip_last and lines:
        lines[-1] = lines[-1].rstrip("\r\n")
    blocks.sort(key=lambda b: b.start_line)
    return "".join(lines), blocks


def resolved_current(items: Sequence[Item], *, strip_last: bool) -> str:
    """What resolving every block with "current" must give, computed from the model."""

    def lines_of(section: Sequence[Item], last: bool) -> list[str]:
        out: list[str] = []
        for index, item in enumerate(section):
            is_last = last and index == len(section) - 1
            if isinstance(item, Gen):
                kept = lines_of(item.ours, False)
                if is_last and kept:
                    # The closer lost its line break, so the replacement's last line loses its own.
                    kept[-1] = kept[-1].rstrip("\r\n")
                out.extend(kept)
            else:
                content, ending = item
                out.append(content + ("" if is_last else ending))
        return out

    return "".join(lines_of(items, strip_last))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gen_file())
def test_generated_blocks_are_found_exactly(generated: tuple[list[Item], bool]) -> None:
    items, strip_last = generated
    text, expected = render(items, strip_last=strip_last)
    scan = scan_text(text)
    assert list(scan.blocks) == expected
    assert scan_bytes(text.encode("utf-8", "surrogateescape")) == scan
    lines = split_lines(text)
    assert "".join(lines) == text
    # Anything reported unterminated is one of the stray openers put there on purpose.
    for broken in scan.unterminated:
        assert lines[broken.line].startswith("<" * broken.marker_size + " ")
    # Resolving every block the "current" way removes every marker of every size.
    assert resolve_all_repeatedly(text) == resolved_current(items, strip_last=strip_last)
    for size in SIZES:
        once = scan_text(resolve_all(text, "current", marker_size=size))
        assert all(b.marker_size != size for b in once.blocks)


def resolve_all_repeatedly(text: str) -> str:
    """Resolve outer blocks, then the blocks they kept, until none is left (depth ≤ 3 here)."""
    for _ in range(4):
        if not scan_text(text).blocks:
            return text
        text = resolve_all(text, "current")
    raise AssertionError("blocks left after resolving four levels")


FRAGMENTS = st.sampled_from(
    [
        "<<<<<<<",
        "<<<<<<<<",
        " ",
        "x",
        "=======",
        "|||||||",
        ">>>>>>>",
        "\n",
        "\r\n",
        "\r",
        "\0",
        "🎉",
        "\udcff",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(FRAGMENTS, st.text(max_size=5)), max_size=40).map("".join))
def test_scanning_arbitrary_text_never_raises(text: str) -> None:
    scan = scan_text(text)
    lines = split_lines(text)
    assert "".join(lines) == text
    hows: tuple[Resolution, ...] = ("current", "incoming", "both")
    for found in scan.blocks:
        assert found.start_line < found.ours[0] <= found.ours[1] < found.theirs[0]
        assert found.theirs[0] <= found.theirs[1] == found.end_line < len(lines)
        assert lines[found.start_line].startswith("<" * found.marker_size)
        assert lines[found.end_line].startswith(">" * found.marker_size)
        block_span(lines, found)
        for how in hows:
            edit = block_edit(lines, found, how)
            kept = resolve_block(lines, found, how)
            spliced = lines[: found.start_line] + kept + lines[found.end_line + 1 :]
            assert apply_edit(text, edit) == "".join(spliced)
    for how in hows:
        resolve_all(text, how)
    scan_bytes(text.encode("utf-8", "surrogateescape"))
