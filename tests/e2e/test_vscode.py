"""End-to-end test of the VS Code extension in a real workbench (code-server + headless Chromium).

Runs ``node vscode-client/e2e/run.mjs``, which builds the .vsix and runs the scenarios of
``vscode-client/e2e/scenarios/`` in order, each from scratch (its own repositories with worktrees,
its own code-server with the .vsix installed, its own browser context): status bar and Worktrees
view, Spawn Agent Worktree… with a new window and its agent terminal, a predicted conflict in the
Problems panel, the conflict-marker quick fix, a server restart, lock, remove, merge, a multi-root
workspace, Restricted Mode, Test Merges naming a semantic conflict, the process count of a real
``sleep`` and Stop Processes…, two windows on two worktrees served by one engine. A screenshot
per step goes under ``artifacts/e2e/<scenario>/``.

Skipped only when ``WTLS_E2E`` is unset and code-server is not installed; with ``WTLS_E2E=1``
(CI) a missing tool is a failure. ``.ci/vscode-setup.sh`` installs everything it needs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "vscode-client" / "e2e" / "run.mjs"
CODE_SERVER_VERSION = "4.100.3"
#: Generous: a run takes about four minutes; every wait inside the script is bounded.
TIMEOUT_S = 900
#: The script's report line of a failed scenario.
FAILED_SCENARIO = re.compile(r"^scenario FAIL (\S+) ")
# Read before the autouse fixture swaps HOME for a hermetic one.
REAL_HOME = Path.home()


def find_code_server() -> Path | None:
    """code-server as the e2e script finds it: $CODE_SERVER, the setup script's cache, PATH."""
    if env := os.environ.get("CODE_SERVER"):
        return Path(env) if Path(env).exists() else None
    cache = os.environ.get("WTLS_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or REAL_HOME / ".cache") / "wtls-ci"
    )
    cached = Path(cache) / f"code-server-{CODE_SERVER_VERSION}" / "node_modules" / ".bin"
    if (cached / "code-server").exists():
        return cached / "code-server"
    found = shutil.which("code-server")
    return Path(found) if found else None


CODE_SERVER = find_code_server()


@pytest.mark.skipif(
    not os.environ.get("WTLS_E2E") and CODE_SERVER is None,
    reason="code-server is not installed (run .ci/vscode-setup.sh; WTLS_E2E=1 requires it)",
)
def test_vscode_extension_end_to_end() -> None:
    """The extension works in a real VS Code: every step of the e2e script passes."""
    node = shutil.which("node")
    assert node is not None, "node is not installed"
    assert CODE_SERVER is not None and CODE_SERVER.exists(), (
        "code-server is not installed: run .ci/vscode-setup.sh"
    )
    env = dict(os.environ)
    # npm and the script's own throwaway dirs need the real HOME, not the hermetic test one.
    env["HOME"] = str(REAL_HOME)
    env["CODE_SERVER"] = str(CODE_SERVER)
    if "WTLS_SERVER" not in env:
        venv_wtls = Path(sys.executable).parent / "wtls"
        if venv_wtls.exists():
            env["WTLS_SERVER"] = str(venv_wtls)
    # A real browser driving a real workbench has timing flakes of its own (a toast that never
    # renders, a workspace page that loads empty): the scenarios that failed run once more (all
    # of them when the run failed before naming any), and the first attempt's failures are
    # reported as a warning, never hidden. A scenario that fails twice in a row fails the test.
    first_failure, failed = _run_scenarios(node, env)
    if first_failure is None:
        return
    warnings.warn(
        f"VS Code e2e failed once, retrying {', '.join(failed) or 'every scenario'}:\n"
        f"{first_failure}",
        stacklevel=1,
    )
    if failed:
        env["WTLS_E2E_ONLY"] = "^(" + "|".join(re.escape(name) for name in failed) + ")$"
    second_failure, _ = _run_scenarios(node, env)
    if second_failure is not None:
        pytest.fail(
            f"the VS Code e2e failed twice.\nfirst:\n{first_failure}\nsecond:\n{second_failure}"
        )


def _run_scenarios(node: str, env: dict[str, str]) -> tuple[str | None, list[str]]:
    """Run the e2e script once: (None, []) when every step passed, else why (its failing
    lines) and the names of the scenarios that failed (empty when it failed before any).
    """
    proc = subprocess.Popen(
        [node, str(SCRIPT)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        # SIGTERM lets the script stop code-server's process group before it exits.
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        return f"did not finish in {TIMEOUT_S} s:\n{out}", []
    print(out)
    lines = out.rstrip().splitlines()
    if proc.returncode != 0 or not lines or not lines[-1].endswith(" 0 failed"):
        marks = ("FAIL ", "scenario FAIL")
        failing = [line for line in lines if "FAILED" in line or line.startswith(marks)]
        failing = failing or lines[-40:]
        scenarios = [m.group(1) for line in lines if (m := FAILED_SCENARIO.match(line))]
        return f"exit {proc.returncode}:\n" + "\n".join(failing), scenarios
    return None, []
