"""Running a project's test command: one process group, a timeout, a bounded output tail.

:func:`run_command` runs an argument list (never a shell) in its own session (so its own process
group); on timeout the whole group gets SIGTERM, then SIGKILL after a short grace; after a
normal exit whatever the command left running in its group is killed too, so no orphan stays.
Output (stdout and stderr together) goes to a temporary file and only its tail is kept.
:func:`parse_failures` finds failing tests in pytest, unittest, jest and go test output (and a
plain Python traceback), best effort. :class:`ResultCache` keeps results by (tree, command) in
``<common>/wtls/test-cache.json`` (bounded), so an unchanged tree is never tested twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

#: Default timeout of one test run (seconds).
DEFAULT_TIMEOUT = 600.0
#: Bytes of output kept (the tail).
OUTPUT_TAIL = 16 * 1024
#: Seconds between SIGTERM and SIGKILL of a timed-out group.
KILL_GRACE = 3.0
#: Results kept in the cache file.
CACHE_ENTRIES = 512
#: Failures parsed from one run's output at most.
MAX_FAILURES = 50


@dataclass(frozen=True, kw_only=True)
class Failure:
    """One failing test: its name and, when the output says, the file (repository-relative)
    and 1-based line."""

    name: str
    path: str | None = None
    line: int | None = None


@dataclass(frozen=True, kw_only=True)
class RunOutcome:
    """One run of the test command: ``status`` is pass, fail, timeout or error."""

    status: str
    exit_code: int | None
    seconds: float
    output: str
    failures: tuple[Failure, ...] = ()


def _tail(f: IO[bytes], limit: int = OUTPUT_TAIL) -> str:
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(max(0, size - limit))
    data = f.read()
    text = data.decode("utf-8", "replace")
    if size > limit:
        text = text.split("\n", 1)[-1] if "\n" in text else text
        text = f"[... {size - len(data)} bytes before this cut ...]\n" + text
    return text


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_command(
    argv: Sequence[str],
    cwd: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
    cancel: threading.Event | None = None,
) -> RunOutcome:
    """Run ``argv`` in ``cwd`` in its own process group; kill the group on timeout.

    ``cancel`` set while it runs kills the group too (status ``error``, output says why).
    """
    start = time.monotonic()
    with tempfile.TemporaryFile(prefix="wtls-test-") as out:
        try:
            proc = subprocess.Popen(
                list(argv),
                cwd=str(cwd),
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            return RunOutcome(
                status="error",
                exit_code=None,
                seconds=round(time.monotonic() - start, 3),
                output=f"could not start `{' '.join(argv)}`: {exc}",
            )
        pgid = proc.pid  # start_new_session: the child leads its own group
        timed_out = cancelled = False
        deadline = time.monotonic() + timeout
        try:
            while True:
                step = deadline - time.monotonic()
                if cancel is not None:
                    step = min(step, 0.1)
                try:
                    code = proc.wait(timeout=max(step, 0))
                    break
                except subprocess.TimeoutExpired:
                    if cancel is not None and cancel.is_set():
                        cancelled = True
                    elif time.monotonic() < deadline:
                        continue
                    raise
        except subprocess.TimeoutExpired:
            timed_out = not cancelled
            _kill_group(pgid, signal.SIGTERM)
            try:
                code = proc.wait(timeout=KILL_GRACE)
            except subprocess.TimeoutExpired:
                _kill_group(pgid, signal.SIGKILL)
                code = proc.wait()
        finally:
            if proc.returncode is None:  # interrupted (KeyboardInterrupt): leave nothing
                _kill_group(pgid, signal.SIGKILL)
                proc.wait()
        # Whatever it started and left in its group (servers, watchers) goes too.
        if _group_alive(pgid):
            _kill_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + KILL_GRACE
            while _group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.02)
            _kill_group(pgid, signal.SIGKILL)
        seconds = round(time.monotonic() - start, 3)
        output = _tail(out)
    if cancelled:
        output += "\n[wtls: cancelled; its process group was killed]"
        return RunOutcome(status="error", exit_code=code, seconds=seconds, output=output)
    if timed_out:
        output += f"\n[wtls: timed out after {timeout:g} s; its process group was killed]"
        return RunOutcome(status="timeout", exit_code=code, seconds=seconds, output=output)
    return RunOutcome(
        status="pass" if code == 0 else "fail", exit_code=code, seconds=seconds, output=output
    )


# -- failure parsing --------------------------------------------------------------------------

_PYTEST_FAILED = re.compile(r"^(?:FAILED|ERROR) (?P<path>[^\s:]+\.py)::(?P<name>[^\s]+)", re.M)
_PYTEST_LOC = re.compile(r"^(?P<path>[^\s:]+\.py):(?P<line>\d+): ", re.M)
_UNITTEST_HEAD = re.compile(r"^(?:FAIL|ERROR): (?P<test>\w+) \((?P<where>[\w.]+)\)", re.M)
_PY_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)', re.M)
_JEST_HEAD = re.compile(r"^\s*● (?P<name>.+?)\s*$", re.M)
_JEST_AT = re.compile(r"\(?(?P<path>[^\s()]+\.[cm]?[jt]sx?):(?P<line>\d+):\d+\)?")
_GO_FAIL = re.compile(r"^\s*--- FAIL: (?P<name>\S+)", re.M)
_GO_LOC = re.compile(r"^\s+(?P<path>[\w./-]+_test\.go):(?P<line>\d+): ", re.M)
_TRACEBACK = "Traceback (most recent call last):"


def _relative(path: str, root: Path) -> str | None:
    """``path`` relative to the run's folder; None when it lies outside (a library)."""
    p = Path(path)
    if not p.is_absolute():
        p = root / p
    try:
        rel = Path(os.path.normpath(p)).relative_to(root)
    except ValueError:
        return None
    text = rel.as_posix()
    return None if text.startswith("..") else text


