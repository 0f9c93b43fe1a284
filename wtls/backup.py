"""Byte-exact backups of a worktree's work, their proof, and their restore.

A removal may only delete what can be brought back. This module answers three questions for a
worktree folder, and knows nothing of LSP or the CLI:

* **What is in it?** :func:`inspect_worktree` walks the folder on disk (ignored folders
  included) for nested repositories, submodules and other worktrees, and takes a *raw
  snapshot*: every file git does not ignore (tracked, untracked, and tracked files outside a
  sparse-checkout cone that exist on disk) hashed as the bytes on disk, with no clean filter or
  end-of-line conversion, so what comes back is exactly what was there.
* **What would be lost?** :meth:`Inspection.losses` compares that snapshot with what checking
  out HEAD would write (through git's own filters), with the index, and lists nested
  repositories and submodules, whose git data goes with the folder.
* **Is it saved?** :func:`save_backup` stores the snapshot, the index and every nested
  repository (all its objects and refs, its index, its files) in the repository under one ref,
  ``refs/wtls/backup/…`` (nested refs under ``refs/wtls/nested/…``), and :func:`verify_folder`
  proves by reading the disk again, with hashes computed here and not by git, that every byte
  is in it. :func:`restore_backup` recreates the worktree from such a ref.

A backup commit ``B`` has the worktree's HEAD, an index commit ``I`` (tree = the saved index),
a manifest commit (``manifest.json``) and one commit per nested repository as parents, so the
one ref keeps all of it alive; ``git diff HEAD B`` shows the saved changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wtls.errors import Refused
from wtls.git import GitError, git_executable, run_git, scrubbed_env, split_z

#: Where removals keep their backups.
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
_MANIFEST_VERSION = 1
_GITLINK = "160000"
_SYMLINK = "120000"
_EXEC = "100755"
_FILE = "100644"
_BLOCK = 1 << 20


class BackupError(GitError):
    """A backup could not be made or did not verify; nothing was removed."""

    def __init__(self, message: str, cwd: Path) -> None:
        super().__init__(["backup"], -1, message, cwd)


class BackupChanged(BackupError):
    """The files changed while the backup read them (it did not verify); nothing was saved."""


# ----------------------------------------------------------------------------- models
@dataclass(frozen=True, kw_only=True)
class Nested:
    """A git repository inside a worktree folder (at any depth, ignored folders included)."""

    #: Path relative to the worktree folder, with ``/`` separators.
    path: str
    #: ``submodule`` (a gitlink of the index), ``repository`` (any other repository) or
    #: ``worktree`` (a linked worktree, of this repository or another).
    kind: str
    #: Its git dir (resolved from a ``.git`` file when there is one).
    git_dir: Path


@dataclass(frozen=True, kw_only=True)
class NestedSnapshot:
    """A nested repository's state: HEAD, index and raw files."""

    nested: Nested
    head: str | None
    #: ``refs/heads/x`` when HEAD is a branch (born or not), else None.
    symref: str | None
    tree: str
    index_commit: str | None


@dataclass(frozen=True, kw_only=True)
class Inspection:
    """What a worktree folder holds, as the disk and git say, at one moment."""

    folder: Path
    head: str | None
    #: The raw snapshot: every non-ignored file as its bytes on disk (and nested HEADs as
    #: gitlinks).
    tree: str
    #: The index as a tree (conflicted paths as their working-tree content).
    index_tree: str
    #: Paths whose bytes a checkout of HEAD would not give back (changed, untracked, deleted).
    changed: tuple[str, ...]
    #: Whether the index differs from HEAD (something is staged).
    staged: bool
    nested: tuple[Nested, ...]
    nested_snapshots: tuple[NestedSnapshot, ...] = ()
    #: Sparse-checkout set-up: ``{"cone": bool, "patterns": [...]}`` or None.
    sparse: Mapping[str, Any] | None = None
    #: Special files (FIFOs, sockets, devices) that no backup can hold; git ignores them too.
    special: tuple[str, ...] = ()
    #: The worktree's own refs (``refs/worktree/*``, ``refs/bisect/*``): ``(oid, name)``. They
    #: live in its private git folder and go with it.
    own_refs: tuple[tuple[str, str], ...] = ()

    @property
    def worktrees_inside(self) -> tuple[Nested, ...]:
        """Other worktrees whose folders lie inside this one."""
        return tuple(n for n in self.nested if n.kind == "worktree")

    @property
    def repositories_inside(self) -> tuple[Nested, ...]:
        """Nested repositories and submodules (their git data lives in or under this folder)."""
        return tuple(n for n in self.nested if n.kind in ("repository", "submodule"))

    @property
    def unsavable(self) -> tuple[Nested, ...]:
        """What no backup of wtls holds: bare repositories, ``.git`` entries it cannot read."""
        return tuple(n for n in self.nested if n.kind in ("bare", "unknown"))

    def losses(self) -> list[str]:
        """What removing the folder without a backup would lose, one phrase per item."""
        out = list(self.changed)
        if self.staged and not out:
            out.append("staged changes")
        out += [f"{name} (a ref of this worktree only)" for _, name in self.own_refs]
        for n in self.repositories_inside:
            out.append(
                f"{n.path}/ ({'submodule' if n.kind == 'submodule' else 'a git repository'})"
            )
        return out

    def fingerprint(self) -> tuple[object, ...]:
        """Equal fingerprints mean equal bytes, index and nested repositories."""
        return (
            self.tree,
            self.index_tree,
            tuple(
                (s.nested.path, s.head, s.symref, s.tree, s.index_commit)
                for s in self.nested_snapshots
            ),
        )


