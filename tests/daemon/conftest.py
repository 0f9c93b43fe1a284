"""Fixtures for the engine tests: each test gets its own runtime folder, engines killed after."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.support import kill_engines


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private runtime folder (short path: AF_UNIX; under /tmp itself, so that a test can
    open it to another user), set as WTLS_RUNTIME_DIR for this process and its children."""
    folder = Path(tempfile.mkdtemp(prefix="wtls-rt-"))
    monkeypatch.setenv("WTLS_RUNTIME_DIR", str(folder))
    monkeypatch.setenv("WTLS_ENGINE_IDLE_TIMEOUT", "60")
    for var in ("WTLS_TEST_ENGINE_VERSION", "WTLS_TEST_ENGINE_BUILD"):
        monkeypatch.delenv(var, raising=False)
    try:
        yield folder
    finally:
        kill_engines(folder)
        shutil.rmtree(folder, ignore_errors=True)
