"""Conflict foresight on real repositories, checked against real ``git merge`` outcomes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import wtls.predict.predictor as predict_module
import wtls.predict.snapshot as snapshot_module
from tests.core.predict_oracle import assert_matches_real_merges, find_pair, untouched
from tests.gitutil import add_worktree, commit_all, git, make_repo
from wtls.predict import (
    ConflictPredictor,
    Prediction,
    format_prediction,
    notices_for,
    parse_conflict_blocks,
    predict,
)
from wtls.wire import to_wire, wire_object
from wtls.worktrees import discover, repository_state

USAGE_OLD = "done <index>"


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must be there) by ``new`` in a text file, keeping its bytes."""
    data = path.read_bytes()
    assert old.encode() in data, f"{old!r} not in {path}"
    path.write_bytes(data.replace(old.encode(), new.encode(), 1))


def line_of(path: Path, text: str) -> int:
    """1-based number of the first line of ``path`` containing ``text``."""
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if text in line:
            return n
    raise AssertionError(f"{text!r} not in {path}")


def wt(repo: Path, name: str, branch: str | None = None) -> Path:
    """A new linked worktree ``<parent>/<name>`` on a new branch."""
    return add_worktree(repo, repo.parent / name, branch or f"feature/{name}").resolve()


# ----------------------------------------------------------------------------- cases
# Each case builds worktrees on the seed's tasks-app and returns (worktrees, expected), where
# expected maps the pairs that must conflict — by folder name, or (base, name) — to the
# conflict kinds git reports. Every other pair must merge cleanly. Both the prediction and a
# real `git merge` are checked against it.
Expected = dict[tuple[str, str], set[str]]
Case = Callable[[Path], tuple[list[Path], Expected]]


def case_seed_usage_line(repo: Path) -> tuple[list[Path], Expected]:
    """The course's scenario: both agents edit the usage line; wipe committed, remaining not."""
    w = wt(repo, "tasks-app-wipe", "feature/wipe")
    r = wt(repo, "tasks-app-remaining", "feature/remaining")
    edit(w / "cli.py", USAGE_OLD, "done <index> | wipe")
    commit_all(w, "Add wipe command")
    edit(r / "cli.py", USAGE_OLD, "done <index> | remaining")
    return [repo, w, r], {("tasks-app-wipe", "tasks-app-remaining"): {"content"}}


def case_adjacent_lines(repo: Path) -> tuple[list[Path], Expected]:
    a, b = wt(repo, "a"), wt(repo, "b")
    edit(a / "cli.py", "import json", "import json  # storage")
    edit(b / "cli.py", "import sys", "import sys  # argv")
    commit_all(b, "b")
    return [repo, a, b], {("a", "b"): {"content"}}


def case_same_file_apart(repo: Path) -> tuple[list[Path], Expected]:
    a, b = wt(repo, "a"), wt(repo, "b")
    edit(a / "cli.py", "import json", "import json, os")
    edit(b / "cli.py", "sys.exit(main(sys.argv[1:]))", "raise SystemExit(main(sys.argv[1:]))")
    return [repo, a, b], {}


def case_near_lines(repo: Path) -> tuple[list[Path], Expected]:
    """One unchanged line between the two edits: clean for git, an overlap hint for us."""
    a, b = wt(repo, "a"), wt(repo, "b")
    edit(a / "cli.py", "    if not argv:", "    if not argv or argv == ['-h']:")
    edit(b / "cli.py", "        return 1", "        return 2")
    commit_all(a, "a")
    return [repo, a, b], {}


def case_add_add(repo: Path) -> tuple[list[Path], Expected]:
    a, b = wt(repo, "a"), wt(repo, "b")
    (a / "NOTES.md").write_text("# notes\nfrom a\n")
    commit_all(a, "notes")
    (b / "NOTES.md").write_text("# notes\nfrom b\n")  # untracked
    return [repo, a, b], {("a", "b"): {"add/add"}}


def case_modify_delete(repo: Path) -> tuple[list[Path], Expected]:
    a, b = wt(repo, "a"), wt(repo, "b")
    (a / "cli.py").unlink()  # deleted, not staged
    edit(b / "cli.py", USAGE_OLD, "done <index> | undo")
    commit_all(b, "undo")
    return [repo, a, b], {("a", "b"): {"modify/delete"}}


def case_rename_vs_edit(repo: Path) -> tuple[list[Path], Expected]:
    a, b = wt(repo, "a"), wt(repo, "b")
    git(a, "mv", "cli.py", "app.py")  # staged rename, not committed
    edit(b / "cli.py", USAGE_OLD, "done <index> | undo")
    return [repo, a, b], {}


