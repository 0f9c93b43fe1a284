"""The one place wtls runs git.

Every git invocation goes through :func:`run_git`: argument lists (never a shell), an explicit
working directory, an environment scrubbed of ``GIT_*`` variables that hooks and parent git
processes leak (a stray ``GIT_DIR`` or ``GIT_INDEX_FILE`` would silently point a command at the
wrong repository or index), and typed errors that carry the command and git's own message.

GitPython was measured for this role (see ``bench/README.md``): its ``Git.execute`` always starts
from a copy of ``os.environ`` and can only add variables, so it cannot scrub leaked ``GIT_*``
variables, and it costs more per call than a plain ``subprocess.run``. wtls therefore calls git's
porcelain directly, here.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import select
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

#: ``git merge-tree --write-tree`` (conflict prediction) needs 2.38.
MIN_GIT_VERSION = (2, 38)


class GitError(Exception):
    """A git command failed. ``str()`` gives a one-line, user-facing explanation."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str, cwd: Path | None) -> None:
        self.args_list = list(args)
        self.returncode = returncode
        self.stderr = stderr.strip()
        self.cwd = cwd
        first = self.stderr.splitlines()[0] if self.stderr else f"exit status {returncode}"
        super().__init__(f"git {' '.join(self.args_list[:2])} failed: {first}")


class GitBusy(GitError):
    """Another git process holds a lock (``index.lock``, ``HEAD.lock``...): retry later."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str, cwd: Path | None) -> None:
        super().__init__(args, returncode, stderr, cwd)
        match = re.search(r"'([^']+\.lock)'", self.stderr)
        self.lock_path = match.group(1) if match else None
        where = f" ({self.lock_path})" if self.lock_path else ""
        Exception.__init__(
            self,
            f"the repository is busy: another git process holds a lock{where}; retry when it "
            "finishes (if no git process is running, the lock file is stale and can be deleted)",
        )


class GitUnavailable(Exception):
    """git is missing from PATH or older than wtls needs."""


@dataclass(frozen=True)
class GitResult:
    """What a finished git command produced."""

    args: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        """Standard output decoded as UTF-8 (undecodable bytes escaped), trailing newline cut."""
        return self.stdout.decode("utf-8", "surrogateescape").rstrip("\n")


def git_executable() -> str:
    """The git binary on PATH, or :class:`GitUnavailable` with how to fix it."""
    found = shutil.which("git")
    if found is None:
        raise GitUnavailable(
            "git was not found on PATH. Install git 2.38 or newer "
            "(Debian/Ubuntu: apt-get install git) and restart wtls."
        )
    return found


def scrubbed_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment git runs in: no leaked ``GIT_*``, stable English output, no optional locks.

    ``GIT_OPTIONAL_LOCKS=0`` stops ``git status`` from taking ``index.lock`` to refresh stat
    data, so a background refresh never makes a user's own ``git commit`` fail with "index.lock
    exists".
    """
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in _KEPT_GIT_VARIABLES
    }
    env["LC_ALL"] = "C"
    env["LANGUAGE"] = "C"
    env["GIT_OPTIONAL_LOCKS"] = "0"
    env["GIT_TERMINAL_PROMPT"] = "0"
    # Never open an editor or pager from a background process.
    env["GIT_EDITOR"] = "true"
    env["GIT_PAGER"] = "cat"
    if extra:
        env.update(extra)
    return env


#: User-level preferences that are safe to pass on (identity, config location, ssh), unlike
#: repository-pointing variables (GIT_DIR, GIT_WORK_TREE, GIT_INDEX_FILE, ...) that a hook leaks.
_KEPT_GIT_VARIABLES = frozenset(
    {
        "GIT_CONFIG_NOSYSTEM",
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_SYSTEM",
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_ASKPASS",
        "GIT_EXEC_PATH",
    }
)

#: Commands that only read, run many times a second by refreshes: their output comes through
#: pipes. Any other command may change the repository and must finish even if wtls is killed
#: meanwhile, so its output goes to files: through a pipe, git's next write after our death
#: kills it (SIGPIPE) half-way, e.g. ``worktree add -b`` after creating the branch but before
#: the worktree exists, which leaves a branch that blocks a retry.
_READ_ONLY = frozenset(
    {
        "status",
        "rev-parse",
        "rev-list",
        "ls-files",
        "ls-tree",
        "for-each-ref",
        "show-ref",
        "cat-file",
        "diff",
        "diff-tree",
        "grep",
        "log",
        "show",
        "merge-base",
        "merge-tree",
        "check-ref-format",
        "check-ignore",
        "--version",
    }
)


def _may_change_repository(args: Sequence[str]) -> bool:
    if not args:
        return False
    if args[0] == "worktree":
        return len(args) < 2 or args[1] != "list"
    if args[0] == "reflog":
        return len(args) > 1 and args[1] not in ("show", "exists")
    return args[0] not in _READ_ONLY


_LOCK_RE = re.compile(r"\.lock'?: File exists|Unable to create '.*\.lock'|cannot lock ref")