@dataclass(frozen=True, kw_only=True)
class Backup:
    """A verified backup: one ref that holds everything :func:`restore_backup` needs."""

    ref: str
    commit: str
    #: Changed, untracked and deleted files saved, relative to the worktree.
    files: tuple[str, ...]
    #: Nested repositories and submodules saved (relative paths).
    nested: tuple[str, ...] = ()
    #: Refs made for nested repositories (under ``refs/wtls/nested/``).
    nested_refs: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RestoreResult:
    """``wtls restore``: a worktree recreated from a backup ref."""

    path: Path
    branch: str | None
    head: str | None
    detached: bool
    files: int
    nested: tuple[str, ...] = ()
    message: str = ""
    problems: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        """``{path, branch, head, detached, files, nested, message, problems}``."""
        return {
            "path": str(self.path),
            "branch": self.branch,
            "head": self.head,
            "detached": self.detached,
            "files": self.files,
            "nested": list(self.nested),
            "message": self.message,
            "problems": list(self.problems),
        }


# ----------------------------------------------------------------------------- helpers
def _rel(path: str) -> str:
    return path.rstrip("/")


def _fs(path: str) -> bytes:
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


def _disk_entry(folder: Path, rel: str, fmt: str) -> tuple[str, str] | None:
    """``(mode, object name)`` of one path as the disk holds it, or None if absent/special."""
    full = folder / rel
    try:
        st = os.lstat(full)
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return _SYMLINK, blob_id(os.fsencode(os.readlink(full)), fmt)
    if stat.S_ISREG(st.st_mode):
        mode = _EXEC if st.st_mode & 0o111 else _FILE
        try:
            return mode, _file_id(full, st.st_size, fmt)
        except OSError:
            return mode, "unreadable"
    return None


#: A ``.git`` file is a line or two; git accepts trailing blank lines, so read a little more.
_GITFILE_LIMIT = 64 * 1024


def _git_dir_of(folder: Path) -> Path | None:
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
            git_dir = _git_dir_of(child)
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


def _listed(work: Path, env: Mapping[str, str] | None = None) -> list[str]:
    """Non-ignored paths git knows in ``work``: tracked (all of the index) and untracked."""
    out = run_git(
        ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], work, env=env
    ).stdout
    return list(dict.fromkeys(_rel(p) for p in split_z(out)))


def _gitlinks(work: Path) -> frozenset[str]:
    out = run_git(["ls-files", "-z", "--stage"], work).stdout
    links = set()
    for item in split_z(out):
        meta, _, path = item.partition("\t")
        if meta.startswith(_GITLINK):
            links.add(path)
    return frozenset(links)


def _head(work: Path, env: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """``(HEAD commit or None, symbolic ref or None)`` of the repository at ``work``."""
    head = run_git(
        ["rev-parse", "--verify", "-q", "HEAD^{commit}"], work, env=env, ok_codes=(0, 1)
    ).text
    sym = run_git(["symbolic-ref", "-q", "HEAD"], work, env=env, ok_codes=(0, 1)).text
    return head or None, sym or None


def _index_file(work: Path) -> Path:
    out = run_git(["rev-parse", "--path-format=absolute", "--git-path", "index"], work).text
    return Path(out)


def _sparse(work: Path) -> dict[str, Any] | None:
    on = run_git(["config", "--bool", "core.sparseCheckout"], work, ok_codes=(0, 1)).text
    if on != "true":
        return None
    cone = run_git(["config", "--bool", "core.sparseCheckoutCone"], work, ok_codes=(0, 1)).text
    listing = run_git(["sparse-checkout", "list"], work, ok_codes=(0, 128)).text
    return {"cone": cone != "false", "patterns": [p for p in listing.splitlines() if p]}


@dataclass
class _Hashed:
    entries: list[tuple[str, str, str]]  # (mode, oid, path)
    special: list[str]


def _hash_raw(work: Path, paths: Sequence[str], common: Path) -> _Hashed:
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
            regular.append((_EXEC if st.st_mode & 0o111 else _FILE, rel))
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
                input=b"".join(_fs(p) + b"\n" for p in stdin_items),
                timeout=None,
            ).text.split()
            for (mode, rel), oid in zip(plain, out[: len(plain)], strict=True):
                entries.append((mode, oid, rel))
            for (rel, _), oid in zip(link_files, out[len(plain) :], strict=True):
                entries.append((_SYMLINK, oid, rel))
        for mode, rel in odd:
            oid = run_git(
                ["hash-object", "-w", "--no-filters", "--", rel], work, env=env, timeout=None
            ).text
            entries.append((mode, oid, rel))
    return _Hashed(entries, special)


def _write_tree(common: Path, entries: Sequence[tuple[str, str, str]]) -> str:
    """A tree of ``(mode, oid, path)`` entries, written in ``common``'s object store."""
    with tempfile.TemporaryDirectory(prefix="wtls-tree-") as tmp:
        env = {"GIT_DIR": str(common), "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        data = b"".join(b"%s %s\t%s\0" % (m.encode(), o.encode(), _fs(p)) for m, o, p in entries)
        run_git(["update-index", "-z", "--index-info"], common, env=env, input=data, timeout=None)
        return run_git(["write-tree"], common, env=env).text


def _index_tree(work: Path) -> str:
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
                input=b"".join(_fs(p) + b"\0" for p in unmerged),
            )
        return run_git(["write-tree"], work, env=env).text


def _tree_entries(
    cwd: Path, tree: str, env: Mapping[str, str] | None = None
) -> dict[str, tuple[str, str]]:
    """``{path: (mode, oid)}`` of every blob, link and gitlink in ``tree``."""
    out: dict[str, tuple[str, str]] = {}
    for item in split_z(run_git(["ls-tree", "-r", "-z", tree], cwd, env=env).stdout):
        meta, _, path = item.partition("\t")
        mode, _, rest = meta.partition(" ")
        out[path] = (mode, rest.partition(" ")[2])
    return out


def _checkout_ids(work: Path, head: str, paths: Sequence[str], fmt: str) -> dict[str, str]:
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
            input=b"".join(_fs(p) + b"\0" for p in paths),
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


