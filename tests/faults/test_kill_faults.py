"""The server is killed with SIGKILL in the middle of spawn, merge and forced remove.

The kill lands at several moments (as the command is sent, and after growing delays that fall
inside git's own work on a repository of a few thousand files). Whatever moment it hits, on
restart the repository is consistent (``git fsck``, every listed worktree usable, nothing left
locked or half-created), a retry works, and every uncommitted byte is still there, in its folder
or in wtls's backup ref.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.rawlsp import IN_PROCESS, RawServer
from tests.faults.support import (
    assert_repository_consistent,
    branch_exists,
    fingerprint,
    git_ok,
    kill_server_only,
    listed_worktrees,
    running,
    spawned_fully_or_absent,
    wt,
)
from tests.gitutil import add_worktree, commit_all, git, make_repo

#: Seconds between sending the command and the SIGKILL.
DELAYS = (0.0, 0.2, 0.5)
REFUSED = -32001


def big_repo(tmp_path: Path) -> Path:
    """A repository with 1,200 files, so git's checkout and removal take a while."""
    files = {f"src/m{i}/f{j}.py": f"value = {i * j}\n" * 20 for i in range(40) for j in range(30)}
    files["cli.py"] = "print('tasks')\n"
    return make_repo(tmp_path, files=files)


async def start_and_kill(
    folder: Path, command: str, args: dict[str, object], delay: float
) -> dict[str, object] | None:
    """Start a server on ``folder``, send ``command``, SIGKILL it ``delay`` s later.

    Returns the command's answer if it came before the kill. The server runs in the process
    that is killed (``--no-daemon``): an engine would finish the command after its session died.
    """
    server = await RawServer.start(IN_PROCESS)
    try:
        await server.initialize([folder])
        await server.wait_for_state(lambda s: bool(s["worktrees"]), "initial state")
        future = server.send_request(
            "workspace/executeCommand", {"command": command, "arguments": [args]}
        )
        if delay:
            await asyncio.sleep(delay)
        await kill_server_only(server)
        return future.result() if future.done() else None
    finally:
        await server.close()


@pytest.mark.parametrize("delay", DELAYS)
async def test_kill_during_spawn(tmp_path: Path, delay: float) -> None:
    repo = big_repo(tmp_path)
    (repo / "draft.txt").write_text("the user's uncommitted draft\n")
    before = fingerprint(repo)
    answer = await start_and_kill(repo, "wtls.spawn", {"name": "agent-x"}, delay)
    branch, path = "agent/agent-x", tmp_path / "tasks-app-agent-x"

    present = spawned_fully_or_absent(repo, branch, path)
    if answer is not None and "result" in answer:
        assert present, "an answered spawn must have created the worktree"
    assert_repository_consistent(repo)
    assert fingerprint(repo) == before

    # A fresh server sees the truth, and a retry either refuses clearly or completes.
    async with running([repo]) as server:
        state = await server.wait_for_state(lambda s: bool(s["worktrees"]), "state on restart")
        assert (wt(state, path) is not None) == present
        retry = await server.command("wtls.spawn", {"name": "agent-x"})
        if present:
            assert retry["error"]["code"] == REFUSED, retry
            assert "already" in retry["error"]["message"] or "exists" in retry["error"]["message"]
        else:
            assert "result" in retry, retry
            assert retry["result"]["path"] == str(path.resolve())
        assert spawned_fully_or_absent(repo, branch, path)
        await server.wait_for_state(lambda s: wt(s, path) is not None, "spawned worktree listed")
    assert_repository_consistent(repo)


@pytest.mark.parametrize("delay", DELAYS)
async def test_kill_during_merge(tmp_path: Path, delay: float) -> None:
    repo = big_repo(tmp_path)
    wipe = add_worktree(repo, tmp_path / "tasks-app-wipe", "feature/wipe")
    for i in range(40):
        (wipe / "src" / f"m{i}" / "f0.py").write_text(f"value = 'wiped {i}'\n")
    wipe_tip = commit_all(wipe, "Add wipe")
    remaining = add_worktree(repo, tmp_path / "tasks-app-remaining", "feature/remaining")
    (remaining / "cli.py").write_text("print('remaining, uncommitted')\n")
    (repo / "CHANGES.md").write_text("main moved on\n")
    main_before = commit_all(repo, "Main moves on")
    (repo / "draft.txt").write_text("untracked draft in the base worktree\n")
    keep = fingerprint(remaining)

    args = {"worktree": "feature/wipe", "remove": True}
    answer = await start_and_kill(repo, "wtls.merge", args, delay)

    assert_repository_consistent(repo)
    main_now = git(repo, "rev-parse", "HEAD")
    merged = main_now != main_before
    if merged:
        assert git_ok(repo, "merge-base", "--is-ancestor", wipe_tip, main_now).returncode == 0
        assert git_ok(repo, "merge-base", "--is-ancestor", main_before, main_now).returncode == 0
    else:
        assert answer is None or "result" not in answer
    # The branch's work is never lost: it is in main, or still on its branch.
    assert merged or git(repo, "rev-parse", "refs/heads/feature/wipe") == wipe_tip
    if not branch_exists(repo, "feature/wipe"):
        assert merged
    assert not (repo / ".git" / "MERGE_HEAD").exists(), "no merge left half-done"
    assert (repo / "draft.txt").read_text() == "untracked draft in the base worktree\n"
    assert fingerprint(remaining) == keep
    if wipe.resolve() in listed_worktrees(repo):
        assert git(wipe, "status", "--porcelain") == ""

    async with running([repo]) as server:
        await server.wait_for_state(lambda s: bool(s["worktrees"]), "state on restart")
        retry = await server.command("wtls.merge", args)
        assert retry.get("error", {}).get("code", REFUSED) == REFUSED, retry
        state = await server.result("wtls/worktrees", {})
        assert wt(state, wipe) is None
    assert git_ok(repo, "merge-base", "--is-ancestor", wipe_tip, "HEAD").returncode == 0
    assert not wipe.exists()
    assert_repository_consistent(repo)
    assert (repo / "draft.txt").read_text() == "untracked draft in the base worktree\n"
    assert fingerprint(remaining) == keep


