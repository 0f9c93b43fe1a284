"""Generated data-safety cases (wtls issue 10): random mixes of worktree states.

Hypothesis builds linked worktrees with random tracked edits, staged changes and deletes,
untracked files (unicode, spaces, leading dashes, shell characters in names), exec bits,
symlinks, CRLF under ``* text=auto``, empty files, a nested repository and a sparse cone, then:

* ``wtls remove --force`` and its ``restoreCommand`` must give back every byte;
* ``wtls move`` must carry every byte (ignored files and nested repositories included);
* ``wtls merge --remove`` of a clean worktree merges, and removes it only when nothing is lost.

The default example counts keep this file well under 90 s on two cores; set
``WTLS_SAFETY_EXAMPLES`` (e.g. 200) for a longer run, and ``WTLS_SAFETY_SHRINK=1`` to have a
failing case shrunk to a minimal one (slow: every step is a real removal).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.core.safety_util import (
    assert_same,
    branch_exists,
    capture,
    git_ok,
    linked,
    make_nested_repo,
    parse_json,
    repo_facts,
    run_restore_command,
    safety_repo,
    whole_folder,
    write,
    wtls,
    wtls_json,
)
from tests.gitutil import commit_all, git, make_repo

EXAMPLES = int(os.environ.get("WTLS_SAFETY_EXAMPLES", "15"))
SMALL = max(3, EXAMPLES // 3)
#: Shrinking a failing case reruns whole removals for minutes; WTLS_SAFETY_SHRINK=1 turns it on.
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target)
SETTINGS = settings(
    deadline=None,
    phases=(*PHASES, Phase.shrink) if os.environ.get("WTLS_SAFETY_SHRINK") else PHASES,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Tracked files the operations pick from (all at the root or in ``src``, inside the cone).
TRACKED = ["cli.py", "README.md", "src/app.py", "src/util.py", "src/naïve file.txt"]
#: Names of new files: unicode, spaces, a leading dash, shell characters, deep folders.
NAMES = [
    "plain.txt",
    "with space.txt",
    "ünïcödé.txt",
    "日本語.md",
    "dir with space/inner.txt",
    "-leading-dash.txt",
    "deep/a/b/c.txt",
    "quote'and\"double.txt",
    "$(touch pwned).txt",
    "trailing space .txt",
]
TRACKED_OPS = ["edit", "stage", "stage-then-edit", "delete", "rm", "exec", "crlf"]
NEW_OPS = ["untracked", "empty", "untracked-exec", "symlink", "staged-new"]


@dataclass(frozen=True)
class Plan:
    """One generated worktree."""

    ops: tuple[tuple[str, int, bytes], ...]
    text_auto: bool
    nested: bool
    sparse: bool
    ignored: bool


plans = st.builds(
    Plan,
    ops=st.lists(
        st.tuples(
            st.sampled_from(TRACKED_OPS + NEW_OPS),
            st.integers(0, 1000),
            st.binary(max_size=40) | st.text(max_size=40).map(lambda t: t.encode()),
        ),
        max_size=8,
    ).map(tuple),
    text_auto=st.booleans(),
    nested=st.booleans(),
    sparse=st.booleans(),
    ignored=st.booleans(),
)


@contextmanager
def scratch() -> Iterator[Path]:
    """A fresh folder per example (pytest's tmp_path is per test, not per example)."""
    with tempfile.TemporaryDirectory(prefix="wtls-safety-", ignore_cleanup_errors=True) as d:
        yield Path(d).resolve()


def build(tmp: Path, plan: Plan) -> tuple[Path, Path]:
    """The repository and a linked worktree (branch feature/a) in the state ``plan`` asks for."""
    repo = safety_repo(tmp)
    wt = linked(repo, tmp / "wt")
    if plan.text_auto:
        write(wt / ".gitattributes", "* text=auto\n")
        commit_all(wt, "text=auto")
    used: set[str] = set()
    for i, (op, k, data) in enumerate(plan.ops):
        if op in TRACKED_OPS:
            rel = TRACKED[k % len(TRACKED)]
            if rel in used:
                continue
            used.add(rel)
            path = wt / rel
            if op == "edit":
                write(path, data)
            elif op == "stage":
                write(path, data)
                git(wt, "add", "--", rel)
            elif op == "stage-then-edit":
                write(path, data)
                git(wt, "add", "--", rel)
                write(path, data + b" and edited after staging\n")
            elif op == "delete":
                path.unlink()
            elif op == "rm":
                git(wt, "rm", "-q", "--", rel)
            elif op == "exec":
                path.chmod(0o755)
            elif op == "crlf":
                write(path, path.read_bytes().replace(b"\n", b"\r\n"))
            continue
        rel = f"new{i}/{NAMES[k % len(NAMES)]}"
        path = wt / rel
        if op == "untracked":
            write(path, data)
        elif op == "empty":
            write(path, b"")
        elif op == "untracked-exec":
            write(path, data).chmod(0o755)
        elif op == "symlink":
            path.parent.mkdir(parents=True, exist_ok=True)
            target = ["../cli.py", "../src", "../nowhere", "../" + TRACKED[k % len(TRACKED)]]
            path.symlink_to(target[k % len(target)])
        elif op == "staged-new":
            write(path, data)
            git(wt, "add", "--", rel)
    # Always at least one change, so there is always something to restore.
    write(wt / "always here.txt", "an untracked file\n")
    if plan.nested:
        make_nested_repo(wt / "vendor/nested")
    if plan.ignored:
        write(wt / "build/out.log", "ignored build output\n")
    if plan.sparse:
        git(wt, "sparse-checkout", "set", "--cone", "--skip-checks", "src", "vendor", "new0")
        write(wt / "docs/guide.md", "edited outside the sparse cone\n")
    return repo, wt


@settings(SETTINGS, max_examples=EXAMPLES)
@given(plan=plans)
def test_forced_remove_then_restore_gives_back_every_byte(plan: Plan) -> None:
    with scratch() as tmp:
        repo, wt = build(tmp, plan)
        before = capture(wt)
        proc, out = wtls_json(repo, "remove", str(wt), "--force")
        assert proc.returncode == 0, proc.stderr
        assert out["removed"] is True and not wt.exists(), out
        run_restore_command(out["restoreCommand"], tmp / "elsewhere")
        assert_same(before, capture(wt, before.ignored))


@settings(SETTINGS, max_examples=SMALL)
@given(plan=plans)
def test_move_carries_every_byte(plan: Plan) -> None:
    with scratch() as tmp:
        repo, wt = build(tmp, plan)
        before = capture(wt, [])  # everything, ignored files included
        dest = tmp / "moved here ü"
        proc, _out = wtls_json(repo, "move", str(wt), str(dest), "--force")
        assert proc.returncode == 0, proc.stderr
        assert not wt.exists()
        assert_same(before, capture(dest, []), "moved worktree")


@settings(SETTINGS, max_examples=SMALL)
@given(
    commits=st.lists(
        st.tuples(st.sampled_from(NAMES), st.binary(max_size=30)), min_size=1, max_size=4
    ),
    ignored=st.booleans(),
    nested_in_build=st.booleans(),
)
def test_merge_remove_of_a_clean_worktree(
    commits: list[tuple[str, bytes]], ignored: bool, nested_in_build: bool
) -> None:
    with scratch() as tmp:
        repo = safety_repo(tmp)
        wt = linked(repo, tmp / "wt")
        for i, (name, data) in enumerate(commits):
            write(wt / f"c{i}" / name, data)
            commit_all(wt, f"commit {i}")
        tip = git(wt, "rev-parse", "HEAD")
        if ignored:
            write(wt / "build/out.log", "ignored build output\n")
        nested = None
        if nested_in_build:
            nested = make_repo(wt / "build", "nested", files={"n.txt": "a commit of its own\n"})
        facts = repo_facts(nested) if nested is not None else None
        folder = whole_folder(wt)

        proc = wtls(repo, "merge", "feature/a", "--remove", "--json")
        out = parse_json(proc)
        assert out is not None, proc.stderr
        assert out["merged"] is True, out
        assert git_ok(repo, "merge-base", "--is-ancestor", tip, "main")
        assert out["branchDeleted"] is (not branch_exists(repo, "feature/a")), out
        if nested is not None:
            # A nested repository would be lost: merged, but the worktree stays.
            assert out["removed"] is False, out
            assert whole_folder(wt) == folder
            assert repo_facts(nested) == facts
        else:
            assert proc.returncode == 0, proc.stderr
            assert out["removed"] is True and not wt.exists(), out