# ----------------------------------------------------------------------------- inspect
def _snapshot(work: Path, common: Path, skip: frozenset[str]) -> tuple[str, _Hashed, list[str]]:
    listed = [
        p for p in _listed(work) if p not in skip and not any(p.startswith(s + "/") for s in skip)
    ]
    hashed = _hash_raw(work, listed, common)
    return _write_tree(common, hashed.entries), hashed, listed


def _nested_snapshot(
    n: Nested, folder: Path, common: Path, inner: frozenset[str]
) -> NestedSnapshot:
    work = folder / n.path
    head, symref = _head(work)
    index_tree = _index_tree(work)
    index_commit: str | None = None
    parents = ["-p", head] if head else []
    index_commit = run_git(
        ["commit-tree", index_tree, *parents, "-m", "wtls: index of a nested repository"],
        work,
        env=WTLS_IDENTITY,
    ).text
    tree, hashed, _ = _snapshot(work, common, inner)
    del hashed
    return NestedSnapshot(nested=n, head=head, symref=symref, tree=tree, index_commit=index_commit)


def _inner_roots(nested: Sequence[Nested], prefix: str) -> frozenset[str]:
    """Nested roots below ``prefix`` (``""`` = the top), relative to that prefix."""
    out = set()
    for n in nested:
        if prefix and not n.path.startswith(prefix + "/"):
            continue
        rel = n.path[len(prefix) + 1 :] if prefix else n.path
        if rel:
            out.add(rel)
    return frozenset(out)


def inspect_worktree(folder: Path, *, nested_state: bool = True) -> Inspection:
    """Look at everything in ``folder`` (a worktree) that a removal would delete.

    ``nested_state`` also snapshots nested repositories (HEAD, index and files) so that a later
    :meth:`Inspection.fingerprint` notices a change inside them too.
    """
    common = Path(run_git(["rev-parse", "--path-format=absolute", "--git-common-dir"], folder).text)
    fmt = object_format(folder)
    head, _ = _head(folder)
    gitlinks = _gitlinks(folder)
    nested = find_nested(folder, gitlinks)
    repos = [n for n in nested if n.kind in ("repository", "submodule")]
    skip = frozenset(n.path for n in nested)
    tree, hashed, _ = _snapshot(folder, common, skip)
    entries = [(m, o, p) for m, o, p in hashed.entries]
    # Nested repositories appear in the snapshot as gitlinks at their HEAD (as git records
    # submodules); their contents are snapshotted on their own.
    snapshots: list[NestedSnapshot] = []
    if nested_state:
        for n in repos:
            inner = _inner_roots(nested, n.path)
            snapshots.append(_nested_snapshot(n, folder, common, inner))
        links = [(_GITLINK, s.head, s.nested.path) for s in snapshots if s.head]
        if links:
            tree = _write_tree(common, [*entries, *links])
    index_tree = _index_tree(folder)
    head_entries = _tree_entries(folder, head) if head else {}
    index_entries = _tree_entries(folder, index_tree)
    raw = {p: (m, o) for m, o, p in entries}
    changed: list[str] = []
    check: list[tuple[str, str]] = []
    for path, (mode, oid) in raw.items():
        if path in gitlinks:
            continue
        want = head_entries.get(path)
        if want is None:
            changed.append(path)
        elif want != (mode, oid):
            if want[0] == mode and mode != _SYMLINK:
                check.append((path, want[1]))
            else:
                changed.append(path)
    if check and head:
        smudged = _checkout_ids(folder, head, [p for p, _ in check], fmt)
        changed += [p for p, _ in check if smudged.get(p) != raw[p][1]]
    skip_worktree = _skip_worktree(folder)
    for path, (mode, _) in head_entries.items():
        if mode == _GITLINK or path in raw or path in skip_worktree:
            continue
        if any(path == s or path.startswith(s + "/") for s in skip):
            continue
        changed.append(path)  # deleted on disk
    staged = index_entries != head_entries if head else bool(index_entries)
    return Inspection(
        folder=folder,
        head=head,
        tree=tree,
        index_tree=index_tree,
        changed=tuple(sorted(set(changed))),
        staged=staged,
        nested=tuple(nested),
        nested_snapshots=tuple(snapshots),
        sparse=_sparse(folder),
        own_refs=tuple(own_refs(folder)),
        special=tuple(hashed.special),
    )


#: Refs git keeps per worktree, in its private git folder.
OWN_REF_PREFIXES = ("refs/worktree/", "refs/bisect/", "refs/rewritten/")


def own_refs(work: Path) -> list[tuple[str, str]]:
    """``(oid, name)`` of the refs that belong to the worktree at ``work`` alone."""
    out = run_git(
        ["for-each-ref", "--format=%(objectname) %(refname)", *OWN_REF_PREFIXES], work
    ).text
    return [(oid, name) for oid, _, name in (line.partition(" ") for line in out.splitlines())]


def _skip_worktree(work: Path) -> frozenset[str]:
    out = run_git(["ls-files", "-z", "-t"], work).stdout
    return frozenset(item[2:] for item in split_z(out) if item.startswith("S "))


