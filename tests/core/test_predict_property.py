"""Property: for random line edits on both sides of a small file, the prediction is exactly
what a real ``git merge`` of the two working states does (conflict or not, which files, which
kinds), and every predicted line range lies inside its side's file."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.core.predict_oracle import assert_matches_real_merges, find_pair
from tests.gitutil import add_worktree, commit_all, make_repo
from wtls.predict import predict

BASE = [f"line {n}" for n in range(8)]

#: Per base line: keep it, replace it (small alphabet, so both sides often pick the same
#: text), delete it, or insert a line after it.
op = st.one_of(
    st.just(("keep", "")),
    st.just(("keep", "")),
    st.tuples(st.just("replace"), st.sampled_from(["x", "y", "line 3"])),
    st.just(("delete", "")),
    st.tuples(st.just("insert"), st.sampled_from(["x", "y"])),
)
edits = st.lists(op, min_size=len(BASE), max_size=len(BASE))


def apply(ops: list[tuple[str, str]]) -> str:
    out: list[str] = []
    for line, (kind, text) in zip(BASE, ops, strict=True):
        if kind == "keep":
            out.append(line)
        elif kind == "replace":
            out.append(text)
        elif kind == "insert":
            out.extend([line, text])
    return "".join(f"{line}\n" for line in out)


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ours=edits, theirs=edits, commit_ours=st.booleans(), second_file=st.booleans())
def test_random_edits_predict_the_real_merge(
    ours: list[tuple[str, str]],
    theirs: list[tuple[str, str]],
    commit_ours: bool,
    second_file: bool,
) -> None:
    root = Path(tempfile.mkdtemp(prefix="wtls-prop-")).resolve()
    try:
        repo = make_repo(root, files={"f.txt": apply([("keep", "")] * len(BASE)), "g.txt": "g\n"})
        a = add_worktree(repo, root / "a", "feature/a").resolve()
        b = add_worktree(repo, root / "b", "feature/b").resolve()
        (a / "f.txt").write_text(apply(ours))
        (b / "f.txt").write_text(apply(theirs))
        if second_file:
            (a / "g.txt").write_text("g from a\n")
            (b / "g.txt").write_text("g from b\n")
        if commit_ours:
            commit_all(a, "ours")
        prediction = predict(repo)
        assert_matches_real_merges(prediction, repo, [a, b], root / "scratch")
        pair = find_pair(prediction, a, b)
        for fc in pair.conflicts if pair else ():
            for side, ranges in fc.lines.items():
                length = max(1, len((Path(side) / fc.path).read_text().splitlines()))
                assert all(1 <= s <= e <= length for s, e in ranges), (fc, length)
    finally:
        shutil.rmtree(root, ignore_errors=True)
