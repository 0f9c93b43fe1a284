"""Ports, setup commands and the open command of a new worktree."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import socket
import subprocess
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from wtls.errors import Refused
from wtls.lifecycle.common import (
    _say,
)
from wtls.lifecycle.names import slugify
from wtls.lifecycle.results import (
    _REPO_POINTING_VARS,
    PORT_RANGE,
    Callback,
    CommandRun,
    SetupResult,
)
from wtls.safety import printable


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def assign_ports(names: Sequence[str], worktree: Path, taken: Iterable[int] = ()) -> dict[str, int]:
    """A free port per name, stable for the same worktree path (hash, then probe upward)."""
    low, high = PORT_RANGE
    span = high - low
    used = set(taken)
    ports: dict[str, int] = {}
    for name in names:
        digest = hashlib.sha256(f"{worktree}\0{name}".encode()).digest()
        first = int.from_bytes(digest[:4], "big") % span
        for step in range(span):
            port = low + (first + step) % span
            if port in used or not _port_free(port):
                continue
            ports[name] = port
            used.add(port)
            break
        else:  # pragma: no cover - 25,000 busy ports
            raise Refused(f"no free port left in {low}-{high} for {name}")
    return ports


def _commands_text(commands: Sequence[Sequence[str]]) -> str:
    """Setup commands as shell-quoted text on one line, control characters escaped."""
    return printable("; ".join(shlex.join(c) for c in commands) or "none", keep_newlines=False)


def compose_project_name(worktree: Path) -> str:
    """A docker compose project name of its own for ``worktree``, stable for its path.

    Compose wants lowercase letters, digits, ``-`` and ``_``, starting with a letter or digit;
    the folder's name keeps it readable, a hash of the whole path keeps two worktrees with the
    same folder name (in different places) apart.
    """
    slug = re.sub(r"[^a-z0-9_-]+", "-", slugify(worktree.name)).strip("-_")[:40] or "worktree"
    digest = hashlib.sha256(os.fsencode(str(worktree))).hexdigest()[:8]
    return f"{slug}-{digest}"


def _setup_env(worktree: Path, branch: str | None, ports: Mapping[str, int]) -> dict[str, str]:
    """The environment of setup and teardown commands: the worktree, its branch and ports."""
    env = {k: v for k, v in os.environ.items() if k not in _REPO_POINTING_VARS}
    env.update({k: str(v) for k, v in ports.items()})
    env["WTLS_WORKTREE"] = str(worktree)
    env["WTLS_BRANCH"] = branch or ""
    env["COMPOSE_PROJECT_NAME"] = compose_project_name(worktree)
    return env


def run_setup(
    worktree: Path,
    commands: Sequence[Sequence[str]],
    *,
    env: Mapping[str, str],
    on_output: Callback = None,
    timeout: float = 1800.0,
    kind: str = "setup",
) -> SetupResult:
    """Run setup commands one by one in ``worktree`` (no shell), streaming their output.

    Stops at the first failure and says which command failed; nothing is undone. ``kind``
    names them in messages (``setup``, ``teardown``).
    """
    after = (
        f" The worktree {worktree} is kept: fix the problem and run the setup there by hand."
        if kind == "setup"
        else ""
    )
    runs: list[CommandRun] = []
    for argv in commands:
        text = shlex.join(argv)
        _say(on_output, f"$ {text}")
        try:
            proc = subprocess.Popen(
                list(argv),
                cwd=str(worktree),
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            runs.append(CommandRun(command=text, exit_code=None, error=str(exc)))
            return SetupResult(
                ran=True,
                ok=False,
                commands=tuple(runs),
                message=f"{kind} command `{text}` could not start: {exc}.{after}",
            )
        timed_out = threading.Event()

        def kill(p: subprocess.Popen[bytes] = proc, flag: threading.Event = timed_out) -> None:
            flag.set()
            p.kill()

        watchdog = threading.Timer(timeout, kill)
        watchdog.daemon = True
        watchdog.start()
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                _say(on_output, raw.decode("utf-8", "replace").rstrip("\r\n"))
            code = proc.wait()
        finally:
            watchdog.cancel()
        if timed_out.is_set():
            runs.append(
                CommandRun(command=text, exit_code=code, error=f"timed out after {timeout:g} s")
            )
        else:
            runs.append(CommandRun(command=text, exit_code=code))
        if code != 0 or timed_out.is_set():
            why = f"timed out after {timeout:g} s" if timed_out.is_set() else f"exit status {code}"
            return SetupResult(
                ran=True,
                ok=False,
                commands=tuple(runs),
                message=f"{kind} command `{text}` failed ({why}).{after}",
            )
    return SetupResult(ran=True, ok=True, commands=tuple(runs))


def open_command_argv(template: str, path: Path, branch: str | None = None) -> list[str]:
    """The open command for ``path``: ``template`` split like a shell would, placeholders filled.

    ``{path}``, ``{uri}`` and ``{branch}`` are replaced inside each argument (never re-split,
    never given to a shell); without any placeholder the path is appended.
    """
    try:
        argv = shlex.split(template)
    except ValueError as exc:
        raise Refused(f"the open command {template!r} cannot be split: {exc}") from exc
    if not argv:
        raise Refused("the open command is empty")
    values = {"{path}": str(path), "{uri}": path.as_uri(), "{branch}": branch or ""}
    if not any(key in arg for arg in argv for key in values):
        argv.append(str(path))
    out = []
    for arg in argv:
        for key, value in values.items():
            arg = arg.replace(key, value)
        out.append(arg)
    return out


def run_open_command(
    template: str, path: Path, *, branch: str | None = None, wait: bool
) -> int | None:
    """Run the open command for ``path``.

    ``wait=True`` (the CLI) runs it in the foreground on the terminal and returns its exit
    status; ``wait=False`` (the server, whose stdout is the LSP channel) starts it detached with
    no stdio and returns None. Raises :class:`Refused` when the command cannot start.
    """
    argv = open_command_argv(template, path, branch)
    try:
        if wait:
            return subprocess.run(argv, check=False).returncode
        subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        raise Refused(f"could not run the open command `{shlex.join(argv)}`: {exc}") from exc
    return None
