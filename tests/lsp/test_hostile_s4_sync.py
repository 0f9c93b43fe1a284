"""Hostile review (issue 15): the shared engine's sync cookie never makes or writes anything
outside the git dir, whatever a user put at ``<common dir>/wtls``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.lsp.test_shared_repositories import Recorder
from wtls.engine import EngineSettings
from wtls.server.shared import SharedRepositories
from wtls.worktrees import discover


@pytest.mark.parametrize("kind", ["link", "file"])
async def test_sync_makes_nothing_through_a_link_or_file_at_the_wtls_folder(
    repo: Path, tmp_path: Path, kind: str
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    wtls_dir = repo / ".git" / "wtls"
    if kind == "link":
        os.symlink(elsewhere, wtls_dir)
    else:
        wtls_dir.write_text("mine\n")
    registry = SharedRepositories()
    session = await registry.join(
        discover(repo), EngineSettings(), Recorder(), [repo.resolve()], debounce_ms=30
    )
    try:
        assert not await session.shared.sync()
        # Neither the first open (which makes the folder) nor sync made `sync` through it.
        assert list(elsewhere.iterdir()) == []
        if kind == "file":
            assert wtls_dir.read_text() == "mine\n"
    finally:
        registry.close_all()
