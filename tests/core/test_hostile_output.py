"""What wtls prints about hostile names: ``--json`` stays valid UTF-8 JSON with a file name
that is not UTF-8, and conflicts git reports on a renamed copy (``x~<commit>``) name branches,
never an internal snapshot commit."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.core.lifecycle_util import run_wtls
from tests.gitutil import add_worktree, commit_all, git

BAD_NAME = os.fsdecode(b"caf\xff.txt")  # byte 0xFF: not UTF-8


def _run_bytes(cwd: Path, *args: str) -> tuple[int, bytes, str]:
    """The real CLI, its stdout kept as bytes."""
    proc = subprocess.run(
        [sys.executable, "-m", "wtls", *args],
        cwd=str(cwd),
        capture_output=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    return proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def assert_valid_utf8_json(data: bytes) -> Any:
    """Strict UTF-8, parseable, and no lone surrogate (from bytes or from ``\\udcff`` escapes)."""
    text = data.decode("utf-8")  # raises on 0xFF or an encoded surrogate
    value = json.loads(text)
    for s in _strings(value):
        assert not re.search("[\ud800-\udfff]", s), s
    return value


def test_json_with_a_file_name_that_is_not_utf8(repo: Path, tmp_path: Path) -> None:
    a = add_worktree(repo, tmp_path / "tasks-app-a", "feature/a")
    b = add_worktree(repo, tmp_path / "tasks-app-b", "feature/b")
    (repo / BAD_NAME).write_text("one\ntwo\nthree\n")
    commit_all(repo, "a file with a non-UTF-8 name")
    for wt, text in ((a, "A\n"), (b, "B\n")):
        git(wt, "merge", "-q", "main")
        (wt / BAD_NAME).write_text(f"one\n{text}three\n")
    code, out, err = _run_bytes(repo, "check", "--json")
    assert code == 1, err
    result = assert_valid_utf8_json(out)
    files = [f["path"] for c in result["conflicts"] for f in c["files"]]
    assert "caf\ufffd.txt" in files, files
    (a / BAD_NAME).write_text("untracked too\n")
    (a / os.fsdecode(b"new\xfe")).write_text("x\n")
    code, out, err = _run_bytes(a, "list", "--json")
    assert code == 0, err
    assert_valid_utf8_json(out)


def test_dumps_keeps_valid_text_and_replaces_only_undecodable_bytes() -> None:
    from wtls.jsontext import dumps  # here, so the CLI tests above also run on older code

    text = dumps({"k\udcff": ["caf\u00e9 \U0001f600", "\udcfe"]})
    assert json.loads(text) == {"k\ufffd": ["caf\u00e9 \U0001f600", "\ufffd"]}
    text.encode("utf-8")


def test_symlink_versus_file_names_branches_not_commits(repo: Path, tmp_path: Path) -> None:
    (repo / "x").write_text("hello\n")
    commit_all(repo, "x")
    a = add_worktree(repo, tmp_path / "tasks-app-a", "feature/link")
    b = add_worktree(repo, tmp_path / "tasks-app-b", "feature/edit")
    (a / "x").unlink()
    (a / "x").symlink_to("cli.py")
    with (b / "x").open("a") as handle:
        handle.write("changed\n")
    for args in (("check",), ("check", "--order"), ("check", "--json")):
        proc = run_wtls(repo, *args)
        assert proc.returncode == 1, (proc.stdout, proc.stderr)
        assert "feature/link" in proc.stdout and "feature/edit" in proc.stdout, proc.stdout
        assert not re.search(r"\b[0-9a-f]{40}\b", proc.stdout), proc.stdout
        assert "x~" not in proc.stdout, proc.stdout
    result = json.loads(run_wtls(repo, "check", "--json").stdout)
    (pair,) = [c for c in result["conflicts"] if not c["againstBase"]]
    (entry,) = pair["files"]
    assert entry["path"] == "x" and entry["kind"] == "distinct types"
    assert set(entry["lines"]) == {str(a.resolve()), str(b.resolve())}
