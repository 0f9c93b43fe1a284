"""Reading a worktree folder as git data: raw hashes, nested repositories, trees, the index."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wtls.backup.models import Nested
from wtls.git import GitError, run_git, split_z

BACKUP_REF_PREFIX = "refs/wtls/backup/"
#: Where the refs (branches, tags, stash) of nested repositories of a backup are kept.
NESTED_REF_PREFIX = "refs/wtls/nested/"
#: wtls's own commits (backups) carry this identity, so they work without a configured user.
WTLS_IDENTITY = {
    "GIT_AUTHOR_NAME": "wtls",
    "GIT_AUTHOR_EMAIL": "wtls@localhost",
    "GIT_COMMITTER_NAME": "wtls",
    "GIT_COMMITTER_EMAIL": "wtls@localhost",
}
#: The trailer of a backup commit's message that names its manifest commit.
MANIFEST_TRAILER = "wtls-backup-manifest:"
MANIFEST_VERSION = 1
GITLINK = "160000"
SYMLINK = "120000"
EXECUTABLE = "100755"
REGULAR = "100644"
_BLOCK = 1 << 20


class BackupError(GitError):
    """A backup could not be made or did not verify; nothing was removed."""

    def __init__(self, message: str, cwd: Path) -> None:
        super().__init__(["backup"], -1, message, cwd)


class BackupChanged(BackupError):
    """The files changed while the backup read them (it did not verify); nothing was saved."""


def _rel(path: str) -> str:
    return path.rstrip("/")


def fs_bytes(path: str) -> bytes:
    return os.fsencode(path)


def object_format(cwd: Path) -> str:
    """``sha1`` or ``sha256``: how the repository at ``cwd`` names its objects."""
    out = run_git(["rev-parse", "--show-object-format"], cwd, ok_codes=(0, 128)).text
    return out if out in ("sha1", "sha256") else "sha1"


def blob_id(data: bytes, fmt: str) -> str:
    """The object name git gives a blob of ``data``, computed here (not by git)."""
    h = hashlib.new(fmt)
    h.update(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def _file_id(path: Path, size: int, fmt: str) -> str:
    h = hashlib.new(fmt)
    h.update(b"blob %d\0" % size)
    read = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_BLOCK):
            h.update(chunk)
            read += len(chunk)
    if read != size:  # the file changed while we read it: the caller's check will fail
        return "changed"
    return h.hexdigest()


def disk_entry(folder: Path, rel: str, fmt: str) -> tuple[str, str] | None:
    """``(mode, object name)`` of one path as the disk holds it, or None if absent/special."""
    full = folder / rel
    try:
        st = os.lstat(full)
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return SYMLINK, blob_id(os.fsencode(os.readlink(full)), fmt)
    if stat.S_ISREG(st.st_mode):
        mode = EXECUTABLE if st.st_mode & 0o111 else REGULAR
        try:
            return mode, _file_id(full, st.st_size, fmt)
        except OSError:
            return mode, "unreadable"
    return None


#: A ``.git`` file is a line or two; git accepts trailing blank lines, so read a little more.
_GITFILE_LIMIT = 64 * 1024


def git_dir_of(folder: Path) -> Path | None:
    """The git dir named by ``folder/.git`` (a folder, a link to one, or a gitdir file)."""
    dotgit = folder / ".git"
    try:
        st = os.lstat(dotgit)
    except OSError:
        return None
    if stat.S_ISDIR(st.st_mode):
        return dotgit
    if stat.S_ISLNK(st.st_mode):
        return Path(os.path.realpath(dotgit)) if dotgit.is_dir() else None
    if not stat.S_ISREG(st.st_mode) or st.st_size > _GITFILE_LIMIT:
        return None
    try:
        text = dotgit.read_text(encoding="utf-8", errors="surrogateescape").strip()
    except OSError:
        return None
    first = text.splitlines()[0] if text else ""
    if not first.startswith("gitdir:"):
        return None
    target = Path(first.removeprefix("gitdir:").strip())
    if not target.is_absolute():
        target = folder / target
    return Path(os.path.normpath(target))


def _has_dot_git(folder: Path) -> bool:
    try:
        os.lstat(folder / ".git")
    except OSError:
        return False
    return True


def _looks_bare(names: set[str]) -> bool:
    return {"HEAD", "objects", "refs"} <= names


def _is_linked_worktree_dir(git_dir: Path) -> bool:
    return git_dir.parent.name == "worktrees" and (git_dir / "commondir").is_file()


def find_nested(folder: Path, gitlinks: frozenset[str] = frozenset()) -> list[Nested]:
    """Every repository, submodule and worktree inside ``folder`` (not ``folder`` itself).

    Walks the disk, so repositories inside ignored folders are found too; symlinks are not
    followed (a ``.git`` that is a link counts); the top-level ``.git`` is skipped. Also found:
    bare repositories (``HEAD``, ``objects`` and ``refs`` in one folder) and ``.git`` entries
    that name no readable git dir (kinds ``bare`` and ``unknown``).
    """
    found: list[Nested] = []
    stack: list[tuple[Path, str]] = [(folder, "")]
    while stack:
        here, rel = stack.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:
            continue
        for entry in entries:
            if entry.name == ".git":
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if not is_dir:
                continue
            child_rel = f"{rel}{entry.name}"
            child = Path(entry.path)
            git_dir = git_dir_of(child)
            if git_dir is not None:
                if _is_linked_worktree_dir(git_dir):
                    kind = "worktree"
                elif child_rel in gitlinks:
                    kind = "submodule"
                else:
                    kind = "repository"
                found.append(Nested(path=child_rel, kind=kind, git_dir=git_dir))
            elif _has_dot_git(child):
                # A .git that git may use but wtls cannot read (a dangling link, a bad file).
                found.append(Nested(path=child_rel, kind="unknown", git_dir=child / ".git"))
            else:
                try:
                    names = {e.name for e in os.scandir(child)}
                except OSError:
                    names = set()
                if _looks_bare(names):
                    found.append(Nested(path=child_rel, kind="bare", git_dir=child))
                    continue
            stack.append((child, child_rel + "/"))
    found.sort(key=lambda n: n.path)
    return found


def listed_paths(work: Path, env: Mapping[str, str] | None = None) -> list[str]:
    """Non-ignored paths git knows in ``work``: tracked (all of the index) and untracked."""
    out = run_git(
        ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], work, env=env
    ).stdout
    return list(dict.fromkeys(_rel(p) for p in split_z(out)))


def gitlinks_of(work: Path) -> frozenset[str]:
    out = run_git(["ls-files", "-z", "--stage"], work).stdout
    links = set()
    for item in split_z(out):
        meta, _, path = item.partition("\t")
        if meta.startswith(GITLINK):
            links.add(path)
    return frozenset(links)


def head_of(work: Path, env: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """``(HEAD commit or None, symbolic ref or None)`` of the repository at ``work``."""
    head = run_git(
        ["rev-parse", "--verify", "-q", "HEAD^{commit}"], work, env=env, ok_codes=(0, 1)
    ).text
    sym = run_git(["symbolic-ref", "-q", "HEAD"], work, env=env, ok_codes=(0, 1)).text
    return head or None, sym or None


def _index_file(work: Path) -> Path:
    out = run_git(["rev-parse", "--path-format=absolute", "--git-path", "index"], work).text
    return Path(out)


def sparse_setup(work: Path) -> dict[str, Any] | None:
    on = run_git(["config", "--bool", "core.sparseCheckout"], work, ok_codes=(0, 1)).text
    if on != "true":
        return None
    cone = run_git(["config", "--bool", "core.sparseCheckoutCone"], work, ok_codes=(0, 1)).text
    listing = run_git(["sparse-checkout", "list"], work, ok_codes=(0, 128)).text
    return {"cone": cone != "false", "patterns": [p for p in listing.splitlines() if p]}


@dataclass
class Hashed:
    entries: list[tuple[str, str, str]]  # (mode, oid, path)
    special: list[str]


def hash_raw(work: Path, paths: Sequence[str], common: Path) -> Hashed:
    """Write every path's bytes on disk into the object store of ``common``, unfiltered."""
    regular: list[tuple[str, str]] = []  # (mode, path)
    links: list[tuple[str, bytes]] = []
    special: list[str] = []
    for rel in paths:
        try:
            st = os.lstat(work / rel)
        except OSError:
            continue  # deleted, or outside a sparse cone and not on disk
        if stat.S_ISLNK(st.st_mode):
            links.append((rel, os.fsencode(os.readlink(work / rel))))
        elif stat.S_ISREG(st.st_mode):
            regular.append((EXECUTABLE if st.st_mode & 0o111 else REGULAR, rel))
        elif not stat.S_ISDIR(st.st_mode):
            special.append(rel)
    env = {"GIT_DIR": str(common)}
    entries: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="wtls-hash-") as tmp:
        # --stdin-paths reads one path a line and un-quotes a leading '"': such names and
        # names with a newline go on the command line instead.
        plain = [(m, p) for m, p in regular if "\n" not in p and not p.startswith('"')]
        odd = [(m, p) for m, p in regular if "\n" in p or p.startswith('"')]
        link_files: list[tuple[str, str]] = []
        for i, (rel, target) in enumerate(links):
            holder = Path(tmp) / f"link{i}"
            holder.write_bytes(target)
            link_files.append((rel, str(holder)))
        stdin_items = [p for _, p in plain] + [h for _, h in link_files]
        if stdin_items:
            out = run_git(
                ["hash-object", "-w", "--no-filters", "--stdin-paths"],
                work,
                env=env,
                input=b"".join(fs_bytes(p) + b"\n" for p in stdin_items),
                timeout=None,
            ).text.split()
            for (mode, rel), oid in zip(plain, out[: len(plain)], strict=True):
                entries.append((mode, oid, rel))
            for (rel, _), oid in zip(link_files, out[len(plain) :], strict=True):
                entries.append((SYMLINK, oid, rel))
        for mode, rel in odd:
            oid = run_git(
                ["hash-object", "-w", "--no-filters", "--", rel], work, env=env, timeout=None
            ).text
            entries.append((mode, oid, rel))
    return Hashed(entries, special)


