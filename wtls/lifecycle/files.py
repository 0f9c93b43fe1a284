"""A new worktree's own files: the self-ignoring .wtls folder, copied ignored files, records."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import stat
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wtls.git import run_git, split_z
from wtls.lifecycle.common import (
    _open_repo,
    _start_dir,
)
from wtls.lifecycle.names import (
    _source_worktree,
)
from wtls.lifecycle.results import (
    _SELF_IGNORE,
    PORTS_FILE,
    SPAWN_INFO_FILE,
    WTLS_DIR,
)
from wtls.project_config import ProjectConfig, load_project_config
from wtls.safety import UnsafeFile, read_small_file
from wtls.worktrees import SpawnRecord


def spawn_recipe(start: Path | str) -> ProjectConfig:
    """The ``.wtls.toml`` / ``.worktreeinclude`` recipe a spawn from ``start`` would use."""
    start_dir = _start_dir(start)
    repo = _open_repo(start_dir)
    return load_project_config(_source_worktree(repo, start_dir))


def _open_wtls_dir(worktree: Path, *, create: bool = False) -> int:
    """A descriptor of ``<worktree>/.wtls``, never reached through a symbolic link.

    A base branch can commit ``.wtls`` as a link to any folder; writing through it would put
    wtls's files (and a prompt) wherever the link points. Raises :class:`UnsafeFile` then.
    """
    top = os.open(worktree, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(WTLS_DIR, 0o777, dir_fd=top)
        try:
            return os.open(
                WTLS_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=top
            )
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                what = "a symbolic link" if os.path.islink(worktree / WTLS_DIR) else "not a folder"
                raise UnsafeFile(
                    f"{worktree / WTLS_DIR} is {what} (committed in the base branch?): wtls "
                    "writes nothing through it"
                ) from exc
            raise
    finally:
        os.close(top)


def _write_private(worktree: Path, name: str, text: str, *, exclusive: bool = False) -> Path:
    """Write ``<worktree>/.wtls/<name>``, refusing to follow a symbolic link anywhere on the way.

    ``exclusive`` leaves an existing file alone. Raises :class:`OSError` (including
    :class:`UnsafeFile`) with a clear message.
    """
    folder = _open_wtls_dir(worktree)
    path = worktree / WTLS_DIR / name
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    flags |= os.O_EXCL if exclusive else os.O_TRUNC
    try:
        fd = os.open(name, flags, 0o644, dir_fd=folder)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFile(
                f"{path} is a symbolic link (committed in the base branch?): wtls does not "
                "write through it"
            ) from exc
        raise
    finally:
        os.close(folder)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def _ensure_wtls_dir(worktree: Path) -> Path:
    """``<worktree>/.wtls/``, ignored by git through its own ``.gitignore`` (``*``).

    A self-ignoring folder touches no shared file (not ``.gitignore``, not ``info/exclude``)
    and stays ignored whatever the repository's own ignore rules say.
    """
    os.close(_open_wtls_dir(worktree, create=True))
    with contextlib.suppress(FileExistsError):
        _write_private(worktree, ".gitignore", _SELF_IGNORE, exclusive=True)
    return worktree / WTLS_DIR


def _link_problem(source: Path, rel: str) -> tuple[str | None, str | None]:
    """``(link target, None)`` for a link to copy, ``(None, problem)`` for one that leaves."""
    target = os.readlink(source / rel)
    root = os.path.realpath(source)
    resolved = os.path.realpath(source / rel)
    if os.path.commonpath([root, resolved]) != root:
        return None, (
            f"did not copy {rel}: it is a symbolic link to {target}, outside the worktree "
            "(copy what it points at by hand if the new worktree needs it)"
        )
    return target, None


def _open_dest_folder(dest: Path, parts: Sequence[str], rel: str) -> int:
    """A descriptor of ``dest/parts...``, created as needed, never through a symbolic link."""
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    for i, part in enumerate(parts):
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o777, dir_fd=fd)
            inner = os.open(
                part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd
            )
        except OSError as exc:
            shown = "/".join(parts[: i + 1])
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            what = (
                "a symbolic link (committed in the base branch?), and wtls never writes "
                "through a link"
                if os.path.islink(dest / shown)
                else "not a folder"
            )
            raise UnsafeFile(f"did not copy {rel}: {shown} in the new worktree is {what}") from exc
        finally:
            os.close(fd)
        fd = inner
    return fd


#: Linux ``FICLONE`` (``_IOW(0x94, 9, int)``): the destination shares the source's blocks.
_FICLONE = 0x40049409
#: What a file system without copy-on-write (or across file systems) answers to a clone.
_NO_CLONE = frozenset(
    {errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.ENOSYS, errno.EBADF}
)


def _clone_linux(src: int, out: int) -> bool:
    """Clone ``src`` into the empty file ``out`` (``FICLONE``); False when not supported."""
    try:
        fcntl.ioctl(out, _FICLONE, src)
    except OSError as exc:
        if exc.errno in _NO_CLONE:
            return False
        raise
    return True


def _clone_macos(src: int, folder: int, name: str) -> bool:
    """``fclonefileat(src, folder, name, CLONE_NOFOLLOW)`` on APFS; False when not supported.

    Untested here (no macOS on the test machines): any failure falls back to a plain copy.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        clone = libc.fclonefileat
    except (OSError, AttributeError):
        return False
    clone.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)
    return int(clone(src, folder, os.fsencode(name), 0x0001)) == 0


