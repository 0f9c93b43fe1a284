"""Shared pieces of the fault tests: a running server on some folders, and checks."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.faults.rawlsp import SERVER, RawServer
from tests.gitutil import git


def wt(state: Mapping[str, Any], path: Path) -> dict[str, Any] | None:
    """The worktree object for ``path`` in a ``wtls/worktrees`` payload."""
    target = str(path.resolve())
    return next((w for w in state["worktrees"] if w["path"] == target), None)


def assert_no_traceback(server: RawServer) -> None:
    """The server wrote no Python traceback (a crash or an unhandled error) on stderr."""
    text = server.stderr_text()
    assert "Traceback (most recent call last)" not in text, text[-4000:]


def fingerprint(folder: Path) -> dict[str, str]:
    """Every regular file under ``folder`` (outside .git) and a hash of its bytes."""
    out: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if rel.parts[0] == ".git" or path.is_symlink() or not path.is_file():
            continue
        out[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@asynccontextmanager
async def running(
    folders: Sequence[Path],
    *,
    settings: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    argv: Sequence[str] = SERVER,
    check_stderr: bool = True,
) -> AsyncIterator[RawServer]:
    """A server initialized on ``folders``; shut down (or killed) afterwards, whatever happens.

    On a normal exit of the block, the server must still be alive and must not have printed a
    traceback.
    """
    server = await RawServer.start(argv, env=env)
    try:
        await server.initialize(folders, settings=settings)
        yield server
        assert server.alive, f"server died: {server.stderr_text()[-3000:]}"
        if check_stderr:
            assert_no_traceback(server)
    finally:
        await server.close()


# ----------------------------------------------------------------------------- processes
def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of group ``pgid`` (Linux /proc; else a signal-0 probe)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    members: list[int] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ")".
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


async def kill_server_only(server: RawServer, timeout: float = 60.0) -> None:
    """SIGKILL the server process alone, as an OOM killer or ``kill -9 PID`` does, then wait
    (bounded) for the git processes it had started to finish on their own."""
    pgid = server.proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.kill(server.proc.pid, signal.SIGKILL)
    await asyncio.wait_for(server.proc.wait(), timeout)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while members := _group_members(pgid):
        assert loop.time() < deadline, f"processes {members} of the killed server never ended"
        await asyncio.sleep(0.05)


# ----------------------------------------------------------------------------- repository checks
def git_ok(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run git; return the completed process whatever its exit status."""
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)


def branch_exists(repo: Path, branch: str) -> bool:
    return git_ok(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}").returncode == 0


def listed_worktrees(repo: Path) -> dict[Path, dict[str, str]]:
    """``git worktree list --porcelain`` as {path: {key: value}}."""
    out: dict[Path, dict[str, str]] = {}
    for record in git(repo, "worktree", "list", "--porcelain").split("\n\n"):
        fields = dict(line.partition(" ")[::2] for line in record.splitlines() if line)
        if "worktree" in fields:
            out[Path(fields["worktree"]).resolve()] = fields
    return out


def assert_repository_consistent(repo: Path) -> None:
    """git can use every listed worktree; nothing is left locked half-way or dangling."""
    fsck = git_ok(repo, "fsck", "--no-dangling", "--no-progress")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    for path, fields in listed_worktrees(repo).items():
        assert "prunable" not in fields, f"{path} is listed but gone: {fields}"
        assert "locked" not in fields, f"{path} was left locked: {fields}"
        status = git_ok(path, "status", "--porcelain")
        assert status.returncode == 0, status.stderr
    admin = repo / ".git" / "worktrees"
    if admin.is_dir():
        listed = {p for p in listed_worktrees(repo)}
        for entry in admin.iterdir():
            gitdir = Path((entry / "gitdir").read_text().strip()).parent.resolve()
            assert gitdir in listed, f"stale admin entry {entry} for {gitdir}"


def spawned_fully_or_absent(repo: Path, branch: str, path: Path) -> bool:
    """Assert a spawn left the worktree whole (listed, branch checked out, every file there) or
    left nothing behind that blocks a retry; return whether it is there."""
    listed = listed_worktrees(repo)
    if path.resolve() in listed:
        fields = listed[path.resolve()]
        assert fields.get("branch") == f"refs/heads/{branch}", fields
        assert "locked" not in fields, f"left half-initialised: {fields}"
        # A full checkout: no tracked file is missing or different.
        assert git(path, "status", "--porcelain", "--untracked-files=no") == ""
        assert git(path, "rev-parse", "HEAD") == git(repo, "rev-parse", f"refs/heads/{branch}")
        return True
    assert not branch_exists(repo, branch), f"branch {branch} left behind without its worktree"
    assert not path.exists() or not any(path.iterdir()), f"{path} left half-created"
    return False
