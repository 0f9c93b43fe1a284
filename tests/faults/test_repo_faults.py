"""The repository changes under a running server.

Every case makes the change from outside the editor (a terminal, another tool, the file
manager), then checks that the server is still up, publishes the right ``wtls/worktrees`` state
and diagnostics afterwards, and that no byte of the user's work was lost.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.rawlsp import uri
from tests.faults.support import fingerprint, running, wt
from tests.gitutil import add_worktree, commit_all, git, make_repo

USAGE = "add <text> | list | done <index>"
MARKERS = "intro\n<<<<<<< HEAD\nours\n=======\ntheirs\n>>>>>>> feature/x\n"
ERROR = 1


def codes(diagnostics: list[dict[str, Any]]) -> set[str]:
    return {d.get("code") for d in diagnostics}


def remove_tree(path: Path) -> None:
    """``rm -rf`` as a user does it, again if it loses a race with a process writing there
    (git, or wtls's conflict prediction writing objects), as a user would retry it."""
    for _ in range(50):
        try:
            shutil.rmtree(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)
    shutil.rmtree(path)


def head_of(worktree: Path) -> str:
    return git(worktree, "rev-parse", "HEAD")


def wtls_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``wtls`` CLI as a user in a terminal would."""
    return subprocess.run(
        [sys.executable, "-m", "wtls", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def two_agents(repo: Path, tmp_path: Path) -> tuple[Path, Path]:
    """feature/wipe with a commit and uncommitted work; feature/remaining, clean."""
    wipe = add_worktree(repo, tmp_path / "tasks-app-wipe", "feature/wipe")
    cli = wipe / "cli.py"
    cli.write_text(cli.read_text().replace(USAGE, USAGE + " | wipe"))
    commit_all(wipe, "Add wipe")
    (wipe / "work.txt").write_text("uncommitted work of agent A\n")
    remaining = add_worktree(repo, tmp_path / "tasks-app-remaining", "feature/remaining")
    return wipe, remaining


# ----------------------------------------------------------------------------- folders moved
async def test_main_worktree_moved_then_repaired_from_a_terminal(
    repo: Path, tmp_path: Path
) -> None:
    wipe, _ = two_agents(repo, tmp_path)
    before, head = fingerprint(wipe), head_of(wipe)
    async with running([wipe]) as server:
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 3, "initial state")
        moved = tmp_path / "tasks-app-moved"
        os.rename(repo, moved)

        diags = await server.wait_for_diagnostics(
            wipe / ".git", lambda d: "broken-link" in codes(d), "broken-link diagnostic"
        )
        assert diags[0]["severity"] == ERROR
        assert "wtls repair --apply" in diags[0]["message"]
        assert str(moved) in diags[0]["message"], "the message says where the repository is now"
        await server.wait_until(
            lambda: any(m["type"] == ERROR and "wtls repair" in m["message"] for m in server.shown),
            "an Error message with the fix",
        )

        # The user runs the fix from a terminal in the main worktree's new place.
        n = len(server.states)
        proc = wtls_cli(moved, "repair", "--apply")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        state = await server.wait_for_state(
            lambda s: s["mainWorktree"] == str(moved.resolve()) and s["this"] is not None,
            "state after the repair",
            since=n,
        )
        assert state["this"] == str(wipe.resolve())
        me = wt(state, wipe)
        assert me is not None and me["branch"] == "feature/wipe" and me["untracked"] == 1
        assert me["broken"] is None
        await server.wait_for_diagnostics(wipe / ".git", lambda d: not d, "diagnostic cleared")
    assert fingerprint(wipe) == before and head_of(wipe) == head


async def test_open_main_worktree_moved_away_and_back(repo: Path, tmp_path: Path) -> None:
    wipe, _ = two_agents(repo, tmp_path)
    (repo / "draft.txt").write_text("main's own uncommitted draft\n")
    before = fingerprint(repo)
    async with running([repo]) as server:
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 3, "initial state")
        away = tmp_path / "elsewhere"
        os.rename(repo, away)
        # The open folder is gone: the server says so (once) and answers requests with a reason.
        await server.wait_until(
            lambda: any("does not exist" in m["message"] for m in server.logs), "folder gone"
        )
        response = await server.request("wtls/worktrees", {"uri": uri(repo)})
        assert "error" in response and "does not exist" in response["error"]["message"]
        assert fingerprint(away) == before

        n = len(server.states)
        os.rename(away, repo)
        state = await server.wait_for_state(
            lambda s: s["this"] == str(repo.resolve()) and len(s["worktrees"]) == 3,
            "state once the folder is back",
            since=n,
        )
        assert wt(state, wipe)["untracked"] == 1  # type: ignore[index]
        assert wt(state, repo)["untracked"] == 1  # type: ignore[index]
        gone_messages = [m for m in server.logs if "does not exist" in m["message"]]
        assert len(gone_messages) <= 2, "said once, not on every poll"
    assert fingerprint(repo) == before


async def test_main_worktree_deleted(repo: Path, tmp_path: Path) -> None:
    wipe, _ = two_agents(repo, tmp_path)
    before = fingerprint(wipe)
    async with running([wipe]) as server:
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 3, "initial state")
        remove_tree(repo)
        diags = await server.wait_for_diagnostics(
            wipe / ".git", lambda d: "broken-link" in codes(d), "broken-link diagnostic"
        )
        assert "files are intact" in diags[0]["message"] or "intact" in diags[0]["message"]
        response = await server.request("wtls/worktrees", {"uri": uri(wipe)})
        assert response["error"]["code"] == -32001
    # The repository's history is gone with its folder; the agent's files are all still there.
    assert fingerprint(wipe) == before


async def test_linked_folder_deleted_by_hand(repo: Path, tmp_path: Path) -> None:
    wipe, remaining = two_agents(repo, tmp_path)
    head = head_of(wipe)
    async with running([repo]) as server:
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 3, "initial state")
        n = len(server.states)
        remove_tree(remaining)
        state = await server.wait_for_state(
            lambda s: (w := wt(s, remaining)) is not None and w["prunable"], "prunable", since=n
        )
        assert wt(state, wipe)["untracked"] == 1  # type: ignore[index]
        # The commits of a deleted worktree's branch are safe.
        assert git(repo, "rev-parse", "refs/heads/feature/wipe") == head
        assert git(repo, "rev-parse", "--verify", "refs/heads/feature/remaining")


async def test_worktree_admin_dir_deleted(repo: Path, tmp_path: Path) -> None:
    wipe, _ = two_agents(repo, tmp_path)
    admin = Path(git(wipe, "rev-parse", "--absolute-git-dir"))
    before = fingerprint(wipe)
    async with running([repo, wipe]) as server:
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 3, "initial state")
        n = len(server.states)
        remove_tree(admin)
        # git no longer lists it; the folder's broken link is named with its fix.
        await server.wait_for_state(
            lambda s: wt(s, wipe) is None and len(s["worktrees"]) == 2, "forgotten", since=n
        )
        diags = await server.wait_for_diagnostics(
            wipe / ".git", lambda d: "broken-link" in codes(d), "broken-link diagnostic"
        )
        assert "--branch" in diags[0]["message"]
        assert fingerprint(wipe) == before

        # The documented fix re-attaches the folder to its branch without touching a file.
        n = len(server.states)
        proc = wtls_cli(repo, "repair", "--apply", "--branch", "feature/wipe", str(wipe))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        state = await server.wait_for_state(
            lambda s: (w := wt(s, wipe)) is not None and w["branch"] == "feature/wipe",
            "re-attached",
            since=n,
        )
        assert wt(state, wipe)["untracked"] == 1  # type: ignore[index]
        await server.wait_for_diagnostics(wipe / ".git", lambda d: not d, "diagnostic cleared")
    assert fingerprint(wipe) == before


async def test_worktree_record_lost_then_deleted(repo: Path, tmp_path: Path) -> None:
    """The record of a worktree broken in two steps, each seen by no folder the server watches
    differently: first its ``gitdir`` file goes (git stops listing the worktree, although git
    still works in it), then the rest of it (the listing does not change again). Each step gets
    its own diagnostic and fix; this is also what a slow ``rm -rf`` of the record looks like."""
    wipe, _ = two_agents(repo, tmp_path)
    admin = Path(git(wipe, "rev-parse", "--absolute-git-dir"))
    before = fingerprint(wipe)
    async with running([repo, wipe]) as server:
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 3, "initial state")
        n = len(server.states)
        (admin / "gitdir").unlink()
        await server.wait_for_state(lambda s: wt(s, wipe) is None, "unlisted", since=n)
        diags = await server.wait_for_diagnostics(
            wipe / ".git", lambda d: "backlink-missing" in codes(d), "backlink-missing diagnostic"
        )
        assert diags[0]["severity"] == ERROR
        assert f"wtls repair --apply -- {wipe}" in diags[0]["message"]
        actions = await server.result(
            "textDocument/codeAction",
            {
                "textDocument": {"uri": uri(wipe / ".git")},
                "range": diags[0]["range"],
                "context": {"diagnostics": diags},
            },
        )
        assert [a["title"] for a in actions] == ["Repair worktree links"]

        # git's listing does not change now; the server still sees the record go.
        remove_tree(admin)
        diags = await server.wait_for_diagnostics(
            wipe / ".git", lambda d: codes(d) == {"broken-link"}, "broken-link diagnostic"
        )
        assert "--branch" in diags[0]["message"]

        n = len(server.states)
        proc = wtls_cli(repo, "repair", "--apply", "--branch", "feature/wipe", str(wipe))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        await server.wait_for_state(
            lambda s: (w := wt(s, wipe)) is not None and w["branch"] == "feature/wipe",
            "re-attached",
            since=n,
        )
        await server.wait_for_diagnostics(wipe / ".git", lambda d: not d, "diagnostic cleared")
    assert fingerprint(wipe) == before


async def test_lost_record_repaired_by_the_quick_fix(repo: Path, tmp_path: Path) -> None:
    wipe, _ = two_agents(repo, tmp_path)
    admin = Path(git(wipe, "rev-parse", "--absolute-git-dir"))
    before = fingerprint(wipe)
    async with running([wipe]) as server:
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 3, "initial state")
        (admin / "gitdir").unlink()
        diags = await server.wait_for_diagnostics(
            wipe / ".git", lambda d: "backlink-missing" in codes(d), "backlink-missing diagnostic"
        )
        [action] = await server.result(
            "textDocument/codeAction",
            {
                "textDocument": {"uri": uri(wipe / ".git")},
                "range": diags[0]["range"],
                "context": {"diagnostics": diags},
            },
        )
        n = len(server.states)
        [arguments] = action["command"]["arguments"]
        assert arguments == {"apply": True, "paths": [str(wipe)]}
        response = await server.command(action["command"]["command"], arguments)
        assert response["result"]["verified"] is True, response
        state = await server.wait_for_state(
            lambda s: wt(s, wipe) is not None and s["this"] == str(wipe.resolve()),
            "the folder is a listed worktree again",
            since=n,
        )
        assert wt(state, wipe)["branch"] == "feature/wipe"  # type: ignore[index]
        await server.wait_for_diagnostics(wipe / ".git", lambda d: not d, "diagnostic cleared")
    assert (admin / "gitdir").read_text().strip() == str(wipe / ".git")
    assert fingerprint(wipe) == before


async def test_folder_opened_while_its_worktree_is_being_added(repo: Path, tmp_path: Path) -> None:
    """An agent runs `git worktree add` and its editor opens the folder at once: whatever the
    server read first, the folder ends up served (its conflict markers are reported)."""
    async with running([repo]) as server:
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 1, "initial state")
        new = tmp_path / "agent"
        git(repo, "worktree", "add", "-q", "-b", "agent/x", str(new))
        server.notify(
            "workspace/didChangeWorkspaceFolders",
            {"event": {"added": [{"uri": uri(new), "name": "agent"}], "removed": []}},
        )
        (new / "notes.txt").write_text(MARKERS)
        await server.wait_for_diagnostics(
            new / "notes.txt", lambda d: "conflict-marker" in codes(d), "markers in the new folder"
        )
        assert not server.diagnostics_for(new / ".git")


async def test_subfolder_of_a_worktree_reopens_after_repair(repo: Path, tmp_path: Path) -> None:
    wipe, _ = two_agents(repo, tmp_path)
    sub = wipe / "docs"
    sub.mkdir()
    admin = Path(git(wipe, "rev-parse", "--absolute-git-dir"))
    (admin / "gitdir").unlink()
    async with running([sub]) as server:
        await server.wait_for_diagnostics(
            wipe / ".git", lambda d: "backlink-missing" in codes(d), "backlink-missing diagnostic"
        )
        # Ordinary git work in the broken worktree is not a reason to retry.
        git(wipe, "add", "-A")
        n = len(server.states)
        git(repo, "worktree", "repair", "--", str(wipe))  # from a terminal
        state = await server.wait_for_state(
            lambda s: s["this"] == str(wipe.resolve()), "the subfolder served", since=n
        )
        assert wt(state, wipe)["branch"] == "feature/wipe"  # type: ignore[index]
        await server.wait_for_diagnostics(wipe / ".git", lambda d: not d, "diagnostic cleared")


async def test_two_folders_of_one_broken_worktree_get_one_popup(repo: Path, tmp_path: Path) -> None:
    wipe, _ = two_agents(repo, tmp_path)
    docs, src = wipe / "docs", wipe / "src"
    docs.mkdir()
    src.mkdir()
    (Path(git(wipe, "rev-parse", "--absolute-git-dir")) / "gitdir").unlink()
    async with running([docs, src]) as server:
        await server.wait_for_diagnostics(
            wipe / ".git", lambda d: "backlink-missing" in codes(d), "backlink-missing diagnostic"
        )
        await server.wait_until(lambda: len(server.logs) >= 2, "both folders reported")
        popups = [m for m in server.shown if "missing from `git worktree list`" in m["message"]]
        assert len(popups) == 1, popups


async def test_git_worktree_move_from_a_terminal(repo: Path, tmp_path: Path) -> None:
    wipe, _ = two_agents(repo, tmp_path)
    before = fingerprint(wipe)
    async with running([repo]) as server:
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 3, "initial state")
        n = len(server.states)
        new = tmp_path / "moved" / "wipe"
        new.parent.mkdir()
        git(repo, "worktree", "move", str(wipe), str(new))
        state = await server.wait_for_state(
            lambda s: wt(s, new) is not None and wt(s, wipe) is None, "moved", since=n
        )
        assert wt(state, new)["branch"] == "feature/wipe"  # type: ignore[index]
        # The new place is watched.
        n = len(server.states)
        (new / "more.txt").write_text("more\n")
        await server.wait_for_state(
            lambda s: (w := wt(s, new)) is not None and w["untracked"] == 2, "edit seen", since=n
        )
    after = fingerprint(new)
    assert {k: v for k, v in after.items() if k != "more.txt"} == before


# ----------------------------------------------------------------------------- refs and HEAD
async def test_gc_prune_now(repo: Path, tmp_path: Path) -> None:
    wipe, _ = two_agents(repo, tmp_path)
    git(wipe, "stash", "push", "-u", "-m", "agent A's stash")
    (wipe / "work.txt").write_text("uncommitted work of agent A\n")
    stash = git(wipe, "rev-parse", "refs/stash")
    async with running([wipe]) as server:
        initial = await server.wait_for_state(lambda s: len(s["worktrees"]) == 3, "initial state")
        git(repo, "gc", "--prune=now", "--quiet")
        # Still following the repository after objects and refs were repacked.
        n = len(server.states)
        (wipe / "cli.py").write_text("edited after gc\n")
        state = await server.wait_for_state(
            lambda s: (w := wt(s, wipe)) is not None and w["unstaged"] == 1, "edit seen", since=n
        )
        for before in initial["worktrees"]:
            after = wt(state, Path(before["path"]))
            assert after is not None and after["head"] == before["head"]
    assert git(wipe, "rev-parse", "refs/stash") == stash
    assert "uncommitted work" in (wipe / "work.txt").read_text()


async def test_branch_force_moved_deleted_and_head_detached(repo: Path, tmp_path: Path) -> None:
    wipe, remaining = two_agents(repo, tmp_path)
    wipe_head = head_of(wipe)
    main_head = head_of(repo)
    async with running([repo]) as server:
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 3, "initial state")

        # Force-move a checked-out branch (another tool resets it under the worktree).
        n = len(server.states)
        git(repo, "update-ref", "refs/heads/feature/wipe", main_head)
        state = await server.wait_for_state(
            lambda s: (w := wt(s, wipe)) is not None and w["head"] == main_head, "moved", since=n
        )
        assert wt(state, wipe)["base"]["ahead"] == 0  # type: ignore[index]

        # Delete it: the worktree is on an unborn branch now; nothing crashes.
        n = len(server.states)
        git(repo, "update-ref", "-d", "refs/heads/feature/wipe")
        state = await server.wait_for_state(
            lambda s: (w := wt(s, wipe)) is not None and w["head"] is None, "deleted", since=n
        )
        assert wt(state, wipe)["base"] is None  # type: ignore[index]

        # Recreate it at its commit: the commit was never lost.
        n = len(server.states)
        git(repo, "branch", "feature/wipe", wipe_head)
        await server.wait_for_state(
            lambda s: (w := wt(s, wipe)) is not None and w["head"] == wipe_head, "back", since=n
        )

        # A branch that no worktree has checked out, force-moved; then a detached HEAD.
        git(repo, "branch", "-f", "feature/spare", wipe_head)
        n = len(server.states)
        git(remaining, "switch", "-q", "--detach", "HEAD")
        state = await server.wait_for_state(
            lambda s: (w := wt(s, remaining)) is not None and w["detached"], "detached", since=n
        )
        assert wt(state, remaining)["branch"] is None  # type: ignore[index]
        response = await server.result("wtls/worktrees", {"uri": uri(repo)})
        assert wt(response, remaining)["detached"] is True  # type: ignore[index]
    assert (wipe / "work.txt").read_text() == "uncommitted work of agent A\n"


async def test_rebase_started_and_aborted(repo: Path, tmp_path: Path) -> None:
    wipe, _ = two_agents(repo, tmp_path)
    (wipe / "work.txt").unlink()
    cli = repo / "cli.py"
    cli.write_text(cli.read_text().replace(USAGE, USAGE + " | stats"))
    commit_all(repo, "Add stats")
    head = head_of(wipe)
    async with running([wipe]) as server:
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 3, "initial state")
        n = len(server.states)
        proc = subprocess.run(
            ["git", "rebase", "main"], cwd=wipe, capture_output=True, text=True, check=False
        )
        assert proc.returncode != 0, "the rebase stops on the conflict"
        state = await server.wait_for_state(
            lambda s: (w := wt(s, wipe)) is not None and w["operation"] == "rebase",
            "rebase in progress",
            since=n,
        )
        assert wt(state, wipe)["conflicted"] == 1  # type: ignore[index]
        diags = await server.wait_for_diagnostics(
            wipe / "cli.py", lambda d: "conflict-marker" in codes(d), "marker diagnostic"
        )
        # Other diagnostics (a predicted conflict with main) may share the file.
        assert [d["severity"] for d in diags if d["code"] == "conflict-marker"] == [ERROR]

        n = len(server.states)
        git(wipe, "rebase", "--abort")
        state = await server.wait_for_state(
            lambda s: (w := wt(s, wipe)) is not None and w["operation"] is None, "aborted", since=n
        )
        me = wt(state, wipe)
        assert me is not None and me["head"] == head and me["branch"] == "feature/wipe"
        assert me["conflicted"] == 0
        # Only the markers go: wipe's restored commit does conflict with main's on that line,
        # and the predicted conflict may already be back (a write is predicted at once).
        await server.wait_for_diagnostics(
            wipe / "cli.py", lambda d: "conflict-marker" not in codes(d), "markers cleared"
        )
        await server.wait_for_diagnostics(
            wipe / "cli.py", lambda d: "predicted-conflict" in codes(d), "the conflict with main"
        )
    assert head_of(wipe) == head and "| wipe" in (wipe / "cli.py").read_text()


async def test_index_lock_held_for_seconds(repo: Path, tmp_path: Path) -> None:
    wipe, _ = two_agents(repo, tmp_path)
    lock = Path(git(wipe, "rev-parse", "--path-format=absolute", "--git-path", "index.lock"))
    async with running([wipe]) as server:
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 3, "initial state")
        # Another git process holds the index for seconds; edits keep being reported.
        lock.write_bytes(b"")
        try:
            n = len(server.states)
            (wipe / "cli.py").write_text("edited while the index is locked\n")
            await server.wait_for_state(
                lambda s: (w := wt(s, wipe)) is not None and w["unstaged"] == 1,
                "edit seen while locked",
                since=n,
            )
            await asyncio.sleep(2)  # hold the lock a while longer, as a slow git would
        finally:
            lock.unlink()
        assert server.alive
        # The server never takes index.lock itself: a user's commits never fail because of it,
        # even while it is busy refreshing on every write.
        for i in range(6):
            (wipe / f"file{i}.txt").write_text(f"{i}\n")
            proc = subprocess.run(
                ["git", "commit", "-q", "-am", f"commit {i}", "--allow-empty"],
                cwd=wipe,
                capture_output=True,
                text=True,
                check=False,
            )
            assert proc.returncode == 0, proc.stderr
            git(wipe, "add", f"file{i}.txt")
        commit_all(wipe, "last")
        head = head_of(wipe)
        await server.wait_for_state(
            lambda s: (w := wt(s, wipe)) is not None and w["head"] == head and w["unstaged"] == 0,
            "commits seen",
        )


async def test_a_worktree_is_not_read_while_git_rewrites_it(repo: Path, tmp_path: Path) -> None:
    """While a git command holds a worktree's index.lock (a checkout, a merge), the server waits
    for it (up to 5 s after the lock appeared) instead of publishing a half-written state."""
    wipe, _ = two_agents(repo, tmp_path)
    lock = Path(git(wipe, "rev-parse", "--path-format=absolute", "--git-path", "index.lock"))
    async with running([wipe]) as server:
        first = await server.wait_for_state(lambda s: len(s["worktrees"]) == 3, "initial state")
        untracked = wt(first, wipe)["untracked"]  # type: ignore[index]
        n = len(server.states)
        lock.write_bytes(b"")  # a git command starts rewriting the worktree...
        try:
            (wipe / "cli.py").write_text("first half\n")
            await asyncio.sleep(0.5)  # ...several watcher batches long (each 40 ms)
            os.utime(lock)  # (keep the lock young whatever the machine's speed)
            (wipe / "one.txt").write_text("second half\n")
            await asyncio.sleep(0.5)
        finally:
            lock.unlink()  # ...and is done
        state = await server.wait_for_state(
            lambda s: (w := wt(s, wipe)) is not None and w["unstaged"] == 1, "the edit", since=n
        )
        # The first state that shows the checkout's first write shows its last one too.
        assert wt(state, wipe)["untracked"] == untracked + 1, wt(state, wipe)  # type: ignore[index]


# ----------------------------------------------------------------------------- odd files
async def test_large_single_line_file(repo: Path, tmp_path: Path) -> None:
    wipe, _ = two_agents(repo, tmp_path)
    big = wipe / "bundle.min.js"
    line = "<<<<<<< " + "x" * (5 * 1024 * 1024)  # 5 MB, one line, looks like a marker start
    async with running([wipe]) as server:
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 3, "initial state")
        n = len(server.states)
        big.write_text(line)
        await server.wait_for_state(
            lambda s: (w := wt(s, wipe)) is not None and w["untracked"] == 2, "seen", since=n
        )
        # An editor opens it (5 MB over JSON-RPC) and types into it.
        server.notify(
            "textDocument/didOpen",
            {
                "textDocument": {
                    "uri": uri(big),
                    "languageId": "javascript",
                    "version": 1,
                    "text": line,
                }
            },
        )
        server.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri(big), "version": 2},
                "contentChanges": [
                    {
                        "range": {
                            "start": {"line": 0, "character": 8},
                            "end": {"line": 0, "character": 9},
                        },
                        "text": "y",
                    }
                ],
            },
        )
        state = await server.result("wtls/worktrees", {"uri": uri(big)}, timeout=30)
        assert wt(state, wipe)["untracked"] == 2  # type: ignore[index]
        # An opening marker without a separator and an end is not a conflict block.
        assert not codes(server.diagnostics_for(big)) & {"conflict-marker"}
    assert big.read_text() == line


async def test_binary_file_with_marker_like_bytes(repo: Path, tmp_path: Path) -> None:
    wipe, _ = two_agents(repo, tmp_path)
    blob = wipe / "image.bin"
    data = b"\x89PNG\x00\x01" + MARKERS.encode() + b"\x00\xff\xfe" * 100
    async with running([wipe]) as server:
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 3, "initial state")
        blob.write_bytes(data)
        (wipe / "notes.txt").write_text(MARKERS)  # the same bytes in a text file: flagged
        await server.wait_for_diagnostics(
            wipe / "notes.txt", lambda d: "conflict-marker" in codes(d), "text file flagged"
        )
        state = await server.wait_for_state(
            lambda s: (w := wt(s, wipe)) is not None and w["untracked"] == 3, "both counted"
        )
        assert state is not None
        assert server.diagnostics_for(blob) == []
    assert blob.read_bytes() == data


async def test_files_deleted_between_event_and_read(repo: Path, tmp_path: Path) -> None:
    wipe, _ = two_agents(repo, tmp_path)
    async with running([wipe]) as server:
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 3, "initial state")
        churn = wipe / "churn"
        for round_ in range(30):
            churn.mkdir()
            for i in range(20):
                (churn / f"f{i}.txt").write_text(MARKERS if i % 2 else "x\n")
            (wipe / f"tmp{round_}.txt").write_text(MARKERS)
            (wipe / f"tmp{round_}.txt").unlink()
            shutil.rmtree(churn)
            await asyncio.sleep(0.01)
        (wipe / "sentinel.txt").write_text(MARKERS)
        await server.wait_for_diagnostics(
            wipe / "sentinel.txt", lambda d: "conflict-marker" in codes(d), "sentinel flagged"
        )
        state = await server.wait_for_state(
            lambda s: (w := wt(s, wipe)) is not None and w["untracked"] == 2, "settled"
        )
        assert state is not None

        # Nothing stays flagged for a file that no longer exists.
        def stale() -> list[str]:
            return [p for p, diags in server.diagnostics.items() if diags and not Path(p).exists()]

        await server.wait_until(lambda: not stale(), "no diagnostics on deleted files")
    assert (wipe / "work.txt").read_text() == "uncommitted work of agent A\n"


async def test_symlink_loops_inside_a_worktree(repo: Path, tmp_path: Path) -> None:
    wipe, _ = two_agents(repo, tmp_path)
    (wipe / "self").symlink_to("self")
    (wipe / "a").symlink_to("b")
    (wipe / "b").symlink_to("a")
    sub = wipe / "sub"
    sub.mkdir()
    (sub / "up").symlink_to("..", target_is_directory=True)
    (sub / "root").symlink_to(wipe, target_is_directory=True)
    async with running([wipe]) as server:
        # Discovery, the first full scan and the watcher all cope with the loops.
        await server.wait_for_state(lambda s: len(s["worktrees"]) == 3, "initial state")
        (sub / "notes.txt").write_text(MARKERS)
        await server.wait_for_diagnostics(
            sub / "notes.txt", lambda d: "conflict-marker" in codes(d), "marker seen"
        )
        (wipe / "b2").symlink_to("b2")
        result = await server.command("wtls.refresh", {})
        assert "error" not in result, result
        state = await server.result("wtls/worktrees", {"uri": uri(wipe)})
        me = wt(state, wipe)
        # work.txt, self, a, b, b2, sub/ (git counts an untracked folder once).
        assert me is not None and me["untracked"] == 6
    assert (wipe / "work.txt").read_text() == "uncommitted work of agent A\n"


async def test_worktrees_on_paths_with_spaces_and_unicode(tmp_path: Path) -> None:
    root = tmp_path / "my repos" / "tâches ✓"
    repo = make_repo(root, name="tasks app")
    agent = add_worktree(repo, root / "agent wörk — 1", "feature/ünïcode")
    (agent / "notes file.txt").write_text(MARKERS)
    async with running([agent]) as server:
        state = await server.wait_for_state(lambda s: len(s["worktrees"]) == 2, "initial state")
        assert state["this"] == str(agent.resolve())
        assert state["mainWorktree"] == str(repo.resolve())
        me = wt(state, agent)
        assert me is not None and me["branch"] == "feature/ünïcode" and me["untracked"] == 1
        diags = await server.wait_for_diagnostics(
            agent / "notes file.txt", lambda d: "conflict-marker" in codes(d), "marker"
        )
        assert diags[0]["range"]["start"]["line"] == 1
        n = len(server.states)
        (agent / "ça marche.txt").write_text("ok\n")
        await server.wait_for_state(
            lambda s: (w := wt(s, agent)) is not None and w["untracked"] == 2, "edit", since=n
        )
        pulled = await server.result("wtls/worktrees", {"uri": uri(agent / "ça marche.txt")})
        assert pulled["this"] == str(agent.resolve())


# ----------------------------------------------------------------------------- permissions
NOBODY = 65534


@pytest.fixture
def unprivileged(tmp_path: Path) -> Iterator[tuple[Path, list[str], dict[str, str]]]:
    """A folder, a server command and an environment for a user that permissions apply to.

    Permission bits do not stop root: as root, the server runs as ``nobody`` (setpriv) on a tree
    owned by nobody, and the test's own git calls accept that owner (safe.directory).
    """
    if os.geteuid() != 0:
        yield tmp_path, [sys.executable, "-m", "wtls", "serve"], dict(os.environ)
        return
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot drop privileges")
    base = Path(tempfile.mkdtemp(prefix="wtls-perm-"))
    try:
        base.chmod(0o755)
        home = base / "home"
        home.mkdir()
        config = Path(os.environ["HOME"]) / ".gitconfig"
        with config.open("a") as f:
            f.write("[safe]\n\tdirectory = *\n")
        shutil.copy(config, home / ".gitconfig")
        argv = [
            setpriv,
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            sys.executable,
            "-m",
            "wtls",
            "serve",
        ]
        yield base, argv, {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home)}
    finally:
        subprocess.run(["chmod", "-R", "u+rwx", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)


def _give_to_nobody(base: Path) -> None:
    if os.geteuid() == 0:
        for path in [base, *base.rglob("*")]:
            os.lchown(path, NOBODY, NOBODY)


async def test_permission_denied_on_folders(
    unprivileged: tuple[Path, list[str], dict[str, str]],
) -> None:
    base, argv, env = unprivileged
    repo = make_repo(base, files={"cli.py": "print('tasks')\n", "src/core.py": "core = 1\n"})
    wipe = add_worktree(repo, base / "tasks-app-wipe", "feature/wipe")
    secret = wipe / "secret"
    secret.mkdir()
    (secret / "notes.txt").write_text(MARKERS)
    _give_to_nobody(base)
    src = wipe / "src"
    secret.chmod(0)
    src.chmod(0)  # a tracked folder, unreadable
    try:
        async with running([wipe], env=env, argv=argv) as server:
            state = await server.wait_for_state(lambda s: len(s["worktrees"]) == 2, "initial")
            me = wt(state, wipe)
            assert me is not None and me["branch"] == "feature/wipe" and me["broken"] is None
            # Still following the readable part.
            n = len(server.states)
            (wipe / "cli.py").write_text("print('edited')\n")
            await server.wait_for_state(
                lambda s: (w := wt(s, wipe)) is not None and w["unstaged"] == 1, "edit", since=n
            )
            # Readable again: its files are followed from then on.
            n = len(server.states)
            secret.chmod(0o755)
            src.chmod(0o755)
            (src / "core.py").write_text("core = 2\n")
            await server.wait_for_state(
                lambda s: (w := wt(s, wipe)) is not None and w["unstaged"] == 2,
                "edit in the folder that became readable",
                since=n,
            )
            (secret / "more.txt").write_text(MARKERS)
            await server.wait_for_diagnostics(
                secret / "more.txt", lambda d: "conflict-marker" in codes(d), "markers seen"
            )
    finally:
        secret.chmod(0o755)
        src.chmod(0o755)
    assert (secret / "notes.txt").read_text() == MARKERS
    assert (src / "core.py").read_text() == "core = 2\n"
