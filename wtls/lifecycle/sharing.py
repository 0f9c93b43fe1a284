"""``.wtls.toml`` ``share``: ignored folders a new worktree links to instead of copying.

A shared entry becomes a symbolic link at the same relative path in the new worktree, pointing
at the source worktree's folder (absolute). Both worktrees then read and write one folder:
that is the point (one ``node_modules``, not one per worktree) and the risk (docs/safety.md).

Every entry is checked before anything is created (:func:`check_shares`): it must be ignored
by git in the source worktree, tracked nowhere (not in the source's index, not in the commit the
new worktree checks out: two worktrees would write one tracked file), and must not resolve
outside the source worktree. A missing source is skipped with a note (a fresh clone has no
``node_modules`` yet; the new worktree's ``setup`` then installs its own).

The links wtls made are recorded in the new worktree's ``.wtls/spawn.json`` (``shared``: path →
target). :func:`known_links` reads them back for ``remove``: a recorded link that still points
where wtls pointed it is not "untracked work"; removing the worktree deletes the link, never
what it points at (the removal walks never follow a link).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wtls.errors import Refused
from wtls.git import GitError, run_git, split_z
from wtls.lifecycle.files import _open_dest_folder, read_spawn_info
from wtls.safety import UnsafeFile
from wtls.worktrees import WorktreeState, discover, list_worktrees

#: The header of the lines wtls adds to ``info/exclude`` for links git would not ignore.
EXCLUDE_HEADER = "# wtls share: links to shared folders (a `name/` pattern ignores only folders)"


@dataclass(frozen=True)
class SharePlan:
    """What :func:`check_shares` found: what to link, and the entries skipped (with why)."""

    #: Relative path → absolute target (the source worktree's folder or file).
    links: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _literal(rel: str) -> str:
    return f":(literal){rel}"


def check_shares(source: Path, shared: Sequence[str], base_commit: str) -> SharePlan:
    """Check every ``share`` entry against the source worktree and the commit to check out.

    Raises :class:`Refused` (nothing created yet) for an entry that is tracked, not ignored,
    or resolves outside ``source``. Entries are already plain relative paths
    (:func:`wtls.project_config.check_relative_path`).
    """
    if not shared:
        return SharePlan()
    root = os.path.realpath(source)
    links: dict[str, str] = {}
    notes: list[str] = []
    tracked = split_z(
        run_git(["ls-files", "-z", "--cached", "--", *map(_literal, shared)], source).stdout
    )
    in_base = split_z(
        run_git(
            [
                "ls-tree",
                "-r",
                "-z",
                "--name-only",
                "--full-tree",
                "--end-of-options",
                base_commit,
                "--",
                *shared,
            ],
            source,
            # An entry is a file name: `:(glob)x` is a folder, not pathspec magic.
            env={"GIT_LITERAL_PATHSPECS": "1"},
        ).stdout
    )
    for rel in shared:
        hits = [p for p in [*tracked, *in_base] if p == rel or p.startswith(rel + "/")]
        if hits:
            raise Refused(
                f"share entry {rel!r} holds files git tracks ({hits[0]}): two worktrees would "
                "write one tracked file. Share only ignored folders (like node_modules)"
            )
        path = source / rel
        if not os.path.lexists(path):
            notes.append(
                f"did not share {rel}: {path} does not exist (the new worktree's setup can "
                "make its own)"
            )
            continue
        resolved = os.path.realpath(path)
        if os.path.commonpath([root, resolved]) != root or resolved == root:
            raise Refused(
                f"share entry {rel!r}: {path} resolves to {resolved}, outside the worktree "
                f"{source} (a symbolic link?): wtls shares only what lies inside it"
            )
        if resolved != os.path.join(root, *rel.split("/")):
            # A link inside the worktree (node_modules -> src) would share what it points
            # at, which the tracked and ignored checks here never looked at.
            raise Refused(
                f"share entry {rel!r}: {path} is or lies under a symbolic link (it resolves to "
                f"{resolved}): share the folder itself, not a link to it"
            )
        if not (os.path.isdir(path) or os.path.isfile(path)):
            raise Refused(f"share entry {rel!r}: {path} is neither a folder nor a regular file")
        links[rel] = str(path)
    if links:
        ignored = _ignored_among(source, links)
        missing = [r for r in links if r not in ignored]
        if missing:
            raise Refused(
                f"share entry {missing[0]!r} is not ignored by git in {source}: a shared "
                "folder must be one git ignores (add it to .gitignore), or its files would "
                "show up as changes in every worktree"
            )
    return SharePlan(links=links, notes=tuple(notes))


def _hidden_elsewhere(dest: Path, rels: Sequence[str]) -> dict[str, Path]:
    """``rel`` → a path at ``rel`` in another worktree that git does not ignore now.

    An ``/rel`` line in the shared ``info/exclude`` would hide it there too (a user's file
    named ``data`` beside a shared ``data/`` folder): git would stop listing it, and wtls's
    removal, which keeps only what git does not ignore, would delete it unsaved.
    """
    here = os.path.realpath(dest)
    found: dict[str, Path] = {}
    for entry in list_worktrees(discover(dest)):
        wt = entry.path
        if os.path.realpath(wt) == here or not wt.is_dir():
            continue
        present = [r for r in rels if r not in found and os.path.lexists(wt / r)]
        if not present:
            continue
        links = known_links(wt)
        ignored = set(
            split_z(
                run_git(
                    ["check-ignore", "-z", "--stdin"],
                    wt,
                    input=b"".join(os.fsencode(r) + b"\0" for r in present),
                    ok_codes=(0, 1),
                ).stdout
            )
        )
        for rel in present:
            if rel not in ignored and rel not in links:
                found[rel] = wt / rel
    return found


def _exclude_links(
    dest: Path, common_dir: Path, rels: Sequence[str]
) -> tuple[str | None, list[str]]:
    """Make git ignore the links it would list as untracked: ``(note, problems)``.

    ``node_modules/`` in ``.gitignore`` ignores only a folder, not a link to one. The
    repository's ``info/exclude`` (shared by its worktrees, never committed) gets one anchored
    line per such link, under :data:`EXCLUDE_HEADER`; a line already there is not added again,
    and no line is added that would hide a path git lists in another worktree.
    """
    ignored = _ignored_among(dest, rels)
    listed = [r for r in rels if r not in ignored]
    if not listed:
        return None, []
    exclude = common_dir / "info" / "exclude"
    try:
        # Bytes: the file is the user's, in any encoding (a latin-1 comment must not stop the
        # spawn half-way, links made and not recorded); only whole lines are appended.
        text = exclude.read_bytes()
    except FileNotFoundError:
        text = b""
    lines = {line.rstrip(b"\r") for line in text.split(b"\n")}
    missing = [r for r in listed if os.fsencode(f"/{r}") not in lines]
    clash = _hidden_elsewhere(dest, missing) if missing else {}
    problems = [
        f"did not make git ignore the link {rel}: {path} (in another worktree) is not ignored "
        f"and an `/{rel}` line in {exclude} would hide it there; git lists the link as "
        "untracked here: do not commit it"
        for rel, path in clash.items()
    ]
    new = [f"/{r}" for r in missing if r not in clash]
    if new:
        exclude.parent.mkdir(exist_ok=True)
        head = b"" if EXCLUDE_HEADER.encode() in lines else EXCLUDE_HEADER.encode() + b"\n"
        sep = b"" if not text or text.endswith(b"\n") else b"\n"
        with open(exclude, "ab") as handle:
            handle.write(sep + head + b"".join(os.fsencode(w) + b"\n" for w in new))
    hidden = [r for r in listed if r not in clash]
    if not hidden:
        return None, problems
    return (
        f"git ignores only folders named {', '.join(hidden)} (a `name/` pattern), not links: "
        f"{exclude} ignores the links"
    ), problems


def link_shared(
    dest: Path, common_dir: Path, links: Mapping[str, str]
) -> tuple[dict[str, str], list[str], list[str]]:
    """Create the links of a :class:`SharePlan` in the new worktree ``dest``.

    Returns ``(made, notes, problems)``. A destination that already exists is left alone
    (a problem); nothing is written through a symbolic link in ``dest``.
    """
    made: dict[str, str] = {}
    problems: list[str] = []
    for rel, target in links.items():
        parts = rel.split("/")
        try:
            folder = _open_dest_folder(dest, parts[:-1], rel)
        except UnsafeFile as exc:
            problems.append(str(exc).replace("did not copy", "did not share"))
            continue
        except OSError as exc:
            problems.append(f"could not share {rel}: {exc}")
            continue
        try:
            os.symlink(target, parts[-1], dir_fd=folder)
            made[rel] = target
        except FileExistsError:
            problems.append(f"did not share {rel}: it already exists in the new worktree")
        except OSError as exc:
            problems.append(f"could not share {rel}: {exc}")
        finally:
            os.close(folder)
    notes: list[str] = []
    if made:
        # The links exist now: whatever goes wrong below, they are returned to be recorded
        # (an unrecorded link is "untracked work" to remove, not a link spawn made).
        try:
            note, hidden = _exclude_links(dest, common_dir, list(made))
            problems += hidden
        except (OSError, GitError) as exc:
            problems.append(f"could not make git ignore the links {', '.join(made)}: {exc}")
            note = None
        if note:
            notes.append(note)
    return made, notes, problems


def known_links(worktree: Path) -> frozenset[str]:
    """The shared links spawn made in ``worktree`` that still point where it pointed them."""
    info = read_spawn_info(worktree)
    shared = info.get("shared") if info else None
    if not isinstance(shared, dict):
        return frozenset()
    out = set()
    for rel, target in shared.items():
        if not isinstance(rel, str) or not isinstance(target, str):
            continue
        path = worktree / rel
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode) and os.readlink(path) == target:
                out.add(rel)
        except OSError:
            continue
    return frozenset(out)


def links_into(folder: Path, worktrees: Iterable[Path]) -> list[tuple[Path, str]]:
    """The share links of other ``worktrees`` that point into ``folder``: (worktree, path).

    Removing ``folder`` deletes what they share (ignored there, so not saved by a backup):
    their worktrees would lose it while they still use it.
    """
    root = os.path.realpath(folder)
    found: list[tuple[Path, str]] = []
    for wt in worktrees:
        if os.path.realpath(wt) == root:
            continue
        info = read_spawn_info(wt)
        shared = info.get("shared") if info else None
        if not isinstance(shared, dict):
            continue
        for rel in sorted(known_links(wt)):
            target = os.path.realpath(str(shared[rel]))
            if os.path.commonpath([root, target]) == root:
                found.append((wt, rel))
    return found


def changes_besides_links(wt: WorktreeState) -> tuple[str, ...]:
    """``wt``'s uncommitted changes (paths), leaving out the share links spawn made.

    Empty when ``wt`` is clean, or when all git lists is those links (untracked when the
    repository's exclude line for them was removed): a merge or ``prune --merged`` does not
    stop for them, the removal deletes only the links.
    """
    s = wt.status
    if not wt.dirty:
        return ()
    if s.staged or s.unstaged or s.conflicted or not s.changed_paths:
        return s.changed_paths or ("uncommitted changes",)
    links = known_links(wt.path)
    return tuple(p for p in s.changed_paths if p not in links)


def _ignored_among(worktree: Path, rels: Iterable[str]) -> set[str]:
    """The relative paths of ``rels`` that git ignores in ``worktree``."""
    data = b"".join(os.fsencode(r) + b"\0" for r in rels)
    found = run_git(["check-ignore", "-z", "--stdin"], worktree, input=data, ok_codes=(0, 1))
    return set(split_z(found.stdout))
