"""git missing from PATH, or too old: a clear message at start, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.support import assert_no_traceback, running
from tests.gitutil import make_repo

ERROR = 1  # LSP MessageType.Error


@pytest.fixture
def no_git_path(tmp_path: Path) -> str:
    """A PATH that has no git on it (only an empty folder)."""
    empty = tmp_path / "bin-without-git"
    empty.mkdir()
    return str(empty)


@pytest.fixture
def old_git_path(tmp_path: Path) -> str:
    """A PATH whose first git claims to be 2.30.0 and otherwise behaves like the real one."""
    real = shutil.which("git")
    assert real is not None
    fake = tmp_path / "bin-old-git"
    fake.mkdir()
    script = fake / "git"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then echo "git version 2.30.0"; exit 0; fi\n'
        f'exec "{real}" "$@"\n'
    )
    script.chmod(0o755)
    return f"{fake}{os.pathsep}{os.environ['PATH']}"


def _env(path: str) -> dict[str, str]:
    return {**os.environ, "PATH": path}


async def test_server_without_git_says_so_and_stays_up(tmp_path: Path, no_git_path: str) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    async with running([folder], env=_env(no_git_path)) as server:
        shown = await server.wait_until(
            lambda: [m for m in server.shown if m["type"] == ERROR], "an Error message"
        )
        assert "git was not found on PATH" in shown[0]["message"]
        assert "2.38" in shown[0]["message"]
        # A request for the state is answered with an error that names git, not a crash.
        response = await server.request("wtls/worktrees", {"uri": folder.as_uri()})
        assert "error" in response
        assert "git" in response["error"]["message"]
        assert "Traceback" not in response["error"]["message"]
        assert server.alive
    assert_no_traceback(server)


async def test_server_with_old_git_names_the_version_needed(
    tmp_path: Path, old_git_path: str
) -> None:
    repo = make_repo(tmp_path)
    async with running([repo], env=_env(old_git_path)) as server:
        shown = await server.wait_until(
            lambda: [m for m in server.shown if m["type"] == ERROR], "an Error message"
        )
        message = shown[0]["message"]
        assert "git 2.30.0 is too old" in message
        assert "needs git 2.38 or newer" in message
        assert not server.states, "no state is published with an unusable git"
        response = await server.request("wtls/worktrees", {"uri": repo.as_uri()})
        assert "error" in response and "2.38" in response["error"]["message"]


def _cli(args: list[str], path: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wtls", *args],
        cwd=cwd,
        env=_env(path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_without_git_exits_2_with_one_line(tmp_path: Path, no_git_path: str) -> None:
    repo = make_repo(tmp_path)
    proc = _cli(["list"], no_git_path, repo)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "git was not found on PATH" in lines[0]


def test_cli_with_old_git_exits_2_naming_the_version(tmp_path: Path, old_git_path: str) -> None:
    repo = make_repo(tmp_path)
    proc = _cli(["list", "--json"], old_git_path, repo)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "2.30.0" in lines[0] and "2.38" in lines[0]
