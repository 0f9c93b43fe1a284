"""The commits conflict foresight merges, and the unreferenced ones it writes.

A :class:`Commit` is a snapshot, a HEAD, the base branch's tip or a simulated merge; a
:class:`Side` is a worktree (or the base branch) with the commit that stands for it. Commits
wtls writes use :data:`IDENTITY_ENV` and their parents' dates, so the same state gives the same
id. Temporary files live in private folders outside the repository (:class:`TempDir`); folders
left by a killed process are swept (:func:`sweep_stale_temp_dirs`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wtls.git import GitError, run_git

#: Identity of wtls's own (unreferenced) snapshot commits, so they work without user config.
IDENTITY_ENV = {
    "GIT_AUTHOR_NAME": "wtls",
    "GIT_AUTHOR_EMAIL": "wtls@localhost",
    "GIT_COMMITTER_NAME": "wtls",
    "GIT_COMMITTER_EMAIL": "wtls@localhost",
}


@dataclass(frozen=True, kw_only=True)
class Commit:
    """A commit to merge: a snapshot, a HEAD, the base tip or a simulated merge."""

    oid: str
    tree: str
    #: Committer timestamp, reused for commits built on top so dates never go backwards.
    date: int


@dataclass(frozen=True, kw_only=True)
class Side:
    """One side of a merge: a worktree (or the base branch) and the commit standing for it."""

    path: Path
    branch: str | None
    commit: Commit

    @property
    def label(self) -> str:
        """This side's name in messages: its branch, else its folder."""
        return self.branch or f"detached {self.path.name}"


#: Every temporary folder of conflict foresight starts so (stale ones are swept).
TEMP_PREFIX = "wtls-predict-"
#: A temp folder of ours older than this was left by a process that was killed mid-snapshot.
_STALE_TEMP_SECONDS = 3600


class TempDir:
    """A private temporary folder, removed on exit (never inside the repository)."""

    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


#: How :func:`commit_info` and :func:`commit_infos` ask git for a commit (read by _commit_of).
_COMMIT_FORMAT = "--format=%H %T %ct"


def commit_info(cwd: Path, rev: str) -> Commit | None:
    """Commit id, tree and committer date of ``rev``; None if it does not resolve."""
    try:
        out = run_git(
            ["log", "-1", "--no-walk", _COMMIT_FORMAT, "--end-of-options", rev, "--"], cwd
        ).text
    except GitError:
        return None
    return _commit_of(out)


def commit_infos(cwd: Path, oids: Sequence[str]) -> dict[str, Commit]:
    """:func:`commit_info` of each of ``oids`` (full commit ids) in one git process, by id;
    empty when git cannot read one of them (the caller then asks one by one)."""
    wanted = list(dict.fromkeys(oids))
    if not wanted:
        return {}
    try:
        out = run_git(
            ["log", "--no-walk=unsorted", _COMMIT_FORMAT, "--end-of-options", *wanted, "--"],
            cwd,
        ).text
    except GitError:
        return {}
    commits = (_commit_of(line) for line in out.splitlines())
    return {c.oid: c for c in commits if c is not None}


def _commit_of(line: str) -> Commit | None:
    """A commit from a line of :data:`_COMMIT_FORMAT`; None when the line is not one."""
    parts = line.split()
    if len(parts) != 3:
        return None
    return Commit(oid=parts[0], tree=parts[1], date=int(parts[2]))


def make_merge_commits(cwd: Path, items: Sequence[tuple[str, Commit, Commit]]) -> list[Commit]:
    """Unreferenced two-parent commits for simulated merge results, in one git process."""
    with TempDir() as tmp:
        files: list[str] = []
        dates: list[int] = []
        for n, (tree, p1, p2) in enumerate(items):
            date = max(p1.date, p2.date)
            who = f"wtls <wtls@localhost> {date} +0000"
            text = (
                f"tree {tree}\nparent {p1.oid}\nparent {p2.oid}\nauthor {who}\n"
                f"committer {who}\n\nwtls merge-order simulation\n"
            )
            f = tmp / f"c{n}"
            f.write_text(text, encoding="utf-8")
            files.append(str(f))
            dates.append(date)
        out = run_git(
            ["hash-object", "-t", "commit", "-w", "--stdin-paths"],
            cwd,
            input="".join(f"{f}\n" for f in files).encode(),
        ).text.split()
    return [
        Commit(oid=oid, tree=tree, date=date)
        for oid, (tree, _, _), date in zip(out, items, dates, strict=True)
    ]


def sweep_stale_temp_dirs() -> None:
    """Remove our temp folders that a killed process left behind (only old ones: a live
    snapshot takes milliseconds, never an hour)."""
    now = time.time()
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(TEMP_PREFIX):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if (
                entry.is_dir(follow_symlinks=False)
                and (not hasattr(os, "getuid") or st.st_uid == os.getuid())
                and (now - st.st_mtime > _STALE_TEMP_SECONDS)
            ):
                shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            continue
