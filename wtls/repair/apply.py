"""Repairing broken worktree links: ``git worktree repair`` from the side that still works.

:func:`repair` diagnoses (:mod:`wtls.repair.diagnosis`), runs ``git worktree repair`` from each
repository that can rewrite the stale direction of a link, re-attaches a worktree whose admin
dir was deleted (``branch``), and verifies both directions afterwards. Nothing here deletes a
user's file: repairs only rewrite the two link files (reported before → after).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from wtls.errors import Fix, Refused
from wtls.git import GitError, run_git
from wtls.links import (
    absolute,
    admin_backlink,
    admin_dirs,
    main_folder,
    quote,
    read_gitfile,
    read_text,
)
from wtls.repair.diagnosis import REPAIR, Breakage, check_link, describe, diagnose
from wtls.worktrees import RepositoryError


@dataclass(frozen=True, kw_only=True)
class LinkChange:
    """One link file that a repair rewrote (``None`` = the file did not exist)."""

    file: Path
    before: str | None
    after: str | None


@dataclass(frozen=True, kw_only=True)
class RepairResult:
    """What :func:`repair` found, did (or would do) and verified."""

    applied: bool
    #: What was broken before.
    broken: tuple[Breakage, ...]
    #: The git commands run (applied) or that would run (dry run), shell-quoted for display.
    commands: tuple[str, ...]
    changed: tuple[LinkChange, ...]
    #: Both directions of every involved link check out and ``git status`` works in each.
    verified: bool
    messages: tuple[str, ...]
    #: What is still broken (after the repair, or now for a dry run).
    remaining: tuple[Breakage, ...]
    #: For a dry run that found something to repair: running it with ``apply``.
    fix: Fix | None = None

    @property
    def breakages(self) -> tuple[Breakage, ...]:
        """What was broken before (the wire's ``broken``)."""
        return self.broken


def _link_files(commons: Iterable[Path], folders: Iterable[Path]) -> dict[Path, str | None]:
    """Current text of every link file involved: each admin dir's ``gitdir`` and the
    worktrees' ``.git`` files."""
    files: dict[Path, str | None] = {}
    folder_set = {absolute(f) for f in folders}
    for common in commons:
        for admin in admin_dirs(common):
            files[admin / "gitdir"] = read_text(admin / "gitdir")
            recorded = admin_backlink(admin)
            if recorded is not None:
                folder_set.add(recorded.parent)
    for folder in folder_set:
        dotgit = folder / ".git"
        if dotgit.is_file() or not dotgit.exists():
            files[dotgit] = read_text(dotgit) if dotgit.is_file() else None
    return files


def _changes(before: dict[Path, str | None], after: dict[Path, str | None]) -> list[LinkChange]:
    """Link files whose text differs between two snapshots."""
    out: list[LinkChange] = []
    for file in sorted(set(before) | set(after)):
        old, new = before.get(file), after.get(file)
        if old != new:
            out.append(
                LinkChange(
                    file=file,
                    before=old.strip() if old is not None else None,
                    after=new.strip() if new is not None else None,
                )
            )
    return out


def _repair_args(folders: Sequence[Path]) -> list[str]:
    """``git worktree repair [-- folders...]``."""
    return ["worktree", "repair", *(["--", *map(str, folders)] if folders else [])]


def _cmd(cwd: Path, args: Sequence[str]) -> str:
    """A git command as a user would type it."""
    return " ".join(["git", "-C", quote(cwd), *(quote(a) for a in args)])


def _collect(targets: Sequence[Path], cands: Sequence[Path]) -> tuple[list[Breakage], list[str]]:
    """Diagnose every target; targets outside any repository give a message, not an error."""
    found: list[Breakage] = []
    messages: list[str] = []
    any_repo = False
    for target in targets:
        try:
            for b in diagnose(target, cands):
                if all(x.worktree != b.worktree for x in found):
                    found.append(b)
            any_repo = True
        except RepositoryError as exc:
            messages.append(str(exc))
    if not any_repo:
        raise Refused(
            "none of these folders belongs to a git repository: "
            + "; ".join(messages or [str(t) for t in targets])
        )
    return found, messages


def repair(
    start: Path,
    paths: Sequence[Path] = (),
    *,
    apply: bool,
    branch: str | None = None,
    candidates: Sequence[Path] = (),
) -> RepairResult:
    """Find broken links around ``start`` and ``paths`` and (with ``apply``) repair them.

    ``paths`` are worktree folders at their new places (a moved main worktree, moved linked
    ones). The repair runs ``git worktree repair -- <linked paths>`` from the repository that
    still works, which rewrites the stale direction of each link; then both directions are
    verified. ``branch`` re-attaches a worktree whose admin dir was deleted (only one such
    worktree at a time). Without ``apply`` nothing changes and the result is the plan.
    """
    targets = [absolute(Path(start)), *(absolute(Path(p)) for p in paths)]
    for t in targets:
        if not t.exists():
            raise Refused(f"{t} does not exist: name the folders where the worktrees are now")
    cands = [*targets, *(absolute(Path(c)) for c in candidates)]
    breakages, messages = _collect(targets, cands)

    # Group the repairable links by the repository that can rewrite them.
    per_repo: dict[Path, list[Path]] = {}
    for b in breakages:
        if b.repairable and b.repository is not None:
            folders = per_repo.setdefault(absolute(b.repository), [])
            # Without arguments git repairs every link it can find from the repository's own
            # records (a moved main worktree, a deleted .git file); a folder git does not know
            # about yet (moved by hand) must be named.
            if b.kind != "dotgit-missing":
                folders.append(b.worktree)
    readd = [
        b
        for b in breakages
        if b.kind == "gitdir-missing" and b.repository is not None and not b.repairable
    ]
    if branch is not None and len(readd) != 1:
        raise Refused(
            "--branch re-attaches exactly one worktree whose git data was deleted; "
            f"found {len(readd)} such worktrees here: name only that worktree's folder"
        )

    commands: list[str] = []
    for common, folders in per_repo.items():
        commands.append(_cmd(main_folder(common), _repair_args(folders)))
    if branch is not None:
        b = readd[0]
        assert b.repository is not None
        commands.append(
            f"(re-attach {b.worktree} to {branch}: `git worktree add --no-checkout` into a "
            "temporary folder, point the .git file at the new git data, "
            f"{_cmd(main_folder(b.repository), ['worktree', 'repair', '--', str(b.worktree)])}"
            f", {_cmd(b.worktree, ['reset', '-q'])})"
        )

    if not apply:
        plan = [describe(breakages)] if breakages else []
        if commands:
            plan.append("Repairing runs:\n  " + "\n  ".join(commands))
        return RepairResult(
            applied=False,
            broken=tuple(breakages),
            commands=tuple(commands),
            changed=(),
            verified=not breakages,
            messages=tuple([*messages, *plan]),
            remaining=tuple(breakages),
            fix=REPAIR if commands else None,
        )

    commons = {*per_repo, *(absolute(b.repository) for b in breakages if b.repository)}
    involved = {b.worktree for b in breakages} | set(targets)
    before = _link_files(commons, involved)
    for common, wt_folders in per_repo.items():
        result = run_git(
            _repair_args(wt_folders),
            main_folder(common),
            ok_codes=(0, 1),
        )
        # git prints one "repair: ..." line per fix and "error: ..." for what it could not do.
        messages.extend(f"git: {line}" for line in result.stderr.splitlines() if line.strip())
    if branch is not None:
        messages.extend(_reattach(readd[0], branch))

    after = _link_files(commons, involved)
    changed = _changes(before, after)
    repaired_folders = {b.worktree for b in breakages}
    remaining, more = _collect([t for t in [*targets, *repaired_folders] if t.exists()], cands)
    messages.extend(m for m in more if m not in messages)
    problems: list[str] = []
    for common in commons:
        for admin in admin_dirs(common):
            recorded = admin_backlink(admin)
            if recorded is not None and recorded.parent.is_dir():
                problem = check_link(recorded.parent)
                if problem is not None:
                    problems.append(problem)
    for b in breakages:
        if b.worktree.is_dir() and all(r.worktree != b.worktree for r in remaining):
            messages.append(f"repaired: {b.worktree} ({b.kind})")
    messages.extend(problems)
    for r in remaining:
        messages.append(f"still broken: {r.worktree}: {r.message} Fix: {r.fix}")
    return RepairResult(
        applied=True,
        broken=tuple(breakages),
        commands=tuple(commands),
        changed=tuple(changed),
        verified=not remaining and not problems,
        messages=tuple(messages),
        remaining=tuple(remaining),
    )


def _reattach(b: Breakage, ref: str) -> list[str]:
    """Give a worktree whose admin dir was deleted a new one on ``ref``, keeping every file.

    ``git worktree add --no-checkout`` into a fresh empty temporary folder creates the admin dir
    (HEAD on ``ref``, no index) without writing any file of the project; the worktree's ``.git``
    file (which pointed nowhere) is pointed at it; ``git worktree repair`` records the real
    folder; ``git reset -q`` builds the index from HEAD, touching only the index. The temporary
    folder held nothing but the ``.git`` file that git wrote there, and only that is removed.
    """
    assert b.repository is not None
    main = main_folder(b.repository)
    is_branch = True
    try:
        run_git(["rev-parse", "--verify", "--quiet", f"refs/heads/{ref}"], main)
    except GitError:
        is_branch = False
        try:
            run_git(
                ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], main
            )
        except GitError as exc:
            raise Refused(f"{ref!r} is neither a branch nor a commit of {main}") from exc
    old_id = b.gitdir.name if b.gitdir is not None else b.worktree.name
    holder = Path(tempfile.mkdtemp(prefix="wtls-reattach-"))
    temp_wt = holder / old_id
    args = ["worktree", "add", "--no-checkout"]
    args += ["--", str(temp_wt), ref] if is_branch else ["--detach", "--", str(temp_wt), ref]
    try:
        try:
            run_git(args, main)
        except GitError as exc:
            raise Refused(
                f"git would not create a worktree for {ref!r}: {exc.stderr or exc}; nothing "
                "was changed"
            ) from exc
        new_admin = read_gitfile(temp_wt)
        if new_admin is None or not new_admin.is_dir():
            raise Refused(f"git did not create the worktree data for {ref!r}; nothing changed")
        (b.worktree / ".git").write_text(f"gitdir: {new_admin}\n", encoding="utf-8")
        run_git(["worktree", "repair", "--", str(b.worktree)], main, ok_codes=(0, 1))
        run_git(["reset", "-q"], b.worktree)
    finally:
        # Only what git wrote into our own empty temporary folder.
        for leftover in (temp_wt / ".git",):
            if leftover.is_file():
                leftover.unlink()
        for folder in (temp_wt, holder):
            with contextlib.suppress(OSError):
                folder.rmdir()
    what = f"branch {ref}" if is_branch else f"commit {ref} (detached)"
    return [
        f"re-attached {b.worktree} to {what} with new git data {new_admin}; its files were "
        "not touched (differences from the branch now show as changes)"
    ]