def case_rename_and_edit_vs_edit(repo: Path) -> tuple[list[Path], Expected]:
    a, b = wt(repo, "a"), wt(repo, "b")
    git(a, "mv", "cli.py", "app.py")
    edit(a / "app.py", USAGE_OLD, "done <index> | wipe")
    edit(b / "cli.py", USAGE_OLD, "done <index> | remaining")
    commit_all(b, "b")
    return [repo, a, b], {("a", "b"): {"content"}}


def case_binary(repo: Path) -> tuple[list[Path], Expected]:
    (repo / "logo.bin").write_bytes(b"\x89PNG\0\x01\x02\x03" * 8)
    commit_all(repo, "logo")
    a, b = wt(repo, "a"), wt(repo, "b")
    (a / "logo.bin").write_bytes(b"\x89PNG\0\xaa" * 8)
    (b / "logo.bin").write_bytes(b"\x89PNG\0\xbb" * 8)
    commit_all(b, "b")
    return [repo, a, b], {("a", "b"): {"content"}}


def case_crlf(repo: Path) -> tuple[list[Path], Expected]:
    (repo / "dos.txt").write_bytes(b"one\r\ntwo\r\nthree\r\nfour\r\nfive\r\n")
    commit_all(repo, "dos")
    a, b = wt(repo, "a"), wt(repo, "b")
    edit(a / "dos.txt", "three\r\n", "THREE from a\r\n")
    edit(b / "dos.txt", "three\r\n", "three from b\r\n")
    return [repo, a, b], {("a", "b"): {"content"}}


def case_crlf_eol_attribute_clean(repo: Path) -> tuple[list[Path], Expected]:
    (repo / ".gitattributes").write_text("*.txt text eol=crlf\n")
    (repo / "dos.txt").write_text("one\ntwo\nthree\nfour\nfive\nsix\n")
    commit_all(repo, "dos")
    a, b = wt(repo, "a"), wt(repo, "b")
    assert b"\r\n" in (a / "dos.txt").read_bytes()
    edit(a / "dos.txt", "two\r\n", "TWO\r\n")
    edit(b / "dos.txt", "five\r\n", "FIVE\r\n")
    return [repo, a, b], {}


def case_untracked_both(repo: Path) -> tuple[list[Path], Expected]:
    a, b = wt(repo, "a"), wt(repo, "b")
    (a / "todo.txt").write_text("buy milk\n")
    (b / "todo.txt").write_text("walk dog\n")
    (a / "same.txt").write_text("identical\n")
    (b / "same.txt").write_text("identical\n")
    (a / "new").mkdir()
    (a / "new" / "mod.py").write_text("A = 1\n")
    return [repo, a, b], {("a", "b"): {"add/add"}}


def case_ignored(repo: Path) -> tuple[list[Path], Expected]:
    a, b = wt(repo, "a"), wt(repo, "b")
    (a / "tasks.json").write_text('["a"]\n')
    (b / "tasks.json").write_text('["b"]\n')
    (repo / "tasks.json").write_text('["main"]\n')
    return [repo, a, b], {}


def case_three_worktrees(repo: Path) -> tuple[list[Path], Expected]:
    (repo / "f1.txt").write_text("1\n2\n3\n")
    (repo / "f2.txt").write_text("x\ny\nz\n")
    commit_all(repo, "files")
    a, b, c = wt(repo, "a"), wt(repo, "b"), wt(repo, "c")
    edit(a / "f1.txt", "2\n", "2a\n")
    commit_all(a, "a")
    edit(b / "f1.txt", "2\n", "2b\n")
    edit(b / "f2.txt", "y\n", "yb\n")
    edit(c / "f2.txt", "y\n", "yc\n")
    return [repo, a, b, c], {("a", "b"): {"content"}, ("b", "c"): {"content"}}


def case_dirty_main(repo: Path) -> tuple[list[Path], Expected]:
    """The main worktree's uncommitted edit conflicts; the base tip itself does not."""
    a = wt(repo, "a")
    edit(a / "cli.py", USAGE_OLD, "done <index> | wipe")
    commit_all(a, "a")
    edit(repo / "cli.py", USAGE_OLD, "done <index> | main")
    return [repo, a], {("tasks-app", "a"): {"content"}}


