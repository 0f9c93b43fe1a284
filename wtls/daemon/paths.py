"""Where an engine's files live: a runtime folder only the user can open, one key per repository.

The folder is ``$WTLS_RUNTIME_DIR`` when set, else ``$XDG_RUNTIME_DIR/wtls`` when that folder
is set and the user's own, else ``/tmp/wtls-<uid>``. It is created with mode 0700. One that
belongs to another user, is not a real folder (a symlink), or that others could write to (they
could have put a socket of their own in it) is refused with :class:`RuntimeDirError`; one that
others could only read or search is closed (chmod 0700).

Each repository, named by its common git dir, gets ``key = sha256(realpath(common_dir))[:16]``
and the files of :class:`EngineFiles`. Stdlib only: the forwarder imports this.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

#: Overrides the runtime folder (tests give each test its own).
RUNTIME_DIR_ENV = "WTLS_RUNTIME_DIR"
#: The engine log is cut back to nothing at start when it grew larger than this.
MAX_LOG_BYTES = 1024 * 1024
#: AF_UNIX paths are limited to 108 bytes on Linux (with the final NUL).
_MAX_SOCKET_PATH = 100


class RuntimeDirError(Exception):
    """The runtime folder cannot be used safely (the message says why and what to do)."""


class EngineFiles(NamedTuple):
    """The files of one repository's engine inside the runtime folder (a named tuple, not a
    dataclass: the forwarder of every editor window imports this, and dataclasses costs)."""

    #: The common git dir the engine serves (resolved).
    repository: Path
    key: str
    #: The unix socket sessions connect to (mode 0600).
    socket: Path
    #: ``flock``'d while a session starts the engine: exactly one starts.
    lock: Path
    #: The engine's stderr.
    log: Path
    #: pid, repository, version and start time of the running engine (informative).
    info: Path


def repository_key(common_dir: Path | str) -> str:
    """The 16 hex digits naming a repository's engine files."""
    real = os.path.realpath(os.fspath(common_dir))
    return hashlib.sha256(os.fsencode(real)).hexdigest()[:16]


def engine_files(common_dir: Path | str, runtime: Path | None = None) -> EngineFiles:
    """The engine files of the repository whose common git dir is ``common_dir``; the runtime
    folder is made (or checked) unless given."""
    folder = runtime if runtime is not None else runtime_dir()
    key = repository_key(common_dir)
    return EngineFiles(
        repository=Path(os.path.realpath(os.fspath(common_dir))),
        key=key,
        socket=folder / f"{key}.sock",
        lock=folder / f"{key}.lock",
        log=folder / f"{key}.log",
        info=folder / f"{key}.json",
    )


def runtime_dir() -> Path:
    """The runtime folder, created 0700 if missing; :class:`RuntimeDirError` if unsafe."""
    uid = os.getuid()
    configured = os.environ.get(RUNTIME_DIR_ENV)
    if configured:
        folder = Path(os.path.abspath(configured))
        with contextlib.suppress(FileExistsError):
            folder.parent.mkdir(parents=True, exist_ok=True)
    else:
        xdg = os.environ.get("XDG_RUNTIME_DIR")
        if xdg and _owned_dir(Path(xdg), uid):
            folder = Path(xdg) / "wtls"
        else:
            folder = Path("/tmp") / f"wtls-{uid}"
    return ensure_private(folder)


def ensure_private(folder: Path) -> Path:
    """Create ``folder`` 0700, or check that an existing one is the user's and private."""
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise RuntimeDirError(
            f"cannot create the wtls runtime folder {folder}: {exc.strerror}"
        ) from None
    try:
        info = os.lstat(folder)
    except OSError as exc:
        raise RuntimeDirError(
            f"cannot read the wtls runtime folder {folder}: {exc.strerror}"
        ) from None
    if not stat.S_ISDIR(info.st_mode):
        raise RuntimeDirError(
            f"the wtls runtime folder {folder} is not a folder (a symlink or a file): remove "
            f"it, or set {RUNTIME_DIR_ENV} to a folder of your own"
        )
    if info.st_uid != os.getuid():
        raise RuntimeDirError(
            f"the wtls runtime folder {folder} belongs to uid {info.st_uid}, not to you "
            f"(uid {os.getuid()}): another user could read your sessions; remove it, or set "
            f"{RUNTIME_DIR_ENV} to a folder of your own"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o022:
        raise RuntimeDirError(
            f"the wtls runtime folder {folder} can be written by other users (mode "
            f"{mode:04o}): someone could have put a socket of their own in it; remove it "
            f"(wtls makes it again, mode 0700), or set {RUNTIME_DIR_ENV}"
        )
    if mode & 0o077:
        os.chmod(folder, 0o700)  # readable by others, nothing planted: close it
    return folder


def _owned_dir(folder: Path, uid: int) -> bool:
    try:
        info = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == uid


@contextlib.contextmanager
def socket_address(path: Path) -> Iterator[str]:
    """An address ``bind``/``connect`` accept for ``path``: the path itself, or when it is too
    long for AF_UNIX, the same file reached through an open descriptor of its folder."""
    if len(os.fsencode(path)) < _MAX_SOCKET_PATH:
        yield os.fspath(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def trim_log(log: Path) -> None:
    """Empty the engine log when it grew past :data:`MAX_LOG_BYTES` (called at start)."""
    with contextlib.suppress(OSError):
        if log.stat().st_size > MAX_LOG_BYTES:
            os.truncate(log, 0)


def log_tail(log: Path, lines: int = 12) -> str:
    """The last lines of the engine log ('' when there is none), for an error message."""
    try:
        with open(log, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 8192))
            data = handle.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace").splitlines()
    return "\n".join(text[-lines:])


def common_dir_of(folder: Path, timeout: float = 30) -> Path | None:
    """The absolute common git dir of the repository containing ``folder`` (a folder), which
    names its engine; None when there is none (no repository, no git, a broken worktree link)."""
    from wtls.git import GitError, GitUnavailable, run_git

    try:
        found = run_git(
            ["rev-parse", "--path-format=absolute", "--git-common-dir"], folder, timeout=timeout
        )
    except (GitError, GitUnavailable, OSError, ValueError):
        return None
    common = found.text.strip()
    return Path(common) if common and os.path.isabs(common) else None
