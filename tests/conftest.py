"""Shared fixtures: every test runs git under a hermetic HOME with fixed identity and dates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