def write_tree(common: Path, entries: Sequence[tuple[str, str, str]]) -> str:
    """A tree of ``(mode, oid, path)`` entries, written in ``common``'s object store."""
    with tempfile.TemporaryDirectory(prefix="wtls-tree-") as tmp:
        env = {"GIT_DIR": str(common), "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        data = b"".join(
            b"%s %s\t%s\0" % (m.encode(), o.encode(), fs_bytes(p)) for m, o, p in entries
        )
        run_git(["update-index", "-z", "--index-info"], common, env=env, input=data, timeout=None)
        return run_git(["write-tree"], common, env=env).text


def index_as_tree(work: Path) -> str:
    """The index of the repository at ``work`` as a tree, in its own object store.

    Starts from a copy of the real index that keeps its timestamp (``copy2``): a fresh one
    would defeat git's racy-timestamp check. Conflicted paths are saved as their working-tree
    content, since a tree cannot hold stages.
    """
    real = _index_file(work)
    with tempfile.TemporaryDirectory(prefix="wtls-index-") as tmp:
        index = Path(tmp) / "index"
        if real.exists():
            shutil.copy2(real, index)
        env = {"GIT_INDEX_FILE": str(index)}
        unmerged = sorted(
            {
                item.partition("\t")[2]
                for item in split_z(run_git(["ls-files", "-u", "-z"], work, env=env).stdout)
            }
        )
        if unmerged:
            run_git(
                ["add", "-A", "--pathspec-from-file=-", "--pathspec-file-nul"],
                work,
                env={**env, "GIT_LITERAL_PATHSPECS": "1"},
                input=b"".join(fs_bytes(p) + b"\0" for p in unmerged),
            )
        return run_git(["write-tree"], work, env=env).text


