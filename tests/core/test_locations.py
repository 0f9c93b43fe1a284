"""One parser for "a file URI or a path" (wtls.locations), and the CLI and core using it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.core.lifecycle_util import run_wtls
from tests.gitutil import add_worktree, git
from wtls.errors import Refused
from wtls.lifecycle import resolve_worktree
from wtls.locations import BadLocation, file_uri, to_path
from wtls.worktrees import discover, repository_state


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("file:///tmp/a%20b", Path("/tmp/a b")),
        ("file://localhost/tmp/x", Path("/tmp/x")),
        ("file://LOCALHOST/tmp/x", Path("/tmp/x")),
        ("file:/tmp/x", Path("/tmp/x")),
        ("FILE:///tmp/x", Path("/tmp/x")),
        ("/tmp/plain", Path("/tmp/plain")),
        ("file:///tmp/%E2%9C%93", Path("/tmp/\u2713")),
    ],
)
def test_accepted(value: str, expected: Path) -> None:
    assert to_path(value) == expected


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("file:///%00", "NUL"),
        ("file:///tmp/a%00b", "NUL"),
        ("/tmp/a\0b", "NUL"),
        ("https://example.com/repo", "not a file URI"),
        ("untitled:Untitled-1", "not a file URI"),
        ("file://otherhost/tmp/x", "another machine"),
        ("file://localhost:8080/tmp/x", "another machine"),
        ("file://user@localhost/tmp/x", "another machine"),
        ("file:relative/x", "not an absolute file URI"),
        ("file:///tmp/x?y", "query or fragment"),
        ("file:///tmp/x#y", "query or fragment"),
        ("", "empty"),
    ],
)
def test_refused_with_the_argument_named(value: str, words: str) -> None:
    with pytest.raises(BadLocation) as caught:
        to_path(value, name="uri")
    assert isinstance(caught.value, Refused)
    assert "'uri'" in str(caught.value) and words in str(caught.value)


def test_bytes_that_are_not_utf8_round_trip() -> None:
    path = to_path("file:///tmp/a%FFb")
    assert os.fsencode(path) == b"/tmp/a\xffb"
    assert file_uri(path) == "file:///tmp/a%FFb"
    assert file_uri(Path("/tmp/a b/\u2713")) == "file:///tmp/a%20b/%E2%9C%93"


def test_relative_path_from_base(tmp_path: Path) -> None:
    assert to_path("x/y", base=tmp_path) == tmp_path / "x/y"
    assert to_path("/abs", base=tmp_path) == Path("/abs")


def test_worktree_spec_file_uri_with_other_host_is_refused(repo: Path, tmp_path: Path) -> None:
    wipe = add_worktree(repo, tmp_path / "tasks-app-wipe", "feature/wipe")
    state = repository_state(discover(repo))
    assert resolve_worktree(state, file_uri(wipe)).path == wipe.resolve()
    assert resolve_worktree(state, "file://localhost" + str(wipe.resolve())).path == (
        wipe.resolve()
    )
    with pytest.raises(BadLocation, match="another machine"):
        resolve_worktree(state, "file://elsewhere" + str(wipe.resolve()))


def test_cli_path_arguments_use_the_parser(repo: Path) -> None:
    ok = run_wtls(repo, "list", "--json", file_uri(repo.resolve()))
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["repository"] == str((repo / ".git").resolve())
    for bad, words in (
        ("file://otherhost" + str(repo.resolve()), "another machine"),
        ("https://example.com/x", "not a file URI"),
        ("file:///%00", "NUL"),
    ):
        proc = run_wtls(repo, "check", bad)
        assert proc.returncode == 1, (bad, proc.stdout, proc.stderr)
        assert proc.stderr.startswith("wtls: refused: argument 'PATH'"), proc.stderr
        assert words in proc.stderr and "Traceback" not in proc.stderr
    assert git(repo, "status", "--porcelain") == ""
