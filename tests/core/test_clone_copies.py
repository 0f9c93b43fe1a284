"""Copied ignored files are copy-on-write clones where the file system can (FICLONE), plain
copies elsewhere: the fallback on this machine's file system, the clone on a loop-mounted
btrfs or XFS image (root only; skipped with the reason otherwise), and across file systems."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.lifecycle_util import run_wtls
from tests.gitutil import make_repo
from wtls.lifecycle import copy_ignored_files, spawn

MTIME = 1_700_000_000


def _repo_with_cache(root: Path) -> Path:
    repo = make_repo(
        root,
        files={
            "app.py": "print(1)\n",
            ".gitignore": ".env\ncache/\n",
            ".wtls.toml": 'copy = [".env", "cache/"]\n',
        },
    )
    (repo / ".env").write_text("TOKEN=1\n")
    (repo / "cache").mkdir()
    for i in range(20):
        (repo / "cache" / f"blob{i}").write_bytes(os.urandom(8192))
    tool = repo / "cache" / "tool.sh"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o750)
    os.utime(tool, (MTIME, MTIME))
    return repo


def _assert_same(repo: Path, wt: Path, copied: tuple[str, ...] | list[str]) -> None:
    for rel in copied:
        assert (wt / rel).read_bytes() == (repo / rel).read_bytes(), rel
    st = os.stat(wt / "cache" / "tool.sh")
    assert st.st_mode & 0o777 == 0o750
    assert st.st_mtime == MTIME


def _clone_supported(folder: Path) -> bool:
    src, dst = folder / ".probe-a", folder / ".probe-b"
    src.write_bytes(b"x")
    try:
        with open(src, "rb") as a, open(dst, "wb") as b:
            fcntl.ioctl(b.fileno(), 0x40049409, a.fileno())
        return True
    except OSError:
        return False
    finally:
        src.unlink()
        dst.unlink(missing_ok=True)


def test_plain_copy_where_the_file_system_cannot_clone(tmp_path: Path) -> None:
    if sys.platform == "linux" and _clone_supported(tmp_path):
        pytest.skip(f"{tmp_path} supports FICLONE: the fallback is tested on btrfs across mounts")
    repo = _repo_with_cache(tmp_path)
    proc = run_wtls(repo, "spawn", "t1", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert len(result["copied"]) == 22 and result["cloned"] == 0
    _assert_same(repo, Path(result["path"]), result["copied"])
    human = run_wtls(repo, "spawn", "t2")
    assert "22 files (0 copy-on-write clone(s), 22 plain copy(ies))" in human.stdout


_MKFS = {"btrfs": ("mkfs.btrfs", "btrfs-progs"), "xfs": ("mkfs.xfs", "xfsprogs")}


def _mount(fs: str) -> tuple[Path, Path] | str:
    """A loop-mounted image of ``fs`` ``(image, mount point)``, or why there is none."""
    mkfs, package = _MKFS[fs]
    if sys.platform != "linux":
        return "FICLONE is Linux's"
    if os.geteuid() != 0:
        return "mounting a loop image needs root"
    if shutil.which(mkfs) is None:
        return f"{mkfs} is not installed (apt-get install {package})"
    image = Path(tempfile.mkstemp(prefix=f"wtls-{fs}-", suffix=".img")[1])
    mount = Path(tempfile.mkdtemp(prefix=f"wtls-{fs}-"))
    steps = [
        ["truncate", "-s", "320M", str(image)],  # XFS needs 300 MB at least
        [mkfs, "-q", "-f", str(image)],
        ["mount", "-o", "loop", str(image), str(mount)],
    ]
    for step in steps:
        proc = subprocess.run(step, capture_output=True, text=True, check=False, timeout=60)
        if proc.returncode != 0:
            image.unlink(missing_ok=True)
            mount.rmdir()
            return f"{' '.join(step[:2])} failed: {proc.stderr.strip()}"
    return image, mount


@pytest.fixture(scope="module", params=["btrfs", "xfs"])
def cow(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A mounted copy-on-write file system (btrfs, XFS with reflink), or a skip saying why."""
    got = _mount(request.param)
    if isinstance(got, str):
        pytest.skip(f"no {request.param} to clone on: {got}")
    image, mount = got
    try:
        if not _clone_supported(mount):
            pytest.skip(f"{request.param} here does not clone (mkfs without reflink?)")
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False, timeout=60)
        mount.rmdir()
        image.unlink(missing_ok=True)


def test_clones_on_a_copy_on_write_file_system(cow: Path, tmp_path: Path) -> None:
    root = Path(tempfile.mkdtemp(dir=cow))
    repo = _repo_with_cache(root)
    result = spawn(repo, "t1")
    assert len(result.copied) == 22
    assert result.cloned == 22
    _assert_same(repo, result.path, result.copied)
    # A clone is a copy: writing one side leaves the other as it was.
    (result.path / "cache" / "blob0").write_bytes(b"changed")
    assert (repo / "cache" / "blob0").read_bytes() != b"changed"


def test_across_file_systems_it_copies(cow: Path, tmp_path: Path) -> None:
    root = Path(tempfile.mkdtemp(dir=cow))
    repo = _repo_with_cache(root)
    dest = tmp_path / "dest"  # another file system: FICLONE says EXDEV
    dest.mkdir()
    done = copy_ignored_files(repo, dest, [".env", "cache/"])
    assert len(done.files) == 22 and done.cloned == 0 and done.problems == ()
    _assert_same(repo, dest, done.files)