def tree_entries(
    cwd: Path, tree: str, env: Mapping[str, str] | None = None
) -> dict[str, tuple[str, str]]:
    """``{path: (mode, oid)}`` of every blob, link and gitlink in ``tree``."""
    out: dict[str, tuple[str, str]] = {}
    for item in split_z(run_git(["ls-tree", "-r", "-z", tree], cwd, env=env).stdout):
        meta, _, path = item.partition("\t")
        mode, _, rest = meta.partition(" ")
        out[path] = (mode, rest.partition(" ")[2])
    return out


def checkout_ids(work: Path, head: str, paths: Sequence[str], fmt: str) -> dict[str, str]:
    """For ``paths`` of HEAD: the object name of the bytes a checkout would write.

    ``git checkout-index --temp`` from a scratch index of HEAD applies the smudge filters and
    end-of-line conversion that the paths' attributes ask for, as a checkout does, into
    temporary files in a scratch folder (never in the worktree).
    """
    if not paths:
        return {}
    git_dir = run_git(["rev-parse", "--absolute-git-dir"], work).text
    result: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="wtls-checkout-") as tmp:
        env = {"GIT_DIR": git_dir, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        run_git(["read-tree", head], work, env=env)
        scratch = Path(tmp) / "files"
        scratch.mkdir()
        out = run_git(
            ["checkout-index", "--temp", "-z", "--stdin"],
            scratch,
            env={**env, "GIT_WORK_TREE": str(scratch)},
            input=b"".join(fs_bytes(p) + b"\0" for p in paths),
            ok_codes=(0, 1),
            timeout=None,
        ).stdout
        for item in split_z(out):
            temp, _, path = item.partition("\t")
            try:
                result[path] = blob_id((scratch / temp).read_bytes(), fmt)
            except OSError:
                continue
    return result