def case_base_moved(repo: Path) -> tuple[list[Path], Expected]:
    """Base moved on (committed, main clean) and a worktree edits the same line: the base
    conflict is reported by the main worktree's pair."""
    a = wt(repo, "a")
    edit(repo / "cli.py", USAGE_OLD, "done <index> | main")
    commit_all(repo, "main moves")
    edit(a / "cli.py", USAGE_OLD, "done <index> | a")
    return [repo, a], {("tasks-app", "a"): {"content"}, ("main", "a"): {"content"}}


def case_base_and_dirty_main(repo: Path) -> tuple[list[Path], Expected]:
    a = wt(repo, "a")
    edit(repo / "cli.py", USAGE_OLD, "done <index> | main")
    commit_all(repo, "main moves")
    edit(repo / "cli.py", "import json", "import json, os")  # main dirty elsewhere
    edit(a / "cli.py", USAGE_OLD, "done <index> | a")
    return [repo, a], {("tasks-app", "a"): {"content"}, ("main", "a"): {"content"}}


CASES: list[Case] = [
    case_seed_usage_line,
    case_adjacent_lines,
    case_same_file_apart,
    case_near_lines,
    case_add_add,
    case_modify_delete,
    case_rename_vs_edit,
    case_rename_and_edit_vs_edit,
    case_binary,
    case_crlf,
    case_crlf_eol_attribute_clean,
    case_untracked_both,
    case_ignored,
    case_three_worktrees,
    case_dirty_main,
    case_base_moved,
    case_base_and_dirty_main,
]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__.removeprefix("case_") for c in CASES])
def test_prediction_equals_real_merge(repo: Path, tmp_path: Path, case: Case) -> None:
    repo = repo.resolve()
    worktrees, expected = case(repo)
    with untouched(repo, worktrees):
        prediction = predict(repo)
    results = assert_matches_real_merges(prediction, repo, worktrees, tmp_path / "scratch")
    conflicting = {k: set(v.kinds) for k, v in results.items() if v.conflicted}
    assert conflicting == {k: v for k, v in expected.items() if v}


# ----------------------------------------------------------------------------- details
def test_seed_line_ranges_are_exactly_the_usage_line(repo: Path) -> None:
    repo = repo.resolve()
    _, w, r = case_seed_usage_line(repo)[0]
    prediction = predict(r)
    pair = find_pair(prediction, w, r)
    assert pair is not None
    (fc,) = pair.conflicts
    assert fc.path == "cli.py" and fc.kind == "content"
    usage = line_of(w / "cli.py", "USAGE =")
    assert usage == line_of(r / "cli.py", "USAGE =") == 5
    assert dict(fc.lines) == {str(w): ((usage, usage),), str(r): ((usage, usage),)}
    assert prediction.has_conflicts
    assert to_wire(prediction.conflicts_for(w)) == [
        {"path": str(r), "branch": "feature/remaining", "files": ["cli.py"], "againstBase": False}
    ]
    assert prediction.conflicts_for(repo) == []
    (notice,) = notices_for(prediction, r)
    assert (notice.file, notice.start, notice.end, notice.severity) == (
        r / "cli.py",
        usage,
        usage,
        "warning",
    )
    assert notice.message == (
        "cli.py:5 will conflict with feature/wipe (../tasks-app-wipe, lines 5–5) when merged"
    )
    (other,) = notices_for(prediction, w)
    assert other.message.startswith("cli.py:5 will conflict with feature/remaining (")


def test_line_ranges_follow_each_sides_own_line_numbers(repo: Path) -> None:
    """Lines added above the conflict on one side shift only that side's range."""
    repo = repo.resolve()
    a, b = wt(repo, "a"), wt(repo, "b")
    edit(a / "cli.py", "import json\n", "import json\nimport os\nimport re\n")
    edit(a / "cli.py", "        return 1", "        return 3")
    edit(b / "cli.py", "        return 1", "        return 4")
    edit(b / "cli.py", "sys.exit(main(sys.argv[1:]))", "raise SystemExit(main(sys.argv[1:]))")
    commit_all(b, "b")
    pair = find_pair(predict(repo), a, b)
    assert pair is not None
    (fc,) = pair.conflicts
    assert fc.lines[str(a)] == ((line_of(a / "cli.py", "return 3"),) * 2,)
    assert fc.lines[str(b)] == ((line_of(b / "cli.py", "return 4"),) * 2,)
    assert line_of(a / "cli.py", "return 3") == line_of(b / "cli.py", "return 4") + 2


