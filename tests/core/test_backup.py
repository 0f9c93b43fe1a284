"""The backup core on real repositories: what counts as work, and the proof against the disk."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.gitutil import add_worktree, commit_all, git, make_repo
from wtls import lifecycle as lc
from wtls.backup import blob_id, inspect_worktree, read_manifest, verify_folder
from wtls.errors import Refused


def test_blob_id_matches_git(tmp_path: Path) -> None:
    data = b"a\r\nb\x00\xff"
    (tmp_path / "f").write_bytes(data)
    assert blob_id(data, "sha1") == git(tmp_path, "hash-object", "--no-filters", "f")


def test_a_clean_crlf_checkout_is_not_work(tmp_path: Path) -> None:
    """`eol=crlf` checkouts differ from their blobs byte for byte; a checkout writes them so."""
    repo = make_repo(tmp_path, files={".gitattributes": "* text eol=crlf\n", "a.txt": "a\nb\n"})
    wt = add_worktree(repo, tmp_path / "wt", "feature/crlf")
    assert (wt / "a.txt").read_bytes() == b"a\r\nb\r\n"
    assert inspect_worktree(wt).losses() == []
    (wt / "a.txt").write_bytes(b"a\r\nb\r\nc\r\n")
    assert inspect_worktree(wt).losses() == ["a.txt"]


def test_line_endings_alone_are_work_under_text_auto(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, files={".gitattributes": "* text=auto\n", "a.txt": "a\nb\n"})
    wt = add_worktree(repo, tmp_path / "wt", "feature/auto")
    (wt / "a.txt").write_bytes(b"a\r\nb\r\n")
    # git status may call this file clean (same normalized content); its bytes are not HEAD's.
    assert "a.txt" in inspect_worktree(wt).changed


def test_a_same_second_same_size_rewrite_is_seen(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    wt = add_worktree(repo, tmp_path / "wt", "feature/racy")
    target = wt / "cli.py"
    original = target.read_bytes()
    stamp = int(time.time())
    target.write_bytes(original.replace(b"tiny", b"TINY"))
    os.utime(target, (stamp, stamp))
    git(wt, "status", "--porcelain")
    git(wt, "update-index", "--refresh", check=False)
    target.write_bytes(original.replace(b"tiny", b"tinY"))
    os.utime(target, (stamp, stamp))
    assert "cli.py" in inspect_worktree(wt).changed


def test_repositories_and_worktrees_inside_ignored_folders_are_found(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, files={".gitignore": "build/\n", "a": "a\n"})
    wt = add_worktree(repo, tmp_path / "wt", "feature/nested")
    nested = wt / "build" / "deep" / "lib"
    nested.mkdir(parents=True)
    git(nested, "init", "-q")
    inner = add_worktree(repo, wt / "build" / "inner", "feature/inner")
    found = inspect_worktree(wt)
    kinds = {n.path: n.kind for n in found.nested}
    assert kinds == {"build/deep/lib": "repository", "build/inner": "worktree"}
    assert [n.path for n in found.worktrees_inside] == ["build/inner"]
    assert found.losses() == ["build/deep/lib/ (a git repository)"]
    with pytest.raises(Refused, match="another worktree lies inside"):
        lc.remove(repo, "feature/nested", force=True)
    assert inner.is_dir() and nested.is_dir()


def test_verify_notices_every_kind_of_difference(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    wt = add_worktree(repo, tmp_path / "wt", "feature/verify")
    (wt / "run.sh").write_text("#!/bin/sh\n")
    commit_all(wt, "script")
    seen = inspect_worktree(wt)
    assert verify_folder(wt, seen) == []
    (wt / "new.txt").write_text("appeared meanwhile\n")
    assert verify_folder(wt, seen) == ["new.txt"]
    (wt / "new.txt").unlink()
    (wt / "run.sh").chmod(0o755)
    assert verify_folder(wt, seen) == ["run.sh"]
    (wt / "run.sh").chmod(0o644)
    git(wt, "add", "run.sh")
    (wt / "cli.py").unlink()
    assert verify_folder(wt, seen) == ["cli.py"]


def test_restore_refuses_what_is_not_a_backup(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    with pytest.raises(Refused, match="no backup"):
        read_manifest(repo, "refs/wtls/backup/nothing")
    with pytest.raises(Refused, match="not a wtls backup"):
        read_manifest(repo, "HEAD")
    with pytest.raises(Refused, match="not a backup ref"):
        read_manifest(repo, "--all")