def _pytest(output: str, root: Path) -> list[Failure]:
    out: list[Failure] = []
    for m in _PYTEST_FAILED.finditer(output):
        path = _relative(m["path"], root)
        test = m["name"].split("[")[0].split("::")[-1]
        line = None
        for loc in _PYTEST_LOC.finditer(output):
            if loc["path"] == m["path"]:
                line = int(loc["line"])
        del test
        out.append(Failure(name=f"{m['path']}::{m['name']}", path=path, line=line))
    return out


def _unittest(output: str, root: Path) -> list[Failure]:
    out: list[Failure] = []
    heads = list(_UNITTEST_HEAD.finditer(output))
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(output)
        block = output[m.end() : end]
        path = line = None
        for frame in _PY_FRAME.finditer(block):
            rel = _relative(frame["path"], root)
            if rel is not None:
                path, line = rel, int(frame["line"])
                if frame["func"] == m["test"]:
                    break
        # Python 3.11+ prints the full id in the parentheses, older ones only the class.
        where = m["where"]
        name = where if where.endswith(f".{m['test']}") else f"{where}.{m['test']}"
        out.append(Failure(name=name, path=path, line=line))
    return out


def _jest(output: str, root: Path) -> list[Failure]:
    out: list[Failure] = []
    heads = [m for m in _JEST_HEAD.finditer(output) if "›" in m["name"]]
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(output)
        path = line = None
        for at in _JEST_AT.finditer(output[m.end() : end]):
            rel = _relative(at["path"], root)
            if rel is not None and "node_modules" not in rel:
                path, line = rel, int(at["line"])
                break
        out.append(Failure(name=m["name"], path=path, line=line))
    return out


