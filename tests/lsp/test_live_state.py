"""The foundation end to end: a real server over stdio, changes made from outside the editor."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp

from tests.gitutil import add_worktree, commit_all, git
from tests.lsp.harness import open_session


def wt(state: dict[str, Any], path: Path) -> dict[str, Any] | None:
    return next((w for w in state["worktrees"] if w["path"] == str(path.resolve())), None)


async def test_initial_notification_describes_every_worktree(repo: Path, tmp_path: Path) -> None:
    wipe = add_worktree(repo, tmp_path / "tasks-app-wipe", "feature/wipe")
    (wipe / "cli.py").write_text(
        (wipe / "cli.py").read_text().replace("done <index>", "done <index> | wipe")
    )
    commit_all(wipe, "Add wipe")
    async with open_session([wipe]) as s:
        state = await s.wait_for_state(lambda st: len(st["worktrees"]) == 2, "initial state")
        assert state["repository"] == str((repo / ".git").resolve())
        assert state["this"] == str(wipe.resolve())
        me = wt(state, wipe)
        main = wt(state, repo)
        assert me is not None and main is not None
        assert me["branch"] == "feature/wipe" and me["isThis"] and not me["isMain"]
        assert main["isMain"] and main["branch"] == "main"
        assert me["base"] == {"branch": "main", "ahead": 1, "behind": 0, "merged": False}
        assert me["head"] == git(wipe, "rev-parse", "HEAD")

        # The initial read reported work-done progress, begun and ended.
        def reports() -> list[object]:
            return [r for rs in s.client.progress_reports.values() for r in rs]

        assert any(
            isinstance(r, lsp.WorkDoneProgressBegin) and "reading worktrees" in r.title
            for r in reports()
        )
        await s.wait_until(
            lambda: any(isinstance(r, lsp.WorkDoneProgressEnd) for r in reports()),
            "progress end",
        )
        # The request returns the same object.
        pulled = await s.request_worktrees(wipe / "cli.py")

        # Sizes on disk are measured in the background after the first notification.
        def without_size(ws: list[dict[str, Any]]) -> list[dict[str, Any]]:
            # Sizes and process counts are measured after the first read, in the background:
            # either may land between the notification and the request.
            later = ("diskBytes", "processes")
            return [{k: v for k, v in w.items() if k not in later} for w in ws]

        assert without_size(pulled["worktrees"]) == without_size(state["worktrees"])
        sized = await s.wait_for_state(
            lambda st: all(w["diskBytes"] for w in st["worktrees"]), "disk sizes"
        )
        assert wt(sized, wipe)["diskBytes"] > 0  # type: ignore[index]


async def test_changes_from_a_terminal_are_announced(repo: Path, tmp_path: Path) -> None:
    async with open_session([repo]) as s:
        await s.wait_for_state(lambda st: len(st["worktrees"]) == 1, "initial state")

        # An agent adds a worktree from a terminal.
        n = len(s.states)
        remaining = add_worktree(repo, tmp_path / "tasks-app-remaining", "feature/remaining")
        await s.wait_for_state(lambda st: wt(st, remaining) is not None, "new worktree", since=n)

        # ...edits a file there without committing: counts change.
        n = len(s.states)
        (remaining / "cli.py").write_text("changed\n")
        (remaining / "notes.txt").write_text("new\n")
        st = await s.wait_for_state(
            lambda st: (
                (w := wt(st, remaining)) is not None and w["unstaged"] == 1 and w["untracked"] == 1
            ),
            "dirty counts",
            since=n,
        )
        assert wt(st, repo)["unstaged"] == 0  # type: ignore[index]

        # ...commits: ahead of base.
        n = len(s.states)
        commit_all(remaining, "Add remaining")
        await s.wait_for_state(
            lambda st: (
                (w := wt(st, remaining)) is not None
                and w["unstaged"] == 0
                and w["base"]["ahead"] == 1
            ),
            "commit seen",
            since=n,
        )

        # ...switches branch in the main worktree.
        n = len(s.states)
        git(repo, "switch", "-q", "-c", "other")
        await s.wait_for_state(
            lambda st: wt(st, repo)["branch"] == "other",
            "branch switch",
            since=n,  # type: ignore[index]
        )

        # ...detaches HEAD in the linked worktree.
        n = len(s.states)
        git(remaining, "switch", "-q", "--detach")
        await s.wait_for_state(
            lambda st: (
                (w := wt(st, remaining)) is not None and w["detached"] and w["branch"] is None
            ),
            "detached",
            since=n,
        )


async def test_deleted_worktree_folder_becomes_prunable_with_a_diagnostic(
    repo: Path, tmp_path: Path
) -> None:
    gone = add_worktree(repo, tmp_path / "tasks-app-gone", "feature/gone")
    admin = Path(git(gone, "rev-parse", "--absolute-git-dir"))
    async with open_session([repo]) as s:
        await s.wait_for_state(lambda st: len(st["worktrees"]) == 2, "initial state")
        n = len(s.states)
        shutil.rmtree(gone)
        await s.wait_for_state(
            lambda st: (w := wt(st, gone)) is not None and w["prunable"], "prunable", since=n
        )
        diags = await s.wait_for_diagnostics(
            admin / "HEAD", lambda d: any(x.code == "prunable" for x in d), "prunable diagnostic"
        )
        assert "wtls prune" in diags[0].message
        # Pruning from a terminal clears it.
        n = len(s.states)
        git(repo, "worktree", "prune")
        await s.wait_for_state(lambda st: wt(st, gone) is None, "pruned", since=n)
        await s.wait_for_diagnostics(admin / "HEAD", lambda d: not d, "diagnostic cleared")