def run_git(
    args: Sequence[str],
    cwd: Path | str,
    *,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    ok_codes: Sequence[int] = (0,),
    timeout: float | None = 120,
) -> GitResult:
    """Run ``git ARGS`` in ``cwd`` and return its result.

    A return code outside ``ok_codes`` raises :class:`GitError` (or :class:`GitBusy` when git
    reports a held lock). ``env`` adds variables to the scrubbed environment.
    """
    argv = [git_executable(), *args]
    try:
        with contextlib.ExitStack() as files:
            out: Any = subprocess.PIPE
            err: Any = subprocess.PIPE
            if _may_change_repository(args):
                out = files.enter_context(tempfile.TemporaryFile())
                err = files.enter_context(tempfile.TemporaryFile())
            if out is not subprocess.PIPE and input is None:
                # No pipe to read until it closes: wait for the exit itself (_run_to_files).
                proc = _run_to_files(argv, str(cwd), scrubbed_env(env), out, err, timeout)
            else:
                proc = subprocess.run(
                    argv,
                    cwd=str(cwd),
                    env=scrubbed_env(env),
                    input=input,
                    stdin=None if input is not None else subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    timeout=timeout,
                    check=False,
                )
            if out is not subprocess.PIPE:
                out.seek(0)
                err.seek(0)
                proc.stdout, proc.stderr = out.read(), err.read()
    except FileNotFoundError as exc:
        # Either git vanished or cwd does not exist; say which.
        if not Path(cwd).is_dir():
            raise GitError(list(args), -1, f"folder does not exist: {cwd}", Path(cwd)) from exc
        raise GitUnavailable(f"could not run git: {exc}") from exc
    except NotADirectoryError as exc:
        raise GitError(list(args), -1, f"not a folder: {cwd}", Path(cwd)) from exc
    except subprocess.TimeoutExpired as exc:
        raise GitError(list(args), -1, f"timed out after {timeout} s", Path(cwd)) from exc
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode not in ok_codes:
        error_type = GitBusy if _LOCK_RE.search(stderr) else GitError
        raise error_type(list(args), proc.returncode, stderr, Path(cwd))
    return GitResult(tuple(args), proc.returncode, proc.stdout, stderr)


#: Independent git commands run at most this many at a time (each keeps about one core busy).
GIT_JOBS = max(1, min(4, os.cpu_count() or 1))

_T = TypeVar("_T")
_R = TypeVar("_R")


def run_parallel(fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """``fn`` over ``items``, up to :data:`GIT_JOBS` at a time, results in order.

    For per-worktree git work that does not depend on the other worktrees: threads suffice, as
    the work is in git's processes. If calls raise, the first item's exception is raised
    once every call has finished.
    """
    if len(items) < 2 or GIT_JOBS < 2:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(GIT_JOBS, len(items))) as pool:
        return list(pool.map(fn, items))


def _run_to_files(
    argv: list[str], cwd: str, env: dict[str, str], out: Any, err: Any, timeout: float | None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` with no stdin and its output going to the files ``out`` and ``err``.

    ``subprocess.run`` with a timeout and no pipe to read waits by polling, with sleeps growing
    to 50 ms: a git command of 30 ms was seen after 31–45 ms. Where the OS has pidfds (Linux
    5.3+), wait on the process's pidfd instead: woken at its exit, the timeout kept.
    """
    with subprocess.Popen(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
    ) as proc:
        try:
            _wait_for_exit(proc, timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    return subprocess.CompletedProcess(argv, proc.returncode, b"", b"")


def _wait_for_exit(proc: subprocess.Popen[bytes], timeout: float | None) -> None:
    """``proc.wait(timeout)``, woken by the exit itself when a pidfd can be had."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if timeout is None or pidfd_open is None:
        proc.wait(timeout)
        return
    try:
        fd = pidfd_open(proc.pid)
    except OSError:  # no pidfd here (old kernel, seccomp), or already reaped elsewhere
        proc.wait(timeout)
        return
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(fd)
    proc.wait()  # it has exited: this only reaps it


@functools.cache
def git_version() -> tuple[int, ...]:
    """The installed git's version as a tuple of ints, e.g. ``(2, 39, 5)``."""
    out = subprocess.run(
        [git_executable(), "--version"], capture_output=True, env=scrubbed_env(), check=False
    ).stdout.decode()
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", out)
    if not match:
        raise GitUnavailable(f"could not read git's version from {out!r}")
    return tuple(int(part) for part in match.groups() if part is not None)


def require_git() -> tuple[int, ...]:
    """Check that a usable git is installed; raise :class:`GitUnavailable` with the fix if not."""
    version = git_version()
    if version[:2] < MIN_GIT_VERSION:
        have = ".".join(map(str, version))
        need = ".".join(map(str, MIN_GIT_VERSION))
        raise GitUnavailable(
            f"git {have} is too old: wtls needs git {need} or newer (for `git merge-tree "
            f"--write-tree`). Upgrade git and restart wtls."
        )
    return version


def split_z(data: bytes) -> list[str]:
    """Split NUL-separated git output into decoded fields, dropping the empty tail."""
    return [f.decode("utf-8", "surrogateescape") for f in data.split(b"\0") if f]
