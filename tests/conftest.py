"""Shared fixtures: every test runs git under a hermetic HOME with fixed identity and dates."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.support import kill_engines
from tests.gitutil import make_repo

HERMETIC_GITCONFIG = """\
[user]
\tname = wtls test
\temail = test@wtls.invalid
[init]
\tdefaultBranch = main
[protocol "file"]
\tallow = always
[advice]
\tdetachedHead = false
[commit]
\tgpgsign = false
"""


@pytest.fixture(scope="session", autouse=True)
def engine_runtime() -> Iterator[Path]:
    """Every `wtls serve` of the test session reaches engines in a runtime folder of its own
    (never the user's), engines leave 3 s after their last session, and any still running at
    the end are stopped. Tests of the engine itself get a folder per test (tests/daemon)."""
    folder = Path(tempfile.mkdtemp(prefix="wtls-test-rt-"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WTLS_RUNTIME_DIR", str(folder))
        patch.setenv("WTLS_ENGINE_IDLE_TIMEOUT", "3")
        try:
            yield folder
        finally:
            kill_engines(folder)
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def hermetic_git(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A private HOME and git config so the machine's own config never leaks into tests."""
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(HERMETIC_GITCONFIG)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
    yield home


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The seed's tasks-app: a repository on main with cli.py and one commit."""
    return make_repo(tmp_path)