def verify_folder(folder: Path, inspection: Inspection) -> list[str]:
    """Read ``folder`` again and list every difference from ``inspection``'s snapshot.

    The hashes are computed here from the bytes on disk, independently of git's index and
    stat cache; the listing asks git again, so a file created since is noticed. Empty = every
    file, link, mode and nested repository is as the snapshot holds it.
    """
    fmt = object_format(folder)
    common = Path(run_git(["rev-parse", "--path-format=absolute", "--git-common-dir"], folder).text)
    env = {"GIT_DIR": str(common)}
    saved = _tree_entries(common, inspection.tree, env)
    problems: list[str] = []
    nested_now = find_nested(folder, _gitlinks(folder))
    if [(n.path, n.kind) for n in nested_now] != [(n.path, n.kind) for n in inspection.nested]:
        problems.append("the nested repositories or worktrees changed")
    skip = frozenset(n.path for n in nested_now)
    listed = set(_listed(folder)) - skip
    for path, (mode, oid) in saved.items():
        if mode == _GITLINK:
            continue
        got = _disk_entry(folder, path, fmt)
        if got != (mode, oid):
            problems.append(path)
    for path in sorted(listed - saved.keys()):
        if _disk_entry(folder, path, fmt) is not None:
            problems.append(path)
    if _index_tree(folder) != inspection.index_tree:
        problems.append("the index changed")
    for snap in inspection.nested_snapshots:
        work = folder / snap.nested.path
        # A submodule's git dir names its work tree by its old path (core.worktree): point
        # git at the folder where it is now (renamed aside, before deletion).
        git_dir = _git_dir_of(work)
        if git_dir is None:
            problems.append(f"{snap.nested.path}/ (its .git is gone)")
            continue
        nenv = {"GIT_DIR": str(git_dir), "GIT_WORK_TREE": str(work)}
        head, symref = _head(work, nenv)
        if (head, symref) != (snap.head, snap.symref):
            problems.append(f"{snap.nested.path}/ (its HEAD moved)")
            continue
        inner_saved = _tree_entries(common, snap.tree, env)
        inner_skip = _inner_roots(inspection.nested, snap.nested.path)
        inner_listed = set(_listed(work, nenv)) - inner_skip
        for path, (mode, oid) in inner_saved.items():
            if _disk_entry(work, path, fmt) != (mode, oid):
                problems.append(f"{snap.nested.path}/{path}")
        for path in sorted(inner_listed - inner_saved.keys()):
            if _disk_entry(work, path, fmt) is not None:
                problems.append(f"{snap.nested.path}/{path}")
    return problems


# ----------------------------------------------------------------------------- save
def unique_ref(run_dir: Path, prefix: str, label: str) -> str:
    """A new ref name ``prefix + label + -STAMP`` that does not exist yet."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = f"{prefix}{label}-{stamp}"
    ref, n = base, 2
    while _ref_exists(run_dir, ref) or _ref_exists(
        run_dir, NESTED_REF_PREFIX + ref.removeprefix(prefix)
    ):
        ref = f"{base}-{n}"
        n += 1
    return ref


def _ref_exists(run_dir: Path, ref: str) -> bool:
    out = run_git(["for-each-ref", "--count=1", "--format=%(refname)", ref, f"{ref}/"], run_dir)
    return bool(out.text)


def _copy_objects(source: Path, common: Path, extra: Sequence[str]) -> None:
    """Copy every object of the repository at ``source`` (refs, reflogs, index) into ``common``."""
    git = git_executable()
    with tempfile.TemporaryFile() as pack:
        proc = subprocess.run(
            [
                git,
                "pack-objects",
                "--revs",
                "--all",
                "--reflog",
                "--indexed-objects",
                "--stdout",
                "-q",
            ],
            cwd=str(source),
            env=scrubbed_env(),
            input=b"".join(x.encode() + b"\n" for x in extra),
            stdout=pack,
            stderr=subprocess.PIPE,
            check=False,
            timeout=None,
        )
        if proc.returncode != 0:
            raise BackupError(
                f"could not read the objects of {source}: "
                f"{proc.stderr.decode('utf-8', 'replace').strip()}; nothing was removed",
                source,
            )
        if pack.tell() == 0:
            return
        pack.seek(0)
        done = subprocess.run(
            [git, "index-pack", "--stdin", "--fix-thin"],
            cwd=str(common),
            env=scrubbed_env({"GIT_DIR": str(common)}),
            stdin=pack,
            capture_output=True,
            check=False,
            timeout=None,
        )
        if done.returncode != 0:
            raise BackupError(
                f"could not copy the objects of {source}: "
                f"{done.stderr.decode('utf-8', 'replace').strip()}; nothing was removed",
                source,
            )


#: Files of a nested repository's git dir that a backup keeps (besides objects and refs).
_GIT_DIR_KEPT = ("config", "info/exclude", "logs", "hooks")
_OID_RE = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


def _git_dir_files(git_dir: Path) -> list[str]:
    """Relative paths of the config, exclude file, reflogs and hooks in ``git_dir``."""
    out: list[str] = []
    for name in _GIT_DIR_KEPT:
        top = git_dir / name
        if top.is_file() and not top.is_symlink():
            out.append(name)
        elif top.is_dir() and not top.is_symlink():
            out += [
                path.relative_to(git_dir).as_posix()
                for path in sorted(top.rglob("*"))
                if path.is_file()
                and not path.is_symlink()
                and not path.name.endswith(".sample")
                and "\n" not in str(path)
            ]
    return out


def _reflog_commits(git_dir: Path, common: Path) -> list[str]:
    """Commits named by the reflogs of ``git_dir`` that exist in ``common``'s object store."""
    named: set[str] = set()
    logs = git_dir / "logs"
    if logs.is_dir():
        for path in logs.rglob("*"):
            if path.is_file() and not path.is_symlink():
                for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                    named.update(o for o in line.split(" ", 2)[:2] if _OID_RE.fullmatch(o))
    named.discard("0" * 40)
    named.discard("0" * 64)
    if not named:
        return []
    order = sorted(named)
    out = run_git(
        ["cat-file", "--batch-check=%(objectname) %(objecttype)"],
        common,
        env={"GIT_DIR": str(common)},
        input="".join(o + "\n" for o in order).encode(),
    ).text
    return [line.split()[0] for line in out.splitlines() if line.endswith(" commit")]


def _nested_refs(work: Path) -> list[tuple[str, str]]:
    out = run_git(["for-each-ref", "--format=%(objectname) %(refname)"], work).text
    return [tuple(line.split(" ", 1)) for line in out.splitlines() if " " in line]  # type: ignore[misc]


