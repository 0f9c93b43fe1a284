"""Lifecycle commands through a real ``wtls serve`` over stdio, as an editor sends them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pygls.exceptions import JsonRpcException

from tests.core.lifecycle_util import repo_snapshot
from tests.gitutil import add_worktree, commit_all, git
from tests.lsp.harness import Session, open_session
from wtls.errors import REFUSED_CODE
from wtls.server.rpc import INVALID_PARAMS


def paths(state: dict[str, Any]) -> list[str]:
    return [w["path"] for w in state["worktrees"]]


def main_operation(state: dict[str, Any]) -> str | None:
    return next((w["operation"] for w in state["worktrees"] if w["isMain"]), None)


async def refused(s: Session, name: str, args: dict[str, Any]) -> str:
    with pytest.raises(JsonRpcException) as info:
        await s.command(name, args)
    assert info.value.code == REFUSED_CODE, info.value
    return str(info.value)


async def invalid(s: Session, name: str, args: Any) -> str:
    """The message of the InvalidParams error ``name`` answers to ``args``."""
    with pytest.raises(JsonRpcException) as info:
        await s.command(name, args)
    assert info.value.code == INVALID_PARAMS, info.value
    assert "Traceback" not in str(info.value)
    return str(info.value)


async def test_bad_arguments_are_invalid_params_naming_the_field(
    repo: Path, tmp_path: Path
) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature/wt")
    (wt / "cli.py").write_text("changed\n")
    async with open_session([repo]) as s:
        await s.wait_for_state(lambda st: len(st["worktrees"]) == 2, "initial state")
        before = repo_snapshot(repo)
        assert "wtls.spawn: argument 'name' is missing" in await invalid(s, "wtls.spawn", {})
        assert "argument 'name' must be a string, got 3" in await invalid(
            s, "wtls.spawn", {"name": 3}
        )
        message = await invalid(s, "wtls.remove", {"worktree": "feature/wt", "force": "yes"})
        assert "wtls.remove: argument 'force' must be a boolean, got \"yes\"" in message
        # A misspelt flag is refused, never ignored: dry_run (not dryRun) would remove for real.
        message = await invalid(
            s, "wtls.remove", {"worktree": "feature/wt", "force": True, "dry_run": True}
        )
        assert "argument 'dry_run' is not an argument of this command" in message
        assert "dryRun" in message
        assert "argument 'uri' must be a path or a file:// URI, got 5" in await invalid(
            s, "wtls.check", {"uri": 5}
        )
        assert "argument 'newPath' is missing" in await invalid(
            s, "wtls.move", {"worktree": str(wt)}
        )
        assert "takes one object argument" in await invalid(s, "wtls.lock", ["feature/wt"])
        assert "argument 'paths' must be a list" in await invalid(
            s, "wtls.repair", {"paths": str(wt)}
        )
        assert repo_snapshot(repo) == before and wt.is_dir()


async def test_a_refusal_carries_its_fix_in_the_error_data(repo: Path, tmp_path: Path) -> None:
    """The editor gets what would get past a refusal as data (a button), not a CLI flag."""
    wt = add_worktree(repo, tmp_path / "wt", "feature/wt")
    (wt / "cli.py").write_text("changed\n")
    async with open_session([repo]) as s:
        await s.wait_for_state(lambda st: len(st["worktrees"]) == 2, "initial state")
        with pytest.raises(JsonRpcException) as info:
            await s.command("wtls.remove", {"worktree": "feature/wt"})
        assert info.value.code == REFUSED_CODE
        remove_anyway = {"action": "remove", "option": "force", "label": "Remove anyway"}
        assert info.value.data == {
            "kind": "refused",
            "fix": remove_anyway,
            "fixes": [remove_anyway],
        }
        assert "--force" not in str(info.value) and "“Remove anyway”" in str(info.value)
        git(repo, "worktree", "lock", "--reason", "agent", str(wt))
        with pytest.raises(JsonRpcException) as locked:
            await s.command("wtls.remove", {"worktree": "feature/wt"})
        assert [f["action"] for f in locked.value.data["fixes"]] == ["unlock", "remove"]
        assert locked.value.data["fix"] == {"action": "unlock", "option": None, "label": "Unlock"}
        assert wt.is_dir()


async def test_spawn_announces_the_new_worktree(repo: Path) -> None:
    (repo / ".wtls.toml").write_text(
        'ports = ["PORT"]\nsetup = ["sh -c \\"echo installing; touch installed\\""]\n'
    )
    (repo / ".gitignore").write_text("tasks.json\ninstalled\n")
    commit_all(repo, "recipe")
    async with open_session([repo]) as s:
        await s.wait_for_state(lambda st: paths(st) == [str(repo)], "initial state")
        check = await s.command("wtls.validateName", {"name": "Fix Login"})
        assert check["ok"] is True and check["branch"] == "agent/fix-login"
        result = await s.command(
            "wtls.spawn", {"name": "Fix Login", "prompt": "Fix it.", "trusted": True}
        )
        path = repo.parent / "tasks-app-fix-login"
        assert result["path"] == str(path)
        assert result["uri"] == path.as_uri()
        assert result["branch"] == "agent/fix-login"
        assert result["promptFile"] == str(path / ".wtls" / "task.md")
        assert result["setup"]["ok"] is True and (path / "installed").exists()
        port = result["ports"]["PORT"]

        def announced(st: dict[str, Any]) -> bool:
            return any(
                w["path"] == str(path) and w["ports"] == {"PORT": port} for w in st["worktrees"]
            )

        state = await s.wait_for_state(announced, "the spawned worktree with its port")
        new = next(w for w in state["worktrees"] if w["path"] == str(path))
        assert new["branch"] == "agent/fix-login"
        # Work-done progress was reported while spawning.
        reports = [r for rs in s.client.progress_reports.values() for r in rs]
        messages = [getattr(r, "message", None) or getattr(r, "title", "") for r in reports]
        assert any("spawning Fix Login" in m for m in messages)
        assert any("creating" in m for m in messages)
        taken = await s.command("wtls.validateName", {"name": "Fix Login"})
        assert taken["ok"] is False and "already checked out" in taken["message"]


async def test_untrusted_spawn_skips_setup(repo: Path) -> None:
    (repo / ".wtls.toml").write_text('setup = ["touch ran"]\n')
    commit_all(repo, "recipe")
    async with open_session([repo], trusted=False) as s:
        result = await s.command("wtls.spawn", {"name": "u"})
        assert result["setup"]["ran"] is False and "not trusted" in result["setup"]["skipped"]
        assert not (repo.parent / "tasks-app-u" / "ran").exists()


async def test_sparse_spawn_through_the_server(repo: Path) -> None:
    for folder in ("app", "docs"):
        (repo / folder).mkdir()
        (repo / folder / "x.txt").write_text(f"{folder}\n")
    commit_all(repo, "folders")
    async with open_session([repo]) as s:
        await s.wait_for_state(lambda st: len(st["worktrees"]) == 1, "initial state")
        before = repo_snapshot(repo)
        assert "points outside the worktree" in await refused(
            s, "wtls.spawn", {"name": "s", "sparse": ["app", "../x"]}
        )
        assert "argument 'sparse' must be a list of strings" in await invalid(
            s, "wtls.spawn", {"name": "s", "sparse": "app"}
        )
        assert repo_snapshot(repo) == before
        result = await s.command("wtls.spawn", {"name": "s", "sparse": ["app"]})
        assert result["sparse"] == ["app"]
        wt = Path(result["path"])
        assert (wt / "app" / "x.txt").is_file() and not (wt / "docs").exists()


async def test_refusals_are_error_code_32001_and_change_nothing(repo: Path) -> None:
    add_worktree(repo, repo.parent / "taken", "feature/taken")
    async with open_session([repo]) as s:
        await s.wait_for_state(lambda st: len(st["worktrees"]) == 2, "initial state")
        before = repo_snapshot(repo)
        message = await refused(s, "wtls.spawn", {"name": "feature/taken"})
        assert "already checked out in worktree" in message
        assert "cannot start with '-'" in await refused(s, "wtls.spawn", {"name": "-b"})
        assert "main worktree" in await refused(s, "wtls.remove", {"worktree": str(repo)})
        assert "no worktree matches" in await refused(s, "wtls.merge", {"worktree": "nope"})
        assert repo_snapshot(repo) == before


async def test_merge_remove_prune_lock_through_the_server(repo: Path, tmp_path: Path) -> None:
    a = add_worktree(repo, tmp_path / "a", "feature/a")
    (a / "a.txt").write_text("a\n")
    commit_all(a, "a")
    b = add_worktree(repo, tmp_path / "b", "feature/b")
    (b / "cli.py").write_text("b\n")
    (b / "new.txt").write_text("untracked\n")
    async with open_session([repo]) as s:
        await s.wait_for_state(lambda st: len(st["worktrees"]) == 3, "initial state")
        listing = await s.command("wtls.open", {})
        assert [w["path"] for w in listing["worktrees"]] == [str(repo), str(a), str(b)]
        chosen = await s.command("wtls.open", {"worktree": "feature/a"})
        assert chosen["path"] == str(a) and chosen["uri"] == a.as_uri()

        locked = await s.command("wtls.lock", {"worktree": b.as_uri(), "reason": "agent"})
        assert locked == {"path": str(b), "locked": True, "reason": "agent"}
        await s.wait_for_state(
            lambda st: any(w["path"] == str(b) and w["locked"] for w in st["worktrees"]),
            "the lock announced",
        )
        assert (await s.command("wtls.unlock", {"worktree": str(b)}))["locked"] is False

        mark = len(s.states)
        merged = await s.command("wtls.merge", {"worktree": "feature/a", "remove": True})
        assert merged["merged"] and merged["removed"] and merged["branchDeleted"]
        await s.wait_for_state(
            lambda st: str(repo) in paths(st) and str(a) not in paths(st),
            "the merged worktree gone",
            since=mark,
        )

        assert "uncommitted changes" in await refused(s, "wtls.remove", {"worktree": "feature/b"})
        dry = await s.command(
            "wtls.remove", {"worktree": "feature/b", "force": True, "dryRun": True}
        )
        assert sorted(dry["wouldBackUp"]) == ["cli.py", "new.txt"] and b.exists()
        removed = await s.command("wtls.remove", {"worktree": "feature/b", "force": True})
        assert removed["removed"] is True
        ref = removed["backupRef"]
        assert ref.startswith("refs/wtls/backup/feature/b-")
        assert git(repo, "rev-parse", "--verify", ref)
        assert f" restore {ref}" in removed["restoreCommand"]
        assert git(repo, "show", f"{ref}:cli.py") == "b"
        assert git(repo, "show", f"{ref}:new.txt") == "untracked"
        await s.wait_for_state(lambda st: paths(st) == [str(repo)], "only main left")

        pruned = await s.command("wtls.prune", {"dryRun": True})
        assert pruned == {"pruned": [], "dryRun": True, "kept": [], "recovered": []}


async def test_merge_conflict_through_the_server(repo: Path, tmp_path: Path) -> None:
    a = add_worktree(repo, tmp_path / "a", "feature/a")
    (a / "cli.py").write_text("agent\n")
    commit_all(a, "a")
    (repo / "cli.py").write_text("main\n")
    commit_all(repo, "main")
    async with open_session([repo]) as s:
        result = await s.command("wtls.merge", {"worktree": str(a)})
        assert result["merged"] is False and result["conflicts"] == ["cli.py"]
        await s.wait_for_state(lambda st: main_operation(st) == "merge", "the merge in progress")
        mark = len(s.states)
        aborted = await s.command("wtls.merge", {"worktree": "feature/a", "abort": True})
        assert aborted["aborted"] is True
        await s.wait_for_state(
            lambda st: main_operation(st) is None and bool(st["worktrees"]),
            "the merge aborted",
            since=mark,
        )


async def test_a_client_that_shows_results_itself_gets_one_message_per_action(
    repo: Path, tmp_path: Path
) -> None:
    """`announce: false` keeps the server quiet about a result's problems; by default it shows."""
    (repo / ".gitignore").write_text("build/\n")
    commit_all(repo, "ignore build")
    for name, announce in (("quiet", False), ("loud", None)):
        wt = add_worktree(repo, tmp_path / name, f"feature/{name}")
        (wt / f"{name}.txt").write_text("x\n")
        commit_all(wt, name)
        (wt / "build" / "lib").mkdir(parents=True)
        git(wt / "build" / "lib", "init", "-q")  # the removal after the merge is refused
        async with open_session([repo]) as s:
            before = len(s.client.messages)
            args: dict[str, Any] = {"worktree": f"feature/{name}", "remove": True}
            if announce is not None:
                args["announce"] = announce
            result = await s.command("wtls.merge", args)
            assert result["merged"] is True and result["removed"] is False
            assert result["problems"] and "not removed" in result["problems"][0]
            if announce is False:
                await s.request_worktrees()  # a round trip: a message would have come first
                assert len(s.client.messages) == before
            else:
                await s.wait_until(
                    lambda n=before: len(s.client.messages) > n,  # type: ignore[misc]
                    "the problem shown",
                )
