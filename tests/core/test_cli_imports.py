"""`wtls check` without an engine loads only what it runs (issue 12: the CLI's start-up is most
of its time). Each case runs the real CLI in a fresh interpreter on a real repository and lists
the modules it loaded; nothing is timed."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.gitutil import add_worktree, commit_all, git, make_repo

#: Runs ``wtls ARGV`` in this interpreter, then prints the loaded modules as JSON on stderr.
_PROBE = """
import json, sys
from wtls.cli import main
code = main(sys.argv[1:])
sys.stdout.flush()
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""

#: What `wtls check` without tests never runs: the test machinery, the lifecycle commands, the
#: forwarder and engine (asyncio), the language server.
_NOT_FOR_CHECK = (
    "wtls.semantic",
    "wtls.scratch",
    "wtls.testrun",
    "wtls.lifecycle",
    "wtls.land",
    "wtls.cli.agent_commands",
    "wtls.cli.daemon_commands",
    "wtls.daemon.client",
    "wtls.daemon.forwarder",
    "wtls.daemon.engine",
    "wtls.server",
    "asyncio",
    "pygls",
    "lsprotocol",
)


def _run(cwd: Path, *argv: str) -> tuple[subprocess.CompletedProcess[str], int, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    return proc, report["code"], set(report["modules"])


def _loaded(modules: set[str], roots: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == r or m.startswith(r + ".") for r in roots))


def _conflicting(repo: Path, tmp_path: Path) -> Path:
    """``repo`` with worktree B committing a change to cli.py that main's uncommitted edit
    conflicts with."""
    b = add_worktree(repo, tmp_path / "b", "feature")
    text = (repo / "cli.py").read_text()
    (b / "cli.py").write_text(text.replace("usage:", "Usage (B):"))
    commit_all(b, "B rewords the usage")
    (repo / "cli.py").write_text(text.replace("usage:", "Usage (main):"))
    return b


def test_check_json_loads_no_test_lifecycle_or_server_module(repo: Path, tmp_path: Path) -> None:
    _conflicting(repo, tmp_path)
    proc, code, modules = _run(repo, "check", "--json", "--no-daemon")
    assert code == 1, proc.stderr
    payload = json.loads(proc.stdout)
    assert [c["files"][0]["path"] for c in payload["conflicts"]] == ["cli.py"]
    assert _loaded(modules, _NOT_FOR_CHECK) == []


def test_check_text_with_order_loads_none_of_them_either(repo: Path, tmp_path: Path) -> None:
    _conflicting(repo, tmp_path)
    proc, code, modules = _run(repo, "check", "--order", "--no-daemon")
    assert code == 1, proc.stderr
    assert "CONFLICT" in proc.stdout and "Merge order" in proc.stdout
    assert _loaded(modules, _NOT_FOR_CHECK) == []


def test_a_configured_test_is_still_reported_as_not_run(repo: Path, tmp_path: Path) -> None:
    """The cut keeps the answer: a `test` in .wtls.toml without --trust is reported (exit 0:
    no conflict, and nothing failed)."""
    (repo / ".wtls.toml").write_text('test = "python -c pass"\n')
    git(repo, "add", ".wtls.toml")
    git(repo, "commit", "-q", "-m", "a test command")
    proc, code, _ = _run(repo, "check", "--no-daemon")
    assert code == 0, proc.stderr
    assert "Tests not run: the `test` command of" in proc.stdout
    assert "was not run: the repository's config is not trusted" in proc.stderr


def _handlers(parser: argparse.ArgumentParser, prefix: str = "") -> Iterator[tuple[str, object]]:
    """Every (command line, handler) of ``parser`` and its subcommands."""
    handler = parser.get_default("handler")
    if handler is not None:
        yield prefix, handler
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _handlers(sub, f"{prefix} {name}".strip())


def test_every_named_handler_exists() -> None:
    """The parser names handlers instead of importing them: each name must resolve."""
    from wtls.cli.parser import build_parser

    found = dict(_handlers(build_parser()))
    assert {"serve", "check", "agent set", "hook claude", "daemon stop", "engine"} <= set(found)
    for line, handler in found.items():
        target = getattr(importlib.import_module(handler.module), handler.name)  # type: ignore[attr-defined]
        assert callable(target), line


def _git_logging(tmp_path: Path) -> dict[str, str]:
    """An environment whose `git` logs each command line to a file, then runs the real git."""
    real = shutil.which("git")
    assert real is not None
    folder = tmp_path / "bin"
    folder.mkdir()
    wrapper = folder / "git"
    wrapper.write_text(
        f'#!/bin/sh\nprintf \'%s\\n\' "$*" >> {tmp_path / "git.log"}\nexec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def test_check_alone_runs_no_git_status_when_every_worktree_snapshots(
    repo: Path, tmp_path: Path
) -> None:
    """Its snapshots read every worktree's files: a `git status` of each first was the same
    work again (about as much git time as the snapshots)."""
    _conflicting(repo, tmp_path)
    env = _git_logging(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "wtls", "check", "--json", "--no-daemon"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["conflicts"]
    commands = (tmp_path / "git.log").read_text().splitlines()
    assert [c for c in commands if c.startswith("status")] == []
    assert sum(c.startswith("add -A") for c in commands) == 2  # one snapshot per worktree


def test_a_worktree_git_cannot_read_is_still_reported_broken(repo: Path, tmp_path: Path) -> None:
    """Without `git status`, the snapshot is what fails; check then reads the full state, whose
    `git status` says why, as it always did (here: a submodule whose git dir was deleted)."""
    sub = make_repo(tmp_path / "upstream", name="sub", files={"s.txt": "s\n"})
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "sub")
    git(repo, "commit", "-q", "-m", "a submodule")
    b = add_worktree(repo, tmp_path / "b", "feature")
    git(b, "-c", "protocol.file.allow=always", "submodule", "update", "-q", "--init")
    modules = Path(git(b, "rev-parse", "--git-dir")) / "modules"
    shutil.rmtree(modules)
    proc, code, _ = _run(repo, "check", "--json", "--no-daemon")
    assert code == 0, proc.stderr
    skipped = json.loads(proc.stdout)["skipped"]
    assert [s["path"] for s in skipped] == [str(b)]
    assert skipped[0]["reason"].startswith("it is broken: git status --porcelain=v2 failed:")