def save_backup(inspection: Inspection, run_dir: Path, label: str, branch: str | None) -> Backup:
    """Store everything of ``inspection`` under a new ``refs/wtls/backup/`` ref and verify it.

    Raises :class:`BackupError` (nothing removed, nothing but unreachable objects written)
    when anything cannot be saved or does not verify against the disk.
    """
    folder = inspection.folder
    common = Path(run_git(["rev-parse", "--path-format=absolute", "--git-common-dir"], folder).text)
    ref = unique_ref(run_dir, BACKUP_REF_PREFIX, label)
    backup_id = ref.removeprefix(BACKUP_REF_PREFIX)
    env_common = {**WTLS_IDENTITY, "GIT_DIR": str(common)}
    head = inspection.head
    parents = ["-p", head] if head else []
    index_commit = run_git(
        ["commit-tree", inspection.index_tree, *parents, "-m", f"wtls: index of {label}"],
        folder,
        env=WTLS_IDENTITY,
    ).text
    nested_json: list[dict[str, Any]] = []
    nested_commits: list[str] = []
    ref_updates: list[tuple[str, str]] = []
    meta_entries: list[tuple[str, str, str]] = []
    for k, snap in enumerate(inspection.nested_snapshots):
        work = folder / snap.nested.path
        extra = [x for x in (snap.index_commit,) if x]
        _copy_objects(work, common, extra)
        nparents: list[str] = []
        for p in (snap.head, snap.index_commit):
            if p:
                nparents += ["-p", p]
        ncommit = run_git(
            ["commit-tree", snap.tree, *nparents, "-m", f"wtls: files of {snap.nested.path}"],
            common,
            env=env_common,
        ).text
        nested_commits.append(ncommit)
        prefix = f"{NESTED_REF_PREFIX}{backup_id}/{k}/"
        for oid, name in _nested_refs(work):
            ref_updates.append((prefix + name, oid))
        kept_files = _git_dir_files(snap.nested.git_dir)
        if kept_files:
            oids = run_git(
                ["hash-object", "-w", "--no-filters", "--stdin-paths"],
                common,
                env=env_common,
                input=b"".join(_fs(str(snap.nested.git_dir / r)) + b"\n" for r in kept_files),
            ).text.split()
            for rel, oid in zip(kept_files, oids, strict=True):
                meta_entries.append((_FILE, oid, f"nested/{k}/gitdir/{rel}"))
        keep = _reflog_commits(snap.nested.git_dir, common)
        nested_json.append(
            {
                "path": snap.nested.path,
                "kind": snap.nested.kind,
                "head": snap.head,
                "symref": snap.symref,
                "files": ncommit,
                "index": snap.index_commit,
                "refs": prefix,
                "keep": keep,
            }
        )
    manifest = {
        "version": _MANIFEST_VERSION,
        "worktree": str(folder),
        "branch": branch,
        "head": head,
        "index": index_commit,
        "sparse": dict(inspection.sparse) if inspection.sparse else None,
        "changed": list(inspection.changed),
        "nested": nested_json,
        "ownRefs": [[oid, name] for oid, name in inspection.own_refs],
    }
    manifest_blob = run_git(
        ["hash-object", "-w", "--stdin"],
        common,
        env=env_common,
        input=json.dumps(manifest, indent=1, ensure_ascii=True).encode(),
    ).text
    meta_tree = _write_tree(common, [(_FILE, manifest_blob, "manifest.json"), *meta_entries])
    # Commits only a nested reflog names (older stash entries, reset-away work) stay alive as
    # parents of the manifest commit.
    keepers = sorted({c for item in nested_json for c in item["keep"]})
    meta_parents = [arg for c in keepers for arg in ("-p", c)]
    meta_commit = run_git(
        ["commit-tree", meta_tree, *meta_parents, "-m", f"wtls: manifest of the backup of {label}"],
        common,
        env=env_common,
    ).text
    all_parents = [*parents, "-p", index_commit, "-p", meta_commit]
    for c in nested_commits:
        all_parents += ["-p", c]
    message = (
        f"wtls backup of {folder} ({branch or 'detached'}) before removal\n\n"
        f"Restore with: wtls restore {ref}\n\n{MANIFEST_TRAILER} {meta_commit}\n"
    )
    commit = run_git(
        ["commit-tree", inspection.tree, *all_parents, "-F", "-"],
        common,
        env=env_common,
        input=message.encode(),
    ).text
    # Prove it before anyone relies on it: the disk must still match what was saved.
    problems = verify_folder(folder, inspection)
    if problems:
        raise BackupChanged(
            f"the backup of {folder} does not match its files "
            f"({', '.join(problems[:5])}{' …' if len(problems) > 5 else ''}): they changed "
            "while wtls read them; nothing was removed",
            folder,
        )
    own = [(f"{NESTED_REF_PREFIX}{backup_id}/own/{name}", oid) for oid, name in inspection.own_refs]
    updates = [(ref, commit), *ref_updates, *((name, oid) for name, oid in own)]
    script = "".join(f"create {name} {oid}\n" for name, oid in updates)
    run_git(
        ["update-ref", "--stdin", "-m", "wtls: backup before removal"],
        run_dir,
        input=script.encode(),
    )
    if run_git(["rev-parse", "--verify", ref], run_dir).text != commit:
        raise BackupError(f"backup ref {ref} does not hold {commit}; nothing was removed", run_dir)
    return Backup(
        ref=ref,
        commit=commit,
        files=inspection.changed,
        nested=tuple(n["path"] for n in nested_json),
        nested_refs=tuple(name for name, _ in [*ref_updates, *own]),
    )


def save_commit(run_dir: Path, label: str, commit: str, why: str) -> str:
    """Keep ``commit`` reachable under a new ``refs/wtls/backup/`` ref; return the ref."""
    ref = unique_ref(run_dir, BACKUP_REF_PREFIX, label)
    run_git(["update-ref", "-m", f"wtls: {why}", ref, commit, ""], run_dir)
    return ref