def _copy_bytes(src: int, out: int) -> None:
    while chunk := os.read(src, 1 << 20):
        os.write(out, chunk)


def _copy_one(source: Path, dest: Path, rel: str) -> tuple[str | None, bool]:
    """Copy one ignored file (or link inside the worktree): ``(problem or None, cloned)``.

    A regular file is cloned (copy-on-write: no data is copied, the blocks are shared until
    either side writes) where the file system can (btrfs, XFS, APFS), else copied byte by byte;
    either way it keeps its mode and modification time.
    """
    parts = rel.split("/")
    if os.path.isabs(rel) or any(p in ("", ".", "..") for p in parts):
        return f"did not copy {rel!r}: not a plain path inside the worktree", False
    st = os.lstat(source / rel)
    link: str | None = None
    if stat.S_ISLNK(st.st_mode):
        link, problem = _link_problem(source, rel)
        if problem is not None:
            return problem, False
    elif not stat.S_ISREG(st.st_mode):
        return f"did not copy {rel}: it is not a regular file", False
    folder = _open_dest_folder(dest, parts[:-1], rel)
    cloned = False
    try:
        if link is not None:
            os.symlink(link, parts[-1], dir_fd=folder)
            return None, False
        src = os.open(source / rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            st = os.fstat(src)
            if not stat.S_ISREG(st.st_mode):
                return f"did not copy {rel}: it is not a regular file", False
            if sys.platform == "darwin":
                cloned = _clone_macos(src, folder, parts[-1])
            flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
            flags |= 0 if cloned else os.O_CREAT | os.O_EXCL
            out = os.open(parts[-1], flags, 0o600, dir_fd=folder)
            try:
                if not cloned:
                    cloned = sys.platform == "linux" and _clone_linux(src, out)
                    if not cloned:
                        _copy_bytes(src, out)
                os.fchmod(out, stat.S_IMODE(st.st_mode))
                os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(out)
        finally:
            os.close(src)
    finally:
        os.close(folder)
    return None, cloned


@dataclass(frozen=True)
class CopiedFiles:
    """What :func:`copy_ignored_files` did."""

    #: Every file copied (relative paths), cloned ones included.
    files: tuple[str, ...] = ()
    #: How many of them are copy-on-write clones.
    cloned: int = 0
    #: One message per file not copied.
    problems: tuple[str, ...] = ()


def copy_ignored_files(
    source: Path, dest: Path, patterns: Sequence[str], *, skip: Sequence[str] = ()
) -> CopiedFiles:
    """Copy files of ``source`` that git ignores and that match ``patterns`` into ``dest``.

    Patterns use gitignore syntax, relative to the worktree's top. Files already present in
    ``dest`` are never overwritten. Nothing is written through a symbolic link in ``dest`` (a
    base branch can commit ``cfg -> /anywhere``); a symbolic link in ``source`` is copied as a
    link only when it points inside ``source``; FIFOs, devices and sockets are not copied. Each
    refusal is one problem naming the file. Files are copy-on-write clones where the file
    system allows it (:func:`_copy_one`). ``skip``: relative paths (and what lies below them)
    left out (the shared ones, already linked).
    """
    if not patterns or not source.is_dir():
        return CopiedFiles()
    with tempfile.NamedTemporaryFile(
        "w", suffix=".patterns", delete=False, encoding="utf-8"
    ) as handle:
        handle.write("\n".join(patterns) + "\n")
        pattern_file = handle.name
    try:
        data = run_git(
            ["ls-files", "-z", "--others", "--ignored", f"--exclude-from={pattern_file}"], source
        ).stdout
    finally:
        os.unlink(pattern_file)
    candidates = [
        rel
        for rel in split_z(data)
        if not rel.endswith("/")
        and not any(rel == top or rel.startswith(f"{top}/") for top in (WTLS_DIR, *skip))
    ]
    if not candidates:
        return CopiedFiles()
    # Only files the repository itself ignores: tracked or plain untracked files are not copied.
    checked = run_git(
        ["check-ignore", "-z", "--stdin"],
        source,
        input=b"".join(os.fsencode(c) + b"\0" for c in candidates),
        ok_codes=(0, 1),
    )
    ignored = set(split_z(checked.stdout))
    copied: list[str] = []
    cloned = 0
    problems: list[str] = []
    for rel in sorted(c for c in candidates if c in ignored):
        was_cloned = False
        try:
            problem, was_cloned = _copy_one(source, dest, rel)
        except FileExistsError:
            problem = f"did not copy {rel}: it already exists in the new worktree"
        except UnsafeFile as exc:
            problem = str(exc)
        except OSError as exc:
            problem = f"could not copy {rel}: {exc}"
        if problem is None:
            copied.append(rel)
            cloned += was_cloned
        else:
            problems.append(problem)
    return CopiedFiles(files=tuple(copied), cloned=cloned, problems=tuple(problems))


def _read_wtls_file(worktree: Path, rel: str) -> str | None:
    """A small wtls file of ``worktree``, or None when missing, unsafe or unreadable."""
    try:
        return read_small_file(worktree / rel, inside=worktree).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def read_ports(worktree: Path) -> dict[str, int]:
    """The ports ``wtls spawn`` assigned to ``worktree`` (from ``.wtls/ports.env``); {} if none."""
    text = _read_wtls_file(worktree, PORTS_FILE)
    if text is None:
        return {}
    ports: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#") and value.strip().isdigit():
            ports[key.strip()] = int(value.strip())
    return ports


def read_spawn_record(worktree: Path) -> SpawnRecord | None:
    """The spawn record of ``worktree`` when spawn gave it a task prompt; None when it has
    none, or its ``.wtls/spawn.json`` or the prompt it names is not where spawn writes them
    (a small regular file; the prompt inside the worktree's ``.wtls/`` folder)."""
    info = read_spawn_info(worktree)
    if info is None:
        return None
    prompt = info.get("promptFile")
    if not isinstance(prompt, str) or not prompt or "\0" in prompt:
        return None
    own = Path(os.path.normpath(worktree / WTLS_DIR))
    prompt_file = Path(os.path.normpath(worktree / prompt))
    if own not in prompt_file.parents:
        return None
    branch = info.get("branch")
    created = info.get("created")
    return SpawnRecord(
        branch=branch if isinstance(branch, str) else worktree.name,
        prompt_file=prompt_file,
        created=created if isinstance(created, str) else "",
    )


def read_spawn_info(worktree: Path) -> dict[str, Any] | None:
    """What spawn recorded in ``.wtls/spawn.json`` (branch, base, promptFile, ports...)."""
    text = _read_wtls_file(worktree, SPAWN_INFO_FILE)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