def _hashes(files: dict[str, bytes]) -> dict[str, str]:
    return {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}


def _restored_from_backup(repo: Path, ref: str, scratch: Path) -> dict[str, str]:
    """Restore a backup ref the documented way (`wtls restore`) elsewhere; its files' hashes."""
    proc = subprocess.run(
        [sys.executable, "-m", "wtls", "restore", ref, "--path", str(scratch)],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return fingerprint(scratch)


def _aside_folders(folder: Path) -> list[Path]:
    """Where a removal killed half-way leaves a folder: renamed aside, beside it."""
    return sorted(folder.parent.glob(f".{folder.name}.wtls-removing-*"))


@pytest.mark.parametrize("delay", DELAYS)
async def test_kill_during_forced_remove(tmp_path: Path, delay: float) -> None:
    repo = big_repo(tmp_path)
    wipe = add_worktree(repo, tmp_path / "tasks-app-wipe", "feature/wipe")
    (wipe / "cli.py").write_text("print('committed on wipe')\n")
    commit_all(wipe, "Wipe")
    # Every kind of uncommitted work: staged, unstaged, untracked, binary, deleted.
    (wipe / "staged.py").write_text("staged = True\n")
    git(wipe, "add", "staged.py")
    (wipe / "cli.py").write_text("print('unstaged edit')\n")
    (wipe / "notes").mkdir()
    (wipe / "notes" / "untracked.md").write_text("untracked notes\n")
    (wipe / "blob.bin").write_bytes(bytes(range(256)) * 64)
    (wipe / "src" / "m0" / "f1.py").unlink()
    expected = fingerprint(wipe)

    answer = await start_and_kill(
        repo, "wtls.remove", {"worktree": "feature/wipe", "force": True}, delay
    )

    assert_repository_consistent(repo)
    backups = git(repo, "for-each-ref", "--format=%(refname)", "refs/wtls/backup/").split()
    still_listed = wipe.resolve() in listed_worktrees(repo)
    if still_listed:
        # Not removed (yet): the folder holds every byte, where it was or renamed aside for the
        # last check (the next wtls command puts it back).
        aside = _aside_folders(wipe)
        assert fingerprint(wipe if wipe.exists() else aside[0]) == expected
    else:
        assert answer is None or "result" in answer
        assert not wipe.exists(), "removed from git's list but the folder is half there"
    if not still_listed or not wipe.exists():
        assert backups, "the worktree is gone and no backup ref holds its changes"
    if backups:
        # Whatever else happened, the backup restores every uncommitted byte.
        assert _restored_from_backup(repo, backups[0], tmp_path / "restored") == expected
        git(repo, "worktree", "remove", "--force", str(tmp_path / "restored"))
    assert branch_exists(repo, "feature/wipe"), "an unmerged branch is never deleted"

    async with running([repo]) as server:
        state = await server.wait_for_state(lambda s: bool(s["worktrees"]), "state on restart")
        assert (wt(state, wipe) is not None) == still_listed
        retry = await server.command("wtls.remove", {"worktree": "feature/wipe", "force": True})
        if still_listed:
            assert "result" in retry and retry["result"]["removed"], retry
        elif "result" in retry:
            # Killed while deleting the verified folder: the retry finishes that removal. Or
            # killed after git's record was pointed at the folder renamed aside, before the
            # deletion began (git then lists the aside path, not this one): the retry puts the
            # folder back, then removes it as asked.
            assert retry["result"]["removed"], retry
            message = retry["result"]["message"]
            assert (
                "finished an interrupted removal" in message
                or "an earlier removal of it was interrupted" in message
            ), retry
        else:
            assert retry["error"]["code"] == REFUSED, retry
    assert not wipe.exists()
    assert_repository_consistent(repo)
    refs = git(repo, "for-each-ref", "--format=%(refname)", "refs/wtls/backup/").split()
    assert refs
    assert _restored_from_backup(repo, refs[-1], tmp_path / "restored-final") == expected