def test_rename_conflict_names_each_sides_own_path(repo: Path) -> None:
    repo = repo.resolve()
    (_, a, b), _ = case_rename_and_edit_vs_edit(repo)
    pair = find_pair(predict(repo), a, b)
    assert pair is not None
    (fc,) = pair.conflicts
    assert fc.path == "app.py"
    assert fc.path_in(a) == "app.py" and fc.path_in(b) == "cli.py"
    assert fc.lines[str(a)] == ((5, 5),) and fc.lines[str(b)] == ((5, 5),)
    assert {n.file for n in notices_for(predict(repo), b)} == {b / "cli.py"}


def test_modify_delete_and_binary_cover_the_whole_file(repo: Path) -> None:
    repo = repo.resolve()
    (_, a, b), _ = case_modify_delete(repo)
    pair = find_pair(predict(repo), a, b)
    assert pair is not None
    (fc,) = pair.conflicts
    assert fc.kind == "modify/delete"
    n = len((b / "cli.py").read_text().splitlines())
    assert dict(fc.lines) == {str(b): ((1, n),)}  # deleted in a: nothing to underline there
    (notice,) = notices_for(predict(repo), b)
    assert "deleted there" in notice.message and "(modify/delete)" in notice.message


def test_binary_flag(repo: Path) -> None:
    repo = repo.resolve()
    (_, a, b), _ = case_binary(repo)
    pair = find_pair(predict(repo), a, b)
    assert pair is not None
    (fc,) = pair.conflicts
    assert fc.binary and fc.path == "logo.bin"
    assert set(fc.lines) == {str(a), str(b)}


def test_crlf_line_ranges(repo: Path) -> None:
    repo = repo.resolve()
    (_, a, b), _ = case_crlf(repo)
    pair = find_pair(predict(repo), a, b)
    assert pair is not None
    assert pair.conflicts[0].lines == {str(a): ((3, 3),), str(b): ((3, 3),)}


def test_overlap_hint_for_near_edits(repo: Path) -> None:
    repo = repo.resolve()
    (_, a, b), _ = case_near_lines(repo)
    prediction = predict(repo)
    pair = find_pair(prediction, a, b)
    assert pair is not None and not pair.conflicts
    (ov,) = pair.overlaps
    assert ov.path == "cli.py" and ov.kind == "overlap"
    assert ov.lines == {
        str(a): ((line_of(a / "cli.py", "argv == ['-h']"),) * 2,),
        str(b): ((line_of(b / "cli.py", "return 2"),) * 2,),
    }
    assert not prediction.has_conflicts
    (notice,) = notices_for(prediction, b)
    assert notice.severity == "information" and "merge it cleanly" in notice.message
    assert wire_object(prediction.check_payload())["overlaps"][0]["files"][0]["kind"] == "overlap"


def test_identical_change_on_both_sides_is_an_overlap_not_a_conflict(repo: Path) -> None:
    repo = repo.resolve()
    a, b = wt(repo, "a"), wt(repo, "b")
    edit(a / "cli.py", USAGE_OLD, "done <index> | wipe")
    edit(b / "cli.py", USAGE_OLD, "done <index> | wipe")
    pair = find_pair(predict(repo), a, b)
    assert pair is not None and not pair.conflicts
    assert pair.overlaps[0].lines[str(a)] == ((5, 5),)


def test_far_apart_edits_give_no_hint(repo: Path) -> None:
    repo = repo.resolve()
    (_, a, b), _ = case_same_file_apart(repo)
    assert find_pair(predict(repo), a, b) is None


def test_against_base_pair_when_main_is_dirty(repo: Path) -> None:
    repo = repo.resolve()
    (_, a), _ = case_base_and_dirty_main(repo)
    prediction = predict(repo)
    base_pair = find_pair(prediction, repo, a, against_base=True)
    assert base_pair is not None
    assert (base_pair.a, base_pair.branch_a) == (repo, "main")
    entries = prediction.conflicts_for(a)
    assert {(e["path"], e["branch"], e["againstBase"]) for e in to_wire(entries)} == {
        (str(repo), "main", False),
        (str(repo), "main", True),
    }
    # The base side's diagnostics belong to the feature worktree only.
    assert all(n.worktree == a for n in notices_for(prediction, a))
    assert not any(n.against_base for n in notices_for(prediction, repo))
    messages = [n.message for n in notices_for(prediction, a) if n.against_base]
    assert messages == [
        "cli.py:5 will conflict with main (../tasks-app, lines 5–5) when merged into main"
    ]