def _go(output: str, root: Path) -> list[Failure]:
    out: list[Failure] = []
    locs = list(_GO_LOC.finditer(output))
    for m in _GO_FAIL.finditer(output):
        path = line = None
        before = [loc for loc in locs if loc.start() < m.start()]
        if before:
            path = _relative(before[-1]["path"], root) or before[-1]["path"]
            line = int(before[-1]["line"])
        out.append(Failure(name=m["name"], path=path, line=line))
    return out


def _traceback(output: str, root: Path) -> list[Failure]:
    """A plain Python traceback (a script, an import error): its last frame in the project."""
    at = output.rfind(_TRACEBACK)
    if at < 0:
        return []
    block = output[at:]
    path = line = None
    for frame in _PY_FRAME.finditer(block):
        rel = _relative(frame["path"], root)
        if rel is not None:
            path, line = rel, int(frame["line"])
    lines = [x for x in block.splitlines() if x and not x.startswith((" ", _TRACEBACK))]
    name = lines[0].strip() if lines else "Python traceback"
    return [Failure(name=name[:200], path=path, line=line)]


def parse_failures(output: str, root: Path) -> tuple[Failure, ...]:
    """Failing tests named in ``output`` of a run in ``root`` (best effort; paths relative)."""
    for parser in (_pytest, _unittest, _jest, _go, _traceback):
        found = parser(output, root)
        if found:
            seen: dict[tuple[str, str | None, int | None], Failure] = {}
            for f in found:
                seen.setdefault((f.name, f.path, f.line), f)
            return tuple(seen.values())[:MAX_FAILURES]
    return ()


# -- the result cache -------------------------------------------------------------------------


def cache_key(tree: str, command: Sequence[Sequence[str]], setup: Sequence[Sequence[str]]) -> str:
    """The cache key of a run: the tree, the command and the setup it ran after."""
    text = json.dumps([tree, [list(c) for c in command], [list(c) for c in setup]])
    return hashlib.sha256(text.encode()).hexdigest()


def outcome_to_json(outcome: RunOutcome) -> dict[str, Any]:
    """The cache's form of a result."""
    return {
        "status": outcome.status,
        "exitCode": outcome.exit_code,
        "seconds": outcome.seconds,
        "output": outcome.output,
        "failures": [{"name": f.name, "path": f.path, "line": f.line} for f in outcome.failures],
    }


def outcome_from_json(data: Any) -> RunOutcome | None:
    """A cached result, or None when the entry has the wrong shape."""
    try:
        return RunOutcome(
            status=str(data["status"]),
            exit_code=None if data["exitCode"] is None else int(data["exitCode"]),
            seconds=float(data["seconds"]),
            output=str(data["output"]),
            failures=tuple(
                Failure(
                    name=str(f["name"]),
                    path=None if f["path"] is None else str(f["path"]),
                    line=None if f["line"] is None else int(f["line"]),
                )
                for f in data["failures"]
            ),
        )
    except (KeyError, TypeError, ValueError):
        return None


class ResultCache:
    """Test results by key in a small JSON file (at most :data:`CACHE_ENTRIES`, oldest dropped).

    Only pass and fail are kept: a timeout or an error may be the machine's, not the tree's.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _locked(self) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(str(self.path) + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        entries = data.get("entries") if isinstance(data, dict) else None
        return entries if isinstance(entries, dict) else {}

    def get(self, key: str) -> RunOutcome | None:
        """The cached result for ``key``, or None."""
        with self._locked():
            return outcome_from_json(self._load().get(key))

    def put(self, key: str, outcome: RunOutcome) -> None:
        """Keep ``outcome`` (pass and fail only)."""
        if outcome.status not in ("pass", "fail"):
            return
        with self._locked():
            entries = self._load()
            entries.pop(key, None)
            entries[key] = {**outcome_to_json(outcome), "at": time.time()}
            while len(entries) > CACHE_ENTRIES:
                entries.pop(next(iter(entries)))
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps({"version": 1, "entries": entries}), encoding="utf-8")
            os.replace(tmp, self.path)
