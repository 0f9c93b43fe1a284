"""Issue 15 through a real ``wtls serve``: processes, teardown trust and prune --merged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pygls.exceptions import JsonRpcException

from tests.gitutil import add_worktree, commit_all, git
from tests.lsp.harness import open_session
from wtls.errors import REFUSED_CODE

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/cwd").exists(), reason="process detection is tested on Linux"
)


async def test_remove_refuses_a_busy_worktree_lists_it_in_the_dry_run_and_kills(
    repo: Path, tmp_path: Path
) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature/a")
    sleeper = subprocess.Popen(["sleep", "300"], cwd=wt)
    try:
        async with open_session([repo]) as s:
            dry = await s.command(
                "wtls.remove", {"worktree": "feature/a", "dryRun": True, "force": True}
            )
            assert dry["processes"] == [
                {"pid": sleeper.pid, "command": "sleep 300", "reason": "cwd", "path": str(wt)}
            ]
            with pytest.raises(JsonRpcException) as info:
                await s.command("wtls.remove", {"worktree": "feature/a"})
            assert info.value.code == REFUSED_CODE
            assert f"pid {sleeper.pid} (sleep 300)" in str(info.value)
            assert wt.is_dir()
            done = await s.command("wtls.remove", {"worktree": "feature/a", "kill": True})
            assert done["removed"] is True
            assert [p["pid"] for p in done["processes"]] == [sleeper.pid]
        assert sleeper.wait(timeout=10) is not None
        assert not wt.exists()
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
        sleeper.wait(timeout=30)


@pytest.mark.parametrize("trusted", [True, False])
async def test_teardown_follows_workspace_trust(repo: Path, tmp_path: Path, trusted: bool) -> None:
    log = tmp_path / "teardown.log"
    writer = f"open({str(log)!r}, 'w').write('ran')"
    (repo / ".wtls.toml").write_text(f"teardown = [{json.dumps([sys.executable, '-c', writer])}]\n")
    commit_all(repo, "recipe")
    wt = add_worktree(repo, tmp_path / "wt", "feature/a")
    async with open_session([repo], trusted=trusted) as s:
        result = await s.command("wtls.remove", {"worktree": "feature/a"})
    assert result["removed"] is True
    assert result["teardown"]["ran"] is trusted
    assert log.exists() is trusted
    if not trusted:
        assert "not trusted" in result["teardown"]["skipped"]
    assert not wt.exists()


async def test_prune_merged_through_the_server(repo: Path, tmp_path: Path) -> None:
    wt = add_worktree(repo, tmp_path / "wt", "feature/a")
    (wt / "a.txt").write_text("a\n")
    commit_all(wt, "a")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge a", "feature/a")
    async with open_session([repo]) as s:
        dry = await s.command("wtls.prune", {"merged": True, "dryRun": True})
        assert [r["path"] for r in dry["removed"]] == [str(wt)] and dry["dryRun"] is True
        assert wt.is_dir()
        with pytest.raises(JsonRpcException) as info:
            await s.command("wtls.prune", {"merged": True, "olderThan": "soon"})
        assert info.value.code == REFUSED_CODE
        done = await s.command("wtls.prune", {"merged": True})
        assert [r["branch"] for r in done["removed"]] == ["feature/a"]
        assert done["kept"] == [{"path": str(repo), "reason": "the main worktree"}]
    assert not wt.exists()
    assert "feature/a" not in git(repo, "branch", "--list")