# ----------------------------------------------------------------------------- overlays
def test_unsaved_buffer_creates_a_conflict_the_disk_does_not_have(repo: Path) -> None:
    repo = repo.resolve()
    w = wt(repo, "tasks-app-wipe", "feature/wipe")
    r = wt(repo, "tasks-app-remaining", "feature/remaining")
    edit(w / "cli.py", USAGE_OLD, "done <index> | wipe")
    commit_all(w, "wipe")
    state = repository_state(discover(repo))
    predictor = ConflictPredictor(discover(repo))
    assert not predictor.update(state).has_conflicts
    buffer = (r / "cli.py").read_bytes().replace(b"done <index>", b"done <index> | remaining")
    with untouched(repo, [repo, w, r]):
        prediction = predictor.update(state, overlays={r / "cli.py": buffer})
    pair = find_pair(prediction, w, r)
    assert pair is not None
    assert pair.conflicts[0].lines == {str(w): ((5, 5),), str(r): ((5, 5),)}
    # Closing the buffer (no overlay) brings the disk's truth back.
    assert not predictor.update(state).has_conflicts


def test_a_buffer_edit_reuses_the_worktrees_added_index(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While only buffers change, a snapshot starts from the index its last ``git add -A`` left
    (no walk of the worktree); once the files change, or that index is gone, it walks again."""
    repo = repo.resolve()
    w = wt(repo, "tasks-app-wipe", "feature/wipe")
    r = wt(repo, "tasks-app-remaining", "feature/remaining")
    edit(w / "cli.py", USAGE_OLD, "done <index> | wipe")
    commit_all(w, "wipe")
    (r / "notes.txt").write_text("untracked work\n")
    ran: list[list[str]] = []
    real = snapshot_module.run_git

    def recording(args: list[str], *rest: Any, **kwargs: Any) -> Any:
        ran.append(list(args))
        return real(args, *rest, **kwargs)

    monkeypatch.setattr(snapshot_module, "run_git", recording)
    state = repository_state(discover(repo))
    predictor = ConflictPredictor(discover(repo))
    assert not predictor.update(state).has_conflicts
    text = (r / "cli.py").read_bytes()
    for n, conflicting in enumerate([True, False, True]):
        ran.clear()
        buffer = (
            text.replace(b"done <index>", b"done <index> | remaining")
            if conflicting
            else (text + f"# {n}\n".encode())
        )
        prediction = predictor.update(state, changed=[r], overlays={r / "cli.py": buffer})
        assert prediction.has_conflicts == conflicting
        assert not any(args[0] == "add" for args in ran), ran
        # The untracked file is in the snapshot (from the kept index), with the buffer.
        tree = predictor._snapshots[r].commit.tree
        assert "notes.txt" in git(r, "ls-tree", "--name-only", tree).split()
        assert git(r, "cat-file", "blob", f"{tree}:cli.py").encode() + b"\n" == buffer

    # A file changes on disk: the next snapshot walks the worktree again.
    (r / "more.txt").write_text("more\n")
    state = repository_state(discover(repo))
    ran.clear()
    prediction = predictor.update(state, changed=[r], overlays={r / "cli.py": buffer})
    assert prediction.has_conflicts
    assert any(args[0] == "add" for args in ran)
    # The kept index swept away (by another process, after an idle hour): walked again.
    for kept in predictor._files.iterdir():
        kept.unlink()
    ran.clear()
    assert not predictor.update(
        state, changed=[r], overlays={r / "cli.py": text + b"#\n"}
    ).has_conflicts
    assert any(args[0] == "add" for args in ran)


def test_unsaved_new_file_and_ignored_buffer(repo: Path) -> None:
    repo = repo.resolve()
    a, b = wt(repo, "a"), wt(repo, "b")
    (a / "NEW.md").write_text("from a\n")
    state = repository_state(discover(repo))
    predictor = ConflictPredictor(discover(repo))
    prediction = predictor.update(
        state,
        overlays={b / "NEW.md": b"from b\n", b / "tasks.json": b"[1]\n", a / "tasks.json": b"[2]"},
    )
    pair = find_pair(prediction, a, b)
    assert pair is not None
    assert [(c.path, c.kind) for c in pair.conflicts] == [("NEW.md", "add/add")]
    assert not (b / "NEW.md").exists()


def test_overlay_with_crlf_attribute_is_normalised_like_git_add(repo: Path) -> None:
    """A buffer saved with CRLF under ``eol=crlf`` is the same as the committed file."""
    repo = repo.resolve()
    (repo / ".gitattributes").write_text("*.txt text eol=crlf\n")
    (repo / "dos.txt").write_text("one\ntwo\nthree\n")
    commit_all(repo, "dos")
    a, b = wt(repo, "a"), wt(repo, "b")
    edit(b / "dos.txt", "two", "TWO")
    state = repository_state(discover(repo))
    same = (a / "dos.txt").read_bytes()
    assert b"\r\n" in same
    prediction = ConflictPredictor(discover(repo)).update(state, overlays={a / "dos.txt": same})
    assert find_pair(prediction, a, b) is None


# ----------------------------------------------------------------------------- merge order
def test_merge_order_for_three_worktrees(repo: Path) -> None:
    repo = repo.resolve()
    (_, a, b, c), _ = case_three_worktrees(repo)
    prediction = predict(repo)
    order = prediction.merge_order
    assert order is not None
    assert [s["path"] for s in to_wire(order)][-1] == str(b)  # b collides with both: merge it last
    assert {s["path"] for s in to_wire(order)} == {str(a), str(b), str(c)}
    assert [s["files"] for s in to_wire(order)] == [[], [], ["f1.txt", "f2.txt"]]
    text = prediction.merge_order_text
    assert text == (
        "merge feature/a first: then feature/c merges cleanly; "
        "then feature/b conflicts in f1.txt:2, f2.txt:2"
    )
    last = to_wire(order)[-1]["conflicts"]
    assert last[0] == {"path": "f1.txt", "kind": "content", "lines": [[2, 2]]}


def test_merge_order_seed(repo: Path) -> None:
    repo = repo.resolve()
    (_, w, r), _ = case_seed_usage_line(repo)
    prediction = predict(repo)
    assert prediction.merge_order is not None
    # Either order conflicts once; ties go by path, so remaining (r) comes first.
    assert [s["path"] for s in to_wire(prediction.merge_order)] == [str(r), str(w)]
    assert prediction.merge_order_text == (
        "merge feature/remaining first: then feature/wipe conflicts in cli.py:5"
    )


def test_no_merge_order_without_pending_work(repo: Path) -> None:
    repo = repo.resolve()
    wt(repo, "a")
    prediction = predict(repo)
    assert prediction.merge_order is None and prediction.pairs == ()


# ----------------------------------------------------------------------------- cost, safety
def count_snapshots(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The worktrees snapshotted from now on, in order (git still does every snapshot)."""
    calls: list[Path] = []
    real = predict_module.snapshot_worktree

    def counting(worktree: Path, overlays: object = None, **kwargs: object) -> object:
        calls.append(worktree)
        return real(worktree, overlays, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(predict_module, "snapshot_worktree", counting)
    return calls


def test_only_changed_worktrees_are_snapshotted_again(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = repo.resolve()
    (_, w, r), _ = case_seed_usage_line(repo)
    calls = count_snapshots(monkeypatch)
    repository = discover(repo)
    predictor = ConflictPredictor(repository)
    state = repository_state(repository)
    assert predictor.update(state).has_conflicts
    assert sorted(calls) == sorted([repo, w, r])
    calls.clear()
    # Nothing changed: fingerprints match, no snapshot at all.
    assert predictor.update(repository_state(repository)).has_conflicts
    assert calls == []
    # Revert the uncommitted edit: only that worktree is snapshotted again.
    git(r, "checkout", "--", "cli.py")
    state = repository_state(repository, previous=state, only=[r])
    assert not predictor.update(state, changed=[r]).has_conflicts
    assert calls == [r]
    calls.clear()
    # Same edit again, reported as a change of r: the conflict is back.
    edit(r / "cli.py", USAGE_OLD, "done <index> | remaining")
    state = repository_state(repository, previous=state, only=[r])
    assert predictor.update(state, changed=[r]).has_conflicts
    assert calls == [r]


def test_written_files_are_predicted_before_the_status_is_read_again(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``written`` (what the watcher saw) makes a stale state's worktree be snapshotted again;
    the update after the re-read reuses that snapshot, and so does one whose written file git
    ignores. A HEAD that moved meanwhile is never trusted."""
    repo = repo.resolve()
    (_, _, r), _ = case_seed_usage_line(repo)
    git(r, "checkout", "--", "cli.py")  # r starts clean: no conflict
    calls = count_snapshots(monkeypatch)
    repository = discover(repo)
    predictor = ConflictPredictor(repository)
    stale = repository_state(repository)
    assert not predictor.update(stale).has_conflicts
    calls.clear()

    edit(r / "cli.py", USAGE_OLD, "done <index> | remaining")
    # The old state says r is clean, so its fingerprint cannot tell: without ``written`` the
    # write goes unseen until the status is read again.
    assert not predictor.update(stale, changed=[r]).has_conflicts
    assert calls == []
    assert predictor.update(stale, changed=[], written={r: [r / "cli.py"]}).has_conflicts
    assert calls == [r]
    calls.clear()
    fresh = repository_state(repository, previous=stale, only=[r])
    assert predictor.update(fresh, changed=[r]).has_conflicts
    assert calls == []  # the snapshot made on the write is still right

    # Written back as it was: snapshotted on the write, reused after the re-read.
    git(r, "checkout", "--", "cli.py")
    assert not predictor.update(fresh, changed=[], written={r: [r / "cli.py"]}).has_conflicts
    calls.clear()
    fresh = repository_state(repository, previous=fresh, only=[r])
    assert not predictor.update(fresh, changed=[r]).has_conflicts
    assert calls == []
    edit(r / "cli.py", USAGE_OLD, "done <index> | remaining")
    fresh = repository_state(repository, previous=fresh, only=[r])
    assert predictor.update(fresh, changed=[r]).has_conflicts

    # A file git ignores: snapshotted on the write, reused after the re-read.
    (r / ".gitignore").write_text("*.log\n")
    fresh = repository_state(repository, previous=fresh, only=[r])
    predictor.update(fresh, changed=[r])
    calls.clear()
    (r / "build.log").write_text("noise\n")
    predictor.update(fresh, changed=[], written={r: [r / "build.log"]})
    assert calls == [r]
    calls.clear()
    fresh = repository_state(repository, previous=fresh, only=[r])
    assert predictor.update(fresh, changed=[r]).has_conflicts
    assert calls == []

    # A commit between the read and the write: HEAD moved, the next update snapshots again.
    commit_all(r, "remaining")
    (r / "extra.txt").write_text("x\n")
    predictor.update(fresh, changed=[], written={r: [r / "extra.txt"]})
    calls.clear()
    after = repository_state(repository, previous=fresh, only=[r])
    assert predictor.update(after, changed=[r]).has_conflicts
    assert calls == [r]


def test_locked_index_and_gone_worktree(repo: Path) -> None:
    repo = repo.resolve()
    (_, w, r), _ = case_seed_usage_line(repo)
    gone = wt(repo, "gone")
    shutil.rmtree(gone)
    lock = Path(git(r, "rev-parse", "--path-format=absolute", "--git-path", "index.lock"))
    lock.write_bytes(b"")
    try:
        prediction = predict(repo)
    finally:
        assert lock.exists()  # somebody else's lock: never removed
        lock.unlink()
    assert find_pair(prediction, w, r) is not None
    assert [p for p, _ in prediction.skipped] == [str(gone)]


def test_unrelated_history_pair_is_skipped_not_fatal(repo: Path) -> None:
    repo = repo.resolve()
    (_, w, r), _ = case_seed_usage_line(repo)
    orphan = repo.parent / "orphan"
    git(repo, "worktree", "add", "-q", "--detach", str(orphan))
    git(orphan, "checkout", "-q", "--orphan", "lonely")
    git(orphan, "rm", "-q", "-rf", ".")
    (orphan / "other.txt").write_text("x\n")
    commit_all(orphan, "unrelated")
    prediction = predict(repo)
    assert find_pair(prediction, w, r) is not None
    assert any("unrelated" in reason for _, reason in prediction.skipped)
    assert prediction.merge_order is not None
    assert [s["path"] for s in to_wire(prediction.merge_order)] == [str(r), str(w)]


def test_snapshot_keeps_an_uninitialised_submodule(repo: Path, tmp_path: Path) -> None:
    """A linked worktree does not check submodules out; its snapshot must not delete them."""
    repo = repo.resolve()
    lib = make_repo(tmp_path / "libs", "lib", files={"lib.txt": "lib\n"})
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "lib")
    commit_all(repo, "add submodule")
    a = wt(repo, "a")
    assert not any((a / "lib").iterdir())  # not initialised in the linked worktree
    (a / "new.txt").write_text("x\n")
    made = predict_module.snapshot_worktree(a)
    assert made is not None
    head, commit = made
    tree = git(a, "ls-tree", commit.oid, "lib")
    assert tree.startswith("160000 commit ")
    assert git(a, "diff", "--name-only", head, commit.oid) == "new.txt"


def test_overlay_path_with_glob_characters(repo: Path) -> None:
    repo = repo.resolve()
    (repo / "[x].txt").write_text("one\ntwo\n")
    (repo / "x.txt").write_text("one\ntwo\n")
    commit_all(repo, "odd names")
    a, b = wt(repo, "a"), wt(repo, "b")
    edit(a / "[x].txt", "two", "TWO a")
    commit_all(a, "a")
    state = repository_state(discover(repo))
    prediction = ConflictPredictor(discover(repo)).update(
        state, overlays={b / "[x].txt": b"one\nTWO b\n"}
    )
    pair = find_pair(prediction, a, b)
    assert pair is not None
    assert [c.path for c in pair.conflicts] == ["[x].txt"]


def test_parse_conflict_blocks_ignores_foreign_markers() -> None:
    merged = (
        b"a\n<<<<<<< not-ours\nx\n=======\ny\n>>>>>>> nope\n"
        b"<<<<<<< A\nours\n||||||| base\nold\n=======\ntheirs1\ntheirs2\n>>>>>>> B\nz\n"
    )
    parsed = parse_conflict_blocks(merged, "A", "B")
    assert parsed is not None
    ours, theirs, blocks = parsed
    assert ours[-2:] == [b"ours", b"z"] and theirs[-3:] == [b"theirs1", b"theirs2", b"z"]
    assert len(blocks) == 1 and blocks[0].theirs_len == 2
    assert parse_conflict_blocks(b"plain\n", "A", "B") is None


def test_format_prediction_words(repo: Path) -> None:
    repo = repo.resolve()
    case_seed_usage_line(repo)
    prediction: Prediction = predict(repo)
    text = format_prediction(prediction, cwd=repo, order=True)
    assert "CONFLICT: feature/remaining (../tasks-app-remaining) <-> feature/wipe" in text
    assert "cli.py (content): lines 5 in cli.py <-> lines 5 in cli.py" in text
    assert "Merge order: merge feature/" in text


# ----------------------------------------------------------------------------- CLI
def run_wtls(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real ``wtls`` CLI in a subprocess (the test's hermetic environment)."""
    return subprocess.run(
        [sys.executable, "-m", "wtls", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        check=False,
    )


def test_cli_check_json_exit_codes_and_shape(repo: Path, tmp_path: Path) -> None:
    repo = repo.resolve()
    a = wt(repo, "a")
    clean = run_wtls("check", "--json", cwd=a)
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["conflicts"] == []

    (_, w, r), _ = case_seed_usage_line(make_repo(tmp_path / "second").resolve())
    proc = run_wtls("check", "--json", "--order", str(w), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) >= {"conflicts", "overlaps", "mergeOrder"}
    (conflict,) = out["conflicts"]
    assert set(conflict["worktrees"]) == {str(w), str(r)}
    assert set(conflict["branches"]) == {"feature/wipe", "feature/remaining"}
    assert conflict["files"] == [
        {
            "path": "cli.py",
            "kind": "content",
            "lines": {str(w): [[5, 5]], str(r): [[5, 5]]}
            if conflict["worktrees"][0] == str(w)
            else {str(r): [[5, 5]], str(w): [[5, 5]]},
            "message": "CONFLICT (content): Merge conflict in cli.py",
        }
    ]
    assert [s["branch"] for s in out["mergeOrder"]] in (
        ["feature/wipe", "feature/remaining"],
        ["feature/remaining", "feature/wipe"],
    )

    human = run_wtls("check", "--order", cwd=r)
    assert human.returncode == 1
    assert "cli.py (content)" in human.stdout and "Merge order:" in human.stdout

    (tmp_path / "plain").mkdir()
    error = run_wtls("check", "--json", cwd=tmp_path / "plain")
    assert error.returncode == 2
    assert "not inside a git repository" in error.stderr


def test_temp_folders_of_killed_runs_are_swept(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    old, fresh, other = temp / "wtls-predict-old", temp / "wtls-predict-new", temp / "keep-me"
    for folder in (old, fresh, other):
        folder.mkdir()
        (folder / "index").write_bytes(b"x")
    hours_ago = time.time() - 2 * 3600
    os.utime(old, (hours_ago, hours_ago))
    os.utime(other, (hours_ago, hours_ago))
    wt(repo.resolve(), "a")
    predict(repo)
    assert sorted(p.name for p in temp.iterdir()) == ["keep-me", "wtls-predict-new"]
