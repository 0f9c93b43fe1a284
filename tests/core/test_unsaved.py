"""The rule of unsaved editor buffers (wtls/unsaved.py) on real files: what is unsaved, what a
refusal names, and the typed question and answer the CLI and the engine exchange."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from wtls.errors import Fix, Refused
from wtls.unsaved import (
    QUESTION_BYTES,
    OpenBuffer,
    UnsavedAnswer,
    UnsavedBuffer,
    UnsavedFinder,
    UnsavedQuestion,
    refuse_unsaved,
    unsaved_in,
)

ANYWAY = Fix(action="remove", option="force", label="Remove anyway")


def finder_over(buffers: Sequence[OpenBuffer]) -> UnsavedFinder:
    """A finder over buffers gathered already."""
    return lambda targets: unsaved_in(buffers, targets)


def test_only_buffers_inside_the_targets_that_differ_from_the_disk_are_unsaved(
    tmp_path: Path,
) -> None:
    wt, other = tmp_path / "wt", tmp_path / "other"
    (wt / "src").mkdir(parents=True)
    other.mkdir()
    (wt / "src" / "same.py").write_text("x = 1\n")
    (wt / "src" / "edited.py").write_text("x = 1\n")
    (wt / "bytes.bin").write_bytes(b"\xff\xfe ok\n")
    (other / "edited.py").write_text("x = 1\n")
    buffers = [
        OpenBuffer(wt / "src" / "same.py", "x = 1\n", "the window on /a"),
        OpenBuffer(wt / "src" / "edited.py", "x = 2\n", "the window on /a"),
        OpenBuffer(wt / "src" / "edited.py", "x = 3\n", "the window on /b"),
        OpenBuffer(wt / "new.py", "never saved\n"),  # no file on disk: unsaved
        # Undecodable bytes read with surrogateescape: equal to the disk, not unsaved.
        OpenBuffer(wt / "bytes.bin", b"\xff\xfe ok\n".decode("utf-8", "surrogateescape")),
        OpenBuffer(other / "edited.py", "x = 2\n"),  # outside the target
    ]
    found = unsaved_in(buffers, [wt])
    assert found == (
        UnsavedBuffer(wt / "new.py"),
        UnsavedBuffer(wt / "src" / "edited.py", "the window on /a"),
        UnsavedBuffer(wt / "src" / "edited.py", "the window on /b"),
    )
    # A file target is that file only; a folder named like a prefix is not inside.
    assert unsaved_in(buffers, [wt / "src" / "same.py"]) == ()
    assert unsaved_in(buffers, [tmp_path / "w"]) == ()
    assert [b.path for b in unsaved_in(buffers, [wt / "src" / "edited.py"])] == [
        wt / "src" / "edited.py"
    ] * 2


def test_the_targets_are_compared_through_symbolic_links(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.txt").write_text("a\n")
    link = tmp_path / "link"
    link.symlink_to(real)
    assert unsaved_in([OpenBuffer(real / "a.txt", "b\n")], [link]) == (
        UnsavedBuffer(real / "a.txt"),
    )


def test_a_refusal_names_each_file_and_its_window_and_how_to_go_on(tmp_path: Path) -> None:
    many = [OpenBuffer(tmp_path / f"f{n:02}.txt", "unsaved", "the window on /w") for n in range(14)]
    with pytest.raises(Refused) as info:
        refuse_unsaved(finder_over(many), [tmp_path], what="removing X would delete", fix=ANYWAY)
    refusal = info.value
    message = refusal.worded(lambda fix: f"pass --{fix.option}")
    assert message.startswith(
        "removing X would delete files with unsaved changes in an editor: "
        f"{tmp_path / 'f00.txt'} (in the window on /w), "
    )
    assert f"{tmp_path / 'f11.txt'} (in the window on /w) and 2 more;" in message
    assert "f12.txt" not in message
    assert "save or close them first, or pass --force to go on anyway" in message
    assert message.endswith("nothing was changed")
    assert refusal.fixes == (ANYWAY,)


def test_nothing_to_ask_or_nothing_unsaved_refuses_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a\n")
    refuse_unsaved(None, [tmp_path], what="x")
    refuse_unsaved(finder_over([OpenBuffer(tmp_path / "a.txt", "a\n")]), [tmp_path], what="x")
    refuse_unsaved(finder_over([OpenBuffer(tmp_path / "a.txt", "b\n")]), [], what="x")


def test_a_command_without_force_offers_only_saving_closing_or_its_other_way(
    tmp_path: Path,
) -> None:
    with pytest.raises(Refused) as info:
        refuse_unsaved(
            finder_over([OpenBuffer(tmp_path / "gone.txt", "t")]),
            [tmp_path],
            what="merging would delete",
            otherwise="merge without --remove",
        )
    assert info.value.fixes == ()
    assert "save or close them first, or merge without --remove; nothing" in str(info.value)


def test_the_question_and_the_answer_travel_as_typed_json() -> None:
    question = UnsavedQuestion(targets=(Path("/a/b"), Path("/c")))
    assert UnsavedQuestion.from_json(question.to_json()) == question
    answer = UnsavedAnswer(
        buffers=(UnsavedBuffer(Path("/a/b/x.py"), "the window on /a"), UnsavedBuffer(Path("/c")))
    )
    assert UnsavedAnswer.from_json(answer.to_json()) == answer
    for bad in (None, [], {"targets": "/a"}, {"targets": [1]}, {"targets": ["relative"]}):
        with pytest.raises(ValueError):
            UnsavedQuestion.from_json(bad)
    for bad_answer in (None, {"buffers": {}}, {"buffers": [{"path": 1}]}, {"buffers": ["/a"]}):
        with pytest.raises(ValueError):
            UnsavedAnswer.from_json(bad_answer)


def test_a_question_too_big_for_a_hello_asks_about_folders_and_keeps_what_was_asked(
    tmp_path: Path,
) -> None:
    wt = tmp_path / "wt"
    files = [wt / f"dir{n // 100}" / f"file-with-a-long-name-{n:05}.py" for n in range(3000)]
    small = UnsavedQuestion.covering(files[:3])
    assert small.targets == tuple(files[:3])
    big = UnsavedQuestion.covering(files)
    assert len(json.dumps(big.to_json())) <= QUESTION_BYTES
    assert all(any(t == f or t in f.parents for t in big.targets) for f in files)
    answer = UnsavedAnswer(
        buffers=(UnsavedBuffer(files[7], "w"), UnsavedBuffer(wt / "dir0" / "other.py", "w"))
    )
    assert answer.inside(files) == (UnsavedBuffer(files[7], "w"),)