def unreachable_commits(run_dir: Path, commit: str) -> bool:
    """Whether ``commit`` has history that no branch, tag or remote-tracking ref reaches."""
    out = run_git(
        ["rev-list", "-n", "1", commit, "--not", "--branches", "--tags", "--remotes"],
        run_dir,
        ok_codes=(0, 128),
    )
    return out.returncode == 0 and bool(out.text)


# ----------------------------------------------------------------------------- restore
def read_manifest(run_dir: Path, ref: str) -> tuple[str, dict[str, Any]]:
    """``(backup commit, manifest)`` of a backup ref; Refused when it is no wtls backup."""
    if not ref or ref.startswith("-") or any(ord(c) < 32 for c in ref):
        raise Refused(f"{ref!r} is not a backup ref")
    names = [ref] if ref.startswith("refs/") else [ref, BACKUP_REF_PREFIX + ref]
    commit = ""
    for name in names:
        commit = run_git(
            ["rev-parse", "--verify", "-q", "--end-of-options", f"{name}^{{commit}}"],
            run_dir,
            ok_codes=(0, 1, 128),
        ).text
        if commit:
            break
    if not commit:
        raise Refused(f"no backup {ref!r}: `git for-each-ref {BACKUP_REF_PREFIX}` lists them")
    body = run_git(["cat-file", "commit", commit], run_dir).text
    meta = next(
        (
            line.removeprefix(MANIFEST_TRAILER).strip()
            for line in body.splitlines()
            if line.startswith(MANIFEST_TRAILER)
        ),
        None,
    )
    if meta is None:
        if "wtls backup of" in body:
            raise Refused(
                f"{ref} was made by an older wtls (a stash-shaped commit): restore it with "
                f"`git worktree add PATH {ref}^1` and `git -C PATH stash apply --index {ref}`"
            )
        raise Refused(f"{ref} is not a wtls backup")
    raw = run_git(["cat-file", "blob", f"{meta}:manifest.json"], run_dir).stdout
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise Refused(f"the manifest of {ref} is unreadable: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("version") != _MANIFEST_VERSION:
        raise Refused(f"{ref} was made by a newer wtls: upgrade wtls to restore it")
    manifest["_meta"] = meta
    return commit, manifest


def _cat_blobs(common: Path, oids: Sequence[str]) -> Iterator[tuple[str, bytes]]:
    if not oids:
        return
    proc = subprocess.run(
        [git_executable(), "cat-file", "--batch"],
        cwd=str(common),
        env=scrubbed_env({"GIT_DIR": str(common)}),
        input=b"".join(o.encode() + b"\n" for o in oids),
        capture_output=True,
        check=True,
        timeout=None,
    )
    data = proc.stdout
    pos = 0
    for oid in oids:
        nl = data.index(b"\n", pos)
        header = data[pos:nl].split()
        pos = nl + 1
        if len(header) < 3:
            raise GitError(["cat-file"], -1, f"object {oid} is missing", common)
        size = int(header[2])
        yield oid, data[pos : pos + size]
        pos += size + 1


def _write_files(common: Path, tree: str, dest: Path) -> int:
    """Write every blob and link of ``tree`` under ``dest`` as raw bytes; return the count."""
    env = {"GIT_DIR": str(common)}
    entries = _tree_entries(common, tree, env)
    files = [(p, m, o) for p, (m, o) in entries.items() if m != _GITLINK]
    blobs = dict(_cat_blobs(common, sorted({o for _, _, o in files})))
    for path, mode, oid in files:
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
        if mode == _SYMLINK:
            os.symlink(os.fsdecode(blobs[oid]), target)
            continue
        fd = os.open(
            target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o777 if mode == _EXEC else 0o666
        )
        with os.fdopen(fd, "wb") as fh:
            fh.write(blobs[oid])
    return len(files)


def _lay_out(
    work: Path, index_tree: str, store: Path, files: str, env: Mapping[str, str] | None = None
) -> int:
    """Make ``work`` hold the saved index and, on disk, exactly the saved raw files.

    The index is checked out first, as git would (so its stat data is what a checkout leaves
    and ``git status`` judges the raw files as it did before); then the files the user had
    deleted go, and every saved file is written over with its raw bytes.
    """
    run_git(["read-tree", "--reset", "-u", index_tree], work, env=env, timeout=None)
    saved = _tree_entries(store, files, {"GIT_DIR": str(store)})
    listed = split_z(run_git(["ls-files", "-z", "-t", "--cached"], work, env=env).stdout)
    for item in listed:
        tag, path = item[:1], item[2:]
        if tag == "S" or path in saved:
            continue
        full = work / path
        if full.is_symlink() or full.is_file():
            full.unlink()
            parent = full.parent
            while parent != work and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
    count = _write_files(store, files, work)
    _refresh_stat(work, saved, env)
    return count


def _refresh_stat(
    work: Path, saved: Mapping[str, tuple[str, str]], env: Mapping[str, str] | None
) -> None:
    """Record fresh stat data for the files whose content equals the index.

    A raw file that differs from the checkout only by a filter or line endings (a CRLF file
    under ``text=auto``) has another size than the checkout git recorded, and git calls such a
    file modified from its size alone, even after ``update-index --refresh``. ``git add`` of
    exactly the paths whose filtered content equals their index entry records their stat data
    and stages nothing new.
    """
    staged: dict[str, str] = {}
    for item in split_z(run_git(["ls-files", "-z", "-s", "-t"], work, env=env).stdout):
        meta, _, path = item.partition("\t")
        tag, mode, oid, stage = meta.split(" ")
        if tag == "H" and stage == "0" and mode in (_FILE, _EXEC):
            staged[path] = oid
    odd = [
        p
        for p, oid in staged.items()
        if p in saved and saved[p][1] != oid and saved[p][0] != _SYMLINK
        if "\n" not in p and not p.startswith('"')
    ]
    if odd:
        filtered = run_git(
            ["hash-object", "--stdin-paths"],
            work,
            env=env,
            input=b"".join(_fs(p) + b"\n" for p in odd),
            timeout=None,
        ).text.split()
        same = [p for p, oid in zip(odd, filtered, strict=True) if oid == staged[p]]
        if same:
            run_git(
                ["add", "--sparse", "--pathspec-from-file=-", "--pathspec-file-nul"],
                work,
                env={**(env or {}), "GIT_LITERAL_PATHSPECS": "1"},
                input=b"".join(_fs(p) + b"\0" for p in same),
                timeout=None,
            )
    run_git(["update-index", "-q", "--refresh"], work, env=env, ok_codes=(0, 1), timeout=None)


def restore_backup(run_dir: Path, ref: str, path: Path | None = None) -> RestoreResult:
    """Recreate the worktree saved in ``ref`` at ``path`` (default: where it was).

    The worktree gets its branch back when the branch is free and still at the saved HEAD (a
    deleted branch is created again there); otherwise it is detached at the saved HEAD and the
    message says why. Files come back as the raw bytes saved, the index as saved, nested
    repositories with all their refs, index and files. Refused when ``path`` exists and is not
    empty.
    """
    commit, manifest = read_manifest(run_dir, ref)
    common = Path(
        run_git(["rev-parse", "--path-format=absolute", "--git-common-dir"], run_dir).text
    )
    target = Path(os.path.abspath(path if path is not None else manifest["worktree"]))
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise Refused(f"{target} exists and is not empty: give another place with --path")
    head: str | None = manifest.get("head")
    branch: str | None = manifest.get("branch")
    if head is None:
        raise Refused(f"{ref} has no HEAD commit to restore onto")
    notes: list[str] = []
    detached = True
    args = ["worktree", "add", "--no-checkout"]
    if branch:
        tip = run_git(
            ["rev-parse", "--verify", "-q", f"refs/heads/{branch}"], run_dir, ok_codes=(0, 1)
        ).text
        checked_out = branch_checked_out(run_dir, branch)
        if not tip:
            run_git(["branch", "--end-of-options", branch, head], run_dir)
            notes.append(f"created branch {branch} again at {head[:12]}")
            detached = False
        elif tip == head and not checked_out:
            detached = False
        elif checked_out:
            notes.append(f"branch {branch} is checked out elsewhere, so this worktree is detached")
        else:
            notes.append(
                f"branch {branch} has moved since the backup, so this worktree is detached at "
                f"{head[:12]}; `git switch {branch}` when you are ready"
            )
    if detached:
        run_git([*args, "--detach", "--", str(target), head], run_dir)
    else:
        assert branch is not None
        run_git([*args, "--", str(target), branch], run_dir)
    sparse = manifest.get("sparse")
    if sparse:
        mode = "--cone" if sparse.get("cone") else "--no-cone"
        run_git(
            ["sparse-checkout", "set", mode, "--stdin"],
            target,
            input="".join(p + "\n" for p in sparse.get("patterns", [])).encode(),
        )
    count = _lay_out(target, f"{manifest['index']}^{{tree}}", common, commit)
    for oid, name in manifest.get("ownRefs", []):
        run_git(["update-ref", str(name), str(oid), ""], target)
    restored_nested: list[str] = []
    for k, item in enumerate(manifest.get("nested", [])):
        restored_nested.append(_restore_nested(common, target, manifest["_meta"], k, item))
    message = f"restored {target} from {ref}" + ("; " + "; ".join(notes) if notes else "")
    return RestoreResult(
        path=target,
        branch=None if detached else branch,
        head=head,
        detached=detached,
        files=count,
        nested=tuple(restored_nested),
        message=message,
    )


def branch_checked_out(run_dir: Path, branch: str) -> bool:
    """Whether any worktree of the repository has ``branch`` checked out."""
    data = run_git(["worktree", "list", "--porcelain", "-z"], run_dir).stdout
    return f"branch refs/heads/{branch}" in split_z(data)


def _restore_nested(common: Path, top: Path, meta: str, k: int, item: Mapping[str, Any]) -> str:
    rel = str(item["path"])
    work = top / rel
    work.mkdir(parents=True, exist_ok=True)
    run_git(["init", "-q", "--", str(work)], top)
    git_dir = work / ".git"
    # Explicit GIT_DIR/GIT_WORK_TREE: a submodule's saved config names its old work tree.
    env = {"GIT_DIR": str(git_dir), "GIT_WORK_TREE": str(work)}
    common_env = {"GIT_DIR": str(common)}
    # Bring its objects back: every saved ref, plus the saved files and index commit.
    tmp_ref = "refs/wtls-restore/files"
    run_git(
        [
            "fetch",
            "-q",
            "--no-tags",
            "--no-write-fetch-head",
            "--update-head-ok",
            "--",
            str(common),
            f"+{item['refs']}refs/*:refs/*",
            f"+{item['files']}:{tmp_ref}",
            *(f"+{c}:refs/wtls-restore/keep-{i}" for i, c in enumerate(item.get("keep", []))),
        ],
        work,
        env=env,
        timeout=None,
    )
    symref, head = item.get("symref"), item.get("head")
    if symref:
        run_git(["symbolic-ref", "HEAD", symref], work, env=env)
    elif head:
        run_git(["update-ref", "--no-deref", "HEAD", head], work, env=env)
    files_commit = run_git(["rev-parse", "--verify", tmp_ref], work, env=env).text
    _lay_out(work, f"{item['index']}^{{tree}}", git_dir, files_commit, env)
    for i in range(len(item.get("keep", []))):
        run_git(["update-ref", "-d", f"refs/wtls-restore/keep-{i}"], work, env=env)
    run_git(["update-ref", "-d", tmp_ref], work, env=env)
    # Last, its config, exclude file, hooks and reflogs as they were (so the fetch above
    # leaves no entry in them, and every stash entry is listed again).
    saved_dir = run_git(
        ["rev-parse", "--verify", "-q", f"{meta}:nested/{k}/gitdir"],
        common,
        env=common_env,
        ok_codes=(0, 1, 128),
    ).text
    if saved_dir:
        _write_files(common, saved_dir, git_dir)
    run_git(
        ["config", "--file", str(git_dir / "config"), "--unset-all", "core.worktree"],
        work,
        env=env,
        ok_codes=(0, 5),
    )
    if item.get("kind") == "submodule":
        run_git(["submodule", "absorbgitdirs", "--", rel], top, ok_codes=(0, 1, 128))
    return rel


# ----------------------------------------------------------------------------- verified deletion
def deletion_plan(inspection: Inspection, folder: Path) -> dict[str, Any]:
    """What :func:`delete_verified` may delete: the snapshot trees, as JSON-able data."""
    common = run_git(["rev-parse", "--path-format=absolute", "--git-common-dir"], folder).text
    return {
        "common": common,
        "format": object_format(folder),
        "tree": inspection.tree,
        "nested": {s.nested.path: s.tree for s in inspection.nested_snapshots},
    }


def _owner(rel: str, roots: Sequence[str]) -> str:
    """The deepest nested repository root holding ``rel`` (``""`` = the worktree itself)."""
    return next((r for r in roots if rel.startswith(r + "/")), "")


def _ignored(
    folder: Path, paths: Sequence[str], roots: Sequence[str], env: Mapping[str, str]
) -> set[str]:
    """Which of ``paths`` git ignores, each asked of the repository that holds it."""
    groups: dict[str, list[str]] = {}
    for rel in paths:
        groups.setdefault(_owner(rel, roots), []).append(rel)
    found: set[str] = set()
    for root, rels in groups.items():
        work = folder / root if root else folder
        if root:
            git_dir = _git_dir_of(work)
            if git_dir is None:
                continue
            genv: Mapping[str, str] = {"GIT_DIR": str(git_dir), "GIT_WORK_TREE": str(work)}
        else:
            genv = env
        inner = [r[len(root) + 1 :] if root else r for r in rels]
        out = run_git(
            ["check-ignore", "-z", "--stdin"],
            work,
            env=genv,
            input=b"".join(_fs(p) + b"\0" for p in inner),
            ok_codes=(0, 1),
            timeout=None,
        ).stdout
        found |= {f"{root}/{p}" if root else p for p in split_z(out)}
    return found


def delete_verified(folder: Path, plan: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """Delete from ``folder`` only what is saved or disposable; return what was kept.

    A file goes when its bytes and mode on disk are what the snapshot holds (computed here), or
    when git ignores it; the ``.git`` data of the nested repositories the plan saved goes too.
    Anything else, such as a file written by a process working inside the folder after the last
    check, stays, and is returned. ``env`` points git at the worktree's git data (its ``.git``
    file is kept until the end). The folder itself is removed only when nothing is kept.
    """
    common = Path(plan["common"])
    fmt = str(plan["format"])
    genv = {"GIT_DIR": str(common)}
    nested: Mapping[str, str] = plan["nested"]
    roots = sorted(nested, key=len, reverse=True)
    saved = {p: e for p, e in _tree_entries(common, plan["tree"], genv).items() if e[0] != _GITLINK}
    for root, tree in nested.items():
        for p, e in _tree_entries(common, tree, genv).items():
            if e[0] != _GITLINK:
                saved[f"{root}/{p}"] = e
    unknown: list[str] = []
    verified: list[str] = []
    git_data: list[Path] = []
    for here, dirs, files in os.walk(folder):
        base = Path(here)
        rel_here = base.relative_to(folder).as_posix()
        rel_here = "" if rel_here == "." else rel_here
        for name in list(dirs):
            if (base / name).is_symlink():
                dirs.remove(name)
                files.append(name)
        for name in (".git",):
            if name in dirs:
                dirs.remove(name)
            elif name not in files:
                continue
            else:
                files.remove(name)
            if not rel_here:
                continue  # the worktree's own .git file goes last
            if rel_here in nested:
                git_data.append(base / name)
            else:
                unknown.append(f"{rel_here}/.git")
        for name in files:
            rel = f"{rel_here}/{name}" if rel_here else name
            entry = _disk_entry(folder, rel, fmt)
            if entry is not None and saved.get(rel) == entry:
                verified.append(rel)
            else:
                unknown.append(rel)
    # Ask git what it ignores while every .gitignore is still there; then delete.
    files_unknown = [r for r in unknown if not r.endswith("/.git")]
    ignored = _ignored(folder, files_unknown, roots, env)
    unknown = [r for r in unknown if r not in ignored]
    for rel in ignored:
        with contextlib.suppress(OSError):
            os.unlink(folder / rel)
    # A verified file is moved into a holding name first and checked there: a writer that
    # rewrites it meanwhile by its path creates a new file, which is kept.
    holding = folder / f".wtls-deleting-{os.getpid()}"
    for rel in verified:
        try:
            os.rename(folder / rel, holding)
        except OSError:
            continue
        if _disk_entry(folder, holding.name, fmt) == saved[rel]:
            holding.unlink()
        elif not os.path.lexists(folder / rel):
            os.rename(holding, folder / rel)
            unknown.append(rel)
        else:
            kept_as = folder / f"{rel}.wtls-kept-{os.getpid()}"
            os.rename(holding, kept_as)
            unknown.append(kept_as.relative_to(folder).as_posix())
    for data in git_data:
        if data.is_dir() and not data.is_symlink():
            shutil.rmtree(data, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                data.unlink()
    for here, dirs, _ in os.walk(folder, topdown=False):
        for name in dirs:
            with contextlib.suppress(OSError):
                (Path(here) / name).rmdir()
    kept = sorted(
        Path(here, name).relative_to(folder).as_posix()
        for here, dirs, files in os.walk(folder)
        for name in [*files, *(d for d in dirs if Path(here, d).is_symlink())]
        if Path(here, name) != folder / ".git"
    )
    if not kept:
        with contextlib.suppress(OSError):
            (folder / ".git").unlink()
        with contextlib.suppress(OSError):
            folder.rmdir()
    return kept
