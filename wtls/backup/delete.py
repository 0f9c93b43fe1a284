"""Deleting a verified worktree folder: only what is saved byte for byte, or ignored.

Every step works through directory file descriptors (``os.fwalk``, ``dir_fd=``, ``O_NOFOLLOW``),
so a folder swapped for a symlink while wtls deletes never leads it outside the worktree.
What git ignores is read once, before anything is deleted (``git ls-files --ignored``, file by
file, never a pathspec built from a file name); a file that appears later is kept. A nested
repository's git data goes only when its state is still what was saved, checked again right
before; a repository that appears meanwhile is kept whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from wtls.backup.gitdata import (
    EXECUTABLE,
    GITLINK,
    REGULAR,
    SYMLINK,
    blob_id,
    git_dir_of,
    object_format,
    tree_entries,
)
from wtls.backup.models import Inspection
from wtls.git import run_git, split_z

#: Name prefix of a file held for its last check before deletion (a leftover after a kill is
#: deleted only if its bytes are saved).
HOLDING_PREFIX = ".wtls-holding-"
_BLOCK = 1 << 20


def repository_state(work: Path) -> str:
    """A digest of a repository's HEAD, refs and index: equal digests, nothing committed since."""
    git_dir = git_dir_of(work)
    if git_dir is None:
        return "gone"
    env = {"GIT_DIR": str(git_dir), "GIT_WORK_TREE": str(work)}
    digest = hashlib.sha256()
    refs = run_git(["for-each-ref", "--format=%(objectname) %(refname)"], work, env=env).stdout
    digest.update(refs)
    for name in ("HEAD", "index"):
        with contextlib.suppress(OSError):
            digest.update(name.encode() + b"\0" + (git_dir / name).read_bytes())
    return digest.hexdigest()


def _ignored_listing(work: Path, env: Mapping[str, str] | None) -> list[str]:
    """Every ignored file, one by one.

    Not ``--directory``: it also names a folder that is not ignored when everything in it is
    (``foo/`` holding only ``*.log`` files), and a file written there later is not ignored.
    """
    out = run_git(
        ["ls-files", "-z", "--others", "--ignored", "--exclude-standard"],
        work,
        env=env,
        timeout=None,
    ).stdout
    return [p for p in split_z(out) if not p.endswith("/")]


def deletion_plan(inspection: Inspection, folder: Path) -> dict[str, Any]:
    """What :func:`delete_verified` may delete, as JSON-able data (kept in a marker file)."""
    common = run_git(["rev-parse", "--path-format=absolute", "--git-common-dir"], folder).text
    nested: dict[str, Any] = {}
    ignored: dict[str, list[str]] = {"": _ignored_listing(folder, None)}
    for snap in inspection.nested_snapshots:
        work = folder / snap.nested.path
        git_dir = git_dir_of(work)
        env = {"GIT_DIR": str(git_dir), "GIT_WORK_TREE": str(work)} if git_dir else None
        nested[snap.nested.path] = {"tree": snap.tree, "state": repository_state(work)}
        ignored[snap.nested.path] = _ignored_listing(work, env)
    return {
        "common": common,
        "format": object_format(folder),
        "tree": inspection.tree,
        "nested": nested,
        "ignored": ignored,
        "head": inspection.head,
    }


def _owner(rel: str, roots: Sequence[str]) -> str:
    """The deepest nested repository root holding ``rel`` (``""`` = the worktree itself)."""
    return next((r for r in roots if rel.startswith(r + "/")), "")


class _Ignored:
    """The files git ignored in each repository when the plan was made (files only: a file
    that appears later is kept, even in an ignored folder)."""

    def __init__(self, listing: Mapping[str, Sequence[str]], roots: Sequence[str]) -> None:
        self._roots = roots
        self._files = {
            root: {e for e in entries if not e.endswith("/")} for root, entries in listing.items()
        }

    def __contains__(self, rel: object) -> bool:
        assert isinstance(rel, str)
        root = _owner(rel, self._roots)
        inner = rel[len(root) + 1 :] if root else rel
        return inner in self._files.get(root, set())


def _entry_at(dir_fd: int, name: str, fmt: str) -> tuple[str, str] | None:
    """``(mode, object name)`` of ``name`` in the open folder, never following a link."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            return SYMLINK, blob_id(os.fsencode(os.readlink(name, dir_fd=dir_fd)), fmt)
        if not stat.S_ISREG(st.st_mode):
            return None
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        h = hashlib.new(fmt)
        h.update(b"blob %d\0" % st.st_size)
        read = 0
        while chunk := fh.read(_BLOCK):
            h.update(chunk)
            read += len(chunk)
    if read != st.st_size:
        return None
    return (EXECUTABLE if st.st_mode & 0o111 else REGULAR), h.hexdigest()


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _exists_at(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return False
    return True


def _unescape_mount(field: bytes) -> bytes:
    """A mountinfo path field: space, tab, newline and backslash come as ``\\NNN`` octal."""
    return re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field)


def mount_points_inside(folder: Path) -> list[Path]:
    """File systems mounted strictly inside ``folder`` (Linux ``/proc/self/mountinfo``).

    A bind mount of a folder of the same file system has the same device number as its
    parent, so only the mount table tells it apart. Elsewhere (no ``/proc``) the deletion
    walk's device check is the guard.
    """
    try:
        table = Path("/proc/self/mountinfo").read_bytes()
    except OSError:
        return []
    real = os.fsencode(os.path.realpath(folder)).rstrip(b"/") + b"/"
    found: list[Path] = []
    for line in table.splitlines():
        fields = line.split(b" ")
        if len(fields) > 4:
            point = _unescape_mount(fields[4])
            if point.startswith(real) and point != real:
                found.append(Path(os.fsdecode(point)))
    return sorted(set(found))


def _open_inside(folder_fd: int, rel: str) -> int:
    """An fd of the folder ``rel`` below ``folder_fd``, refusing a link at any step."""
    fd = os.dup(folder_fd)
    for part in [p for p in rel.split("/") if p]:
        try:
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        finally:
            os.close(fd)
        fd = nxt
    return fd


def _walk(folder_fd: int) -> Iterator[tuple[str, list[str], list[str], int]]:
    """``os.fwalk`` from an open folder, with relative paths (``""`` at the top)."""
    for top, dirs, files, dir_fd in os.fwalk(".", dir_fd=folder_fd, follow_symlinks=False):
        rel = os.path.normpath(top)
        yield ("" if rel == "." else rel), dirs, files, dir_fd


def delete_verified(folder: Path, plan: Mapping[str, Any]) -> list[str]:
    """Delete from ``folder`` only what is saved or disposable; return what was kept.

    A file goes when its bytes and mode on disk are what the snapshot holds (it is moved to a
    holding name and checked again there, so a rewrite by its path survives), or when git
    listed it as ignored when the plan was made; a nested repository's git data goes when
    the repository is still as saved. Anything else is kept, and returned (a folder that holds
    a repository the plan does not know is kept whole, with a trailing ``/``). The folder
    itself goes only when nothing is kept.
    """
    common = Path(plan["common"])
    fmt = str(plan["format"])
    genv = {"GIT_DIR": str(common)}
    nested: Mapping[str, Any] = plan["nested"]
    roots = sorted(nested, key=len, reverse=True)
    saved = {p: e for p, e in tree_entries(common, plan["tree"], genv).items() if e[0] != GITLINK}
    for root, info in nested.items():
        for p, e in tree_entries(common, info["tree"], genv).items():
            if e[0] != GITLINK:
                saved[f"{root}/{p}"] = e
    saved_blobs = set(saved.values())
    ignored = _Ignored(plan.get("ignored", {}), roots)
    changed = {r for r, info in nested.items() if repository_state(folder / r) != info["state"]}
    token = secrets.token_hex(8)
    holding = f"{HOLDING_PREFIX}{token}"
    kept: list[str] = []
    git_data: list[str] = []
    mounts = {
        p.relative_to(os.path.realpath(folder)).as_posix() for p in mount_points_inside(folder)
    }
    try:
        folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return []
    try:
        device = os.fstat(folder_fd).st_dev
        for rel_here, dirs, files, dir_fd in _walk(folder_fd):
            for name in list(dirs):
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                rel = f"{rel_here}/{name}" if rel_here else name
                if stat.S_ISLNK(st.st_mode):
                    dirs.remove(name)
                    files.append(name)
                elif st.st_dev != device or rel in mounts:
                    # Another file system mounted here: its files are not the worktree's.
                    dirs.remove(name)
                    kept.append(rel + "/")
            if ".git" in dirs or ".git" in files:
                if ".git" in dirs:
                    dirs.remove(".git")
                else:
                    files.remove(".git")
                if rel_here and (rel_here not in nested or rel_here in changed):
                    # A repository wtls did not save (new, or changed since): keep it whole.
                    kept.append(rel_here + "/")
                    dirs.clear()
                    continue
                if rel_here:
                    git_data.append(rel_here)
            for name in files:
                rel = f"{rel_here}/{name}" if rel_here else name
                entry = _entry_at(dir_fd, name, fmt)
                if name.startswith(HOLDING_PREFIX) and entry in saved_blobs:
                    os.unlink(name, dir_fd=dir_fd)  # left by a killed run, after its check
                elif entry is not None and saved.get(rel) == entry:
                    _delete_held(dir_fd, name, holding, saved[rel], fmt, token, rel, kept)
                elif rel in ignored:
                    with contextlib.suppress(OSError):
                        os.unlink(name, dir_fd=dir_fd)
                else:
                    kept.append(rel)
        for rel in sorted(git_data, key=len, reverse=True):
            if repository_state(folder / rel) != nested[rel]["state"]:
                kept.append(rel + "/.git")  # committed to meanwhile: its git data stays
                continue
            with contextlib.suppress(OSError):
                parent = _open_inside(folder_fd, rel)
                try:
                    st = os.stat(".git", dir_fd=parent, follow_symlinks=False)
                    if stat.S_ISDIR(st.st_mode):
                        shutil.rmtree(".git", dir_fd=parent)
                    else:
                        os.unlink(".git", dir_fd=parent)
                finally:
                    os.close(parent)
        _remove_empty_folders(folder_fd, "", device, mounts)
        left = sorted(
            f"{rel}/{name}" if rel else name
            for rel, dirs, files, dir_fd in _walk(folder_fd)
            for name in [*files, *(d for d in dirs if _is_link(dir_fd, d))]
            if not (rel == "" and name == ".git")
        )
    finally:
        os.close(folder_fd)
    # Kept is what the walk kept plus anything still there (written after it passed by).
    kept = sorted({*kept, *(p for p in left if not any(p.startswith(k) for k in kept))})
    if not left:
        with contextlib.suppress(OSError):
            (folder / ".git").unlink()
        with contextlib.suppress(OSError):
            folder.rmdir()
    return kept


def _remove_empty_folders(dir_fd: int, rel: str, device: int, mounts: set[str]) -> None:
    """Remove the folders below ``dir_fd`` left empty, never entering another file system."""
    with os.scandir(dir_fd) as entries:
        names = [
            (e.name, e.stat(follow_symlinks=False))
            for e in entries
            if e.is_dir(follow_symlinks=False)
        ]
    for name, st in names:
        here = f"{rel}/{name}" if rel else name
        if st.st_dev != device or here in mounts:
            continue
        with contextlib.suppress(OSError):
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
            try:
                _remove_empty_folders(sub, here, device, mounts)
            finally:
                os.close(sub)
            os.rmdir(name, dir_fd=dir_fd)


def _delete_held(
    dir_fd: int,
    name: str,
    holding: str,
    want: tuple[str, str],
    fmt: str,
    token: str,
    rel: str,
    kept: list[str],
) -> None:
    """Move ``name`` to the holding name, check it there, then delete it (or keep it)."""
    if _exists_at(dir_fd, holding):
        kept.append(rel)
        return
    try:
        os.rename(name, holding, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError:
        kept.append(rel)
        return
    if _entry_at(dir_fd, holding, fmt) == want:
        os.unlink(holding, dir_fd=dir_fd)
        return
    # Rewritten between the check and the move: keep it, under its name when that is free.
    target = name if not _exists_at(dir_fd, name) else f"{name}.wtls-kept-{token}"
    os.rename(holding, target, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    kept.append(rel if target == name else f"{rel}.wtls-kept-{token}")
