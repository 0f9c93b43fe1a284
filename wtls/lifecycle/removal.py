"""Remove a worktree without ever losing work: refusals, backup, rename aside, careful deletion."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wtls.backup import (
    Backup,
    BackupChanged,
    Inspection,
    admin_head,
    admin_refs,
    delete_verified,
    deletion_plan,
    inspect_worktree,
    mount_points_inside,
    save_backup,
    save_commit,
    save_refs,
    unreachable_commits,
    verify_folder,
)
from wtls.errors import Fix, Refused
from wtls.git import GitBusy, GitError, run_git
from wtls.lifecycle.common import (
    _files_text,
    _repo_lock,
    _start_dir,
    resolve_worktree,
)
from wtls.lifecycle.files import read_ports
from wtls.lifecycle.names import (
    slugify,
)
from wtls.lifecycle.results import (
    Callback,
    CommandRun,
    LifecycleSettings,
    RemoveResult,
    SetupResult,
)
from wtls.lifecycle.setup import _commands_text, _setup_env, run_setup
from wtls.lifecycle.sharing import known_links, links_into
from wtls.links import absolute
from wtls.processes import ProcessScan, ProcessUse, blockers, describe, stop
from wtls.processes import scan as scan_processes
from wtls.project_config import load_project_config
from wtls.unsaved import UnsavedFinder, refuse_unsaved
from wtls.worktrees import (
    Repository,
    RepositoryState,
    WorktreeState,
    discover,
    read_gitfile,
    repository_state,
)


def _backup_label(wt: WorktreeState) -> str:
    if wt.branch:
        return wt.branch
    return f"detached-{slugify(wt.path.name) or 'worktree'}"


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


class _ChangedMeanwhile(Exception):
    """The folder changed between its check and its removal; it was put back untouched."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__(", ".join(problems[:5]) + (" …" if len(problems) > 5 else ""))


#: The name a folder being removed has while it is checked for the last time:
#: ``.NAME.wtls-removing-PID`` beside where it was.
#: Removing a worktree whose work is backed up first, or that is locked.
REMOVE_ANYWAY = Fix(action="remove", option="force", label="Remove anyway")
#: Unlocking a locked worktree (then it can be removed).
UNLOCK = Fix(action="unlock", label="Unlock")

_ASIDE_MARK = ".wtls-removing-"
#: Written into a worktree's admin dir once its folder is verified and git starts deleting it;
#: holds the backup ref (if any). An interrupted removal with it is finished, not undone.
_DELETING = "wtls-deleting"


def run_dir_of(repository: Repository) -> Path:
    """Where repository-wide commands run: the main worktree when it is there, else the git dir."""
    main = repository.common_dir.parent if repository.common_dir.name == ".git" else None
    return main if main is not None and main.is_dir() else repository.common_dir


def _original_of_aside(folder: Path) -> Path | None:
    name = folder.name
    if not name.startswith(".") or _ASIDE_MARK not in name:
        return None
    base, _, pid = name[1:].rpartition(_ASIDE_MARK)
    return folder.parent / base if base and pid.isdigit() else None


@dataclass(frozen=True)
class _Recovery:
    """What :func:`recover_interrupted_removals` did for one folder."""

    note: str
    #: The worktree whose interrupted removal it finished (its folder and record are gone).
    finished: Path | None = None
    #: Its branch, when it had one.
    branch: str | None = None
    backup: str | None = None


def _finish_deletion(admin: Path, folder: Path, original: Path) -> _Recovery:
    """Finish a removal killed while it deleted a verified folder, deleting only what it may."""
    try:
        marker = json.loads((admin / _DELETING).read_text(encoding="utf-8"))
        plan = {k: marker[k] for k in ("common", "format", "tree", "nested", "ignored", "head")}
    except (OSError, ValueError, KeyError, TypeError):
        return _Recovery(
            f"an interrupted removal of {original} left {folder}: wtls cannot tell what in it "
            "is saved, so it is left as it is"
        )
    saved = marker.get("backup")
    saved_text = f" (its work is saved in {saved})" if saved else ""
    linked = read_gitfile(original) if original.is_dir() else None
    if not folder.exists() and linked is not None and absolute(linked) == absolute(admin):
        # Someone moved the folder back by hand: it is a worktree again, not a leftover.
        (admin / _DELETING).unlink(missing_ok=True)
        (admin / "gitdir").write_bytes(os.fsencode(str(original / ".git")) + b"\n")
        return _Recovery(f"{original} was put back by hand after an interrupted removal: kept")
    kept = delete_verified(folder, plan) if folder.is_dir() else []
    if kept:
        (admin / _DELETING).unlink(missing_ok=True)
        if not original.exists():
            os.rename(folder, original)
            folder = original
        (admin / "gitdir").write_bytes(os.fsencode(str(folder / ".git")) + b"\n")
        return _Recovery(
            f"an interrupted removal of {original} was stopped: files written into it meanwhile "
            f"are kept in {folder}, still a worktree ({_files_text(kept)}){saved_text}"
        )
    try:
        head = (admin / "HEAD").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        head = ""
    run_dir = Path(plan["common"])
    label = head.removeprefix("ref: refs/heads/") if head.startswith("ref: ") else "detached"
    refs = admin_refs(admin)
    if refs:
        save_refs(run_dir, label, refs, "refs of an interrupted removal")
    detached = admin_head(admin)
    if detached and detached != plan.get("head") and unreachable_commits(run_dir, detached):
        save_commit(run_dir, label, detached, "HEAD of an interrupted removal")
    shutil.rmtree(admin, ignore_errors=True)
    return _Recovery(
        f"finished an interrupted removal of {original}{saved_text}",
        finished=original,
        branch=head.removeprefix("ref: refs/heads/")
        if head.startswith("ref: refs/heads/")
        else None,
        backup=saved if isinstance(saved, str) else None,
    )


def recover_interrupted_removals(common_dir: Path) -> list[_Recovery]:
    """Put back the worktree folders that an interrupted removal left renamed aside.

    Called under the repository lock, so no removal is running: an aside folder is left over
    from a wtls that was killed between renaming a folder and deleting it.
    """
    notes: list[_Recovery] = []
    try:
        admins = sorted(p for p in (common_dir / "worktrees").iterdir() if p.is_dir())
    except OSError:
        return notes
    for admin in admins:
        try:
            recorded = Path((admin / "gitdir").read_text(encoding="utf-8").strip())
        except (OSError, UnicodeDecodeError):
            continue
        folder = Path(
            os.path.normpath(recorded if recorded.is_absolute() else admin / recorded)
        ).parent
        original = _original_of_aside(folder)
        if original is not None and (admin / _DELETING).exists():
            notes.append(_finish_deletion(admin, folder, original))
            continue
        if original is not None:
            # Killed after the record was pointed at the aside folder, before deletion began.
            if folder.is_dir() and not original.exists():
                os.rename(folder, original)
                (admin / "gitdir").write_bytes(os.fsencode(str(original / ".git")) + b"\n")
                notes.append(
                    _Recovery(f"put {original} back (an earlier removal of it was interrupted)")
                )
            continue
        if folder.exists() or not folder.parent.is_dir():
            continue
        # Killed right after the rename: the record still names the old path.
        for entry in sorted(folder.parent.iterdir()):
            if _original_of_aside(entry) != folder:
                continue
            linked = read_gitfile(entry)
            if linked is not None and absolute(linked) == absolute(admin):
                os.rename(entry, folder)
                notes.append(
                    _Recovery(f"put {folder} back (an earlier removal of it was interrupted)")
                )
                break
    return notes


def _delete_folder(
    target: WorktreeState, inspection: Inspection, run_dir: Path, saved_in: str | None
) -> list[str]:
    """Delete a verified worktree folder and its record, keeping writers out meanwhile.

    The folder is first renamed aside (atomic, same file system): from then on nothing can
    create a file in it by its path. It is read again there; if anything differs from what was
    checked and saved, it is renamed back and :class:`_ChangedMeanwhile` is raised with nothing
    changed. Only then does git delete it.
    """
    admin = target.gitdir
    if admin is None or not (admin / "gitdir").is_file():
        raise Refused(f"worktree {target.path} has no git record to remove: run `wtls repair`")
    aside = target.path.parent / f".{target.path.name}{_ASIDE_MARK}{os.getpid()}"
    backlink = admin / "gitdir"
    old_backlink = backlink.read_bytes()
    try:
        os.rename(target.path, aside)
    except OSError as exc:
        raise Refused(
            f"cannot move {target.path} aside to remove it safely ({exc.strerror}); nothing was "
            "removed"
        ) from exc
    try:
        backlink.write_bytes(os.fsencode(str(aside / ".git")) + b"\n")
        changed = verify_folder(aside, inspection)
    except BaseException:
        backlink.write_bytes(old_backlink)
        os.rename(aside, target.path)
        raise
    if changed:
        backlink.write_bytes(old_backlink)
        os.rename(aside, target.path)
        raise _ChangedMeanwhile(changed)
    # Everything in it is verified (and saved where needed). wtls deletes it itself, file by
    # file, only what the snapshot holds byte for byte or git ignores: a process working
    # inside may still write by a relative path, and what it wrote is kept.
    plan = deletion_plan(inspection, aside)
    (admin / _DELETING).write_text(json.dumps({"backup": saved_in, **plan}), encoding="utf-8")
    kept = delete_verified(aside, plan)
    if kept:
        # Stop: it stays a worktree, holding only what was written meanwhile.
        (admin / _DELETING).unlink(missing_ok=True)
        backlink.write_bytes(old_backlink)
        os.rename(aside, target.path)
        raise _WrittenMeanwhile(kept)
    notes = _keep_what_moved(admin, target, inspection, run_dir)
    shutil.rmtree(admin)
    return notes


def _keep_what_moved(
    admin: Path, target: WorktreeState, inspection: Inspection, run_dir: Path
) -> list[str]:
    """Refs made in the worktree while it was deleted get a backup ref before its record goes."""
    label = _backup_label(target)
    notes: list[str] = []
    refs = [r for r in admin_refs(admin) if r not in set(inspection.own_refs)]
    if refs:
        where = save_refs(run_dir, label, refs, "refs made during removal")
        notes.append(f"refs it made meanwhile are saved under {where}/")
    head = admin_head(admin)
    if head and head != inspection.head and unreachable_commits(run_dir, head):
        ref = save_commit(run_dir, label, head, "HEAD moved during removal")
        notes.append(f"a commit it made meanwhile is saved in {ref}")
    return notes


class _WrittenMeanwhile(Exception):
    """Files were written into a folder while it was being deleted; they were kept."""

    def __init__(self, kept: Sequence[str]) -> None:
        super().__init__(_files_text(list(kept)))
        self.kept = tuple(kept)


def _module_git_dirs(modules: Path) -> list[Path]:
    """The git dirs of submodules under a ``modules`` folder (nested ones too)."""
    found: list[Path] = []
    if not modules.is_dir():
        return found
    for here, dirs, files in os.walk(modules):
        if "HEAD" in files and "objects" in dirs:
            found.append(Path(here))
            dirs[:] = [d for d in dirs if d == "modules"]
    return found


def _check_removable(
    target: WorktreeState, repository: Repository, force: bool
) -> tuple[Inspection, list[str]]:
    """Inspect ``target`` and list what a removal would lose; refuse what must not go."""
    if _inside(repository.common_dir, target.path):
        raise Refused(
            f"the repository's git data ({repository.common_dir}) lies inside {target.path}: "
            "it cannot be removed"
        )
    mounts = mount_points_inside(target.path)
    if mounts:
        raise Refused(
            f"a file system is mounted inside {target.path}: "
            f"{', '.join(str(m) for m in mounts[:5])}. Removing the folder would delete the "
            "files of what is mounted there; unmount it first (`umount PATH`); nothing was "
            "removed"
        )
    inspection = inspect_worktree(target.path)
    inside = inspection.worktrees_inside
    if inside:
        names = ", ".join(str(target.path / n.path) for n in inside)
        raise Refused(
            f"another worktree lies inside {target.path}: {names}. Remove or move it first "
            "(`wtls remove`, `wtls move`); removing the outer one would delete its files"
        )
    odd = inspection.unsavable
    if odd:
        what = {"bare": "a bare repository", "unknown": "a .git wtls cannot read"}
        names = ", ".join(f"{target.path / n.path} ({what[n.kind]})" for n in odd)
        raise Refused(
            f"{target.path} holds git data that wtls cannot back up: {names}. Move it out of the "
            "folder first; nothing was removed"
        )
    if target.gitdir is not None:
        checked_out = {absolute(n.git_dir) for n in inspection.repositories_inside}
        idle = [
            d for d in _module_git_dirs(target.gitdir / "modules") if absolute(d) not in checked_out
        ]
        if idle:
            names = ", ".join(str(d) for d in idle)
            raise Refused(
                f"{target.path} keeps git data of submodules that are not checked out: {names}. "
                "`git submodule update --init` there checks them out so wtls can save them; "
                "nothing was removed"
            )
    elsewhere = [
        (n, admin)
        for n in inspection.repositories_inside
        for admin in sorted((n.git_dir / "worktrees").glob("*"))
        if admin.is_dir()
    ]
    if elsewhere:
        names = ", ".join(f"{target.path / n.path} ({admin.name})" for n, admin in elsewhere)
        raise Refused(
            f"a repository inside {target.path} has linked worktrees of its own, whose git data "
            f"lives in it: {names}. Remove those worktrees first (`git worktree remove` in that "
            "repository); nothing was removed"
        )
    # A link `share` made (recorded, still pointing where spawn pointed it) is not work: it
    # goes with the folder, and what it points at stays (the walks never follow a link).
    shared = known_links(target.path)
    losses = [loss for loss in inspection.losses() if loss not in shared]
    if target.operation is not None:
        losses.append(f"a {target.operation} in progress")
    if losses and not force:
        raise Refused(
            f"worktree {target.path} has uncommitted changes: {_files_text(losses)}. Commit "
            f"them, or {REMOVE_ANYWAY.slot} to remove it anyway (wtls first saves all of it in "
            "a backup ref and says how to restore it)",
            fixes=(REMOVE_ANYWAY,),
        )
    if losses and target.head is None:
        raise Refused(
            f"worktree {target.path} has no commit yet, so wtls cannot back up its changes: "
            "commit them first"
        )
    return inspection, losses


def _refuse_if_linked_into(state: RepositoryState, target: WorktreeState, force: bool) -> None:
    """Refuse (unless forced) to remove a folder other worktrees' share links point into.

    What they share is ignored here, so disposable by the usual rules and never in a backup;
    but it is also what another, still existing worktree uses as its own (its ``.env``, its
    ``data/``): deleting it there must not happen unseen.
    """
    if force:
        return
    linked = links_into(target.path, [w.path for w in state.worktrees if w.path.is_dir()])
    if linked:
        names = ", ".join(f"{wt / rel}" for wt, rel in linked[:10]) + (
            " …" if len(linked) > 10 else ""
        )
        raise Refused(
            f"other worktrees link into {target.path} (`share` in .wtls.toml): {names}. "
            "Removing it deletes what they share (ignored, so no backup keeps it). Remove those "
            f"worktrees first, or {REMOVE_ANYWAY.slot} to delete it anyway; nothing was removed",
            fixes=(REMOVE_ANYWAY,),
        )


#: Seconds a process gets between SIGTERM and SIGKILL (``--kill``).
KILL_GRACE = 5.0


def _scan_for(state: RepositoryState, target: WorktreeState) -> ProcessScan:
    """Scan every worktree folder at once, so a nested worktree's processes stay its own."""
    return scan_processes([w.path for w in state.worktrees if w.path.is_dir()] + [target.path])


def _busy_text(path: Path, busy: Sequence[ProcessUse]) -> str:
    listed = "; ".join(describe(u) for u in busy[:10]) + (" …" if len(busy) > 10 else "")
    many = len(busy) != 1
    return f"{len(busy)} process{'es' * many} still use{'' if many else 's'} {path}: {listed}"


def refuse_if_busy(scan: ProcessScan, target: WorktreeState, *, kill: bool) -> None:
    """Refuse a removal while processes use the folder (unless ``kill`` may end them all)."""
    busy = blockers(scan, target.path)
    if not busy:
        return
    if not kill:
        raise Refused(
            f"{_busy_text(target.path, busy)}. Stop them, or pass --kill to end them "
            "(SIGTERM, then SIGKILL) before removing it; nothing was removed"
        )
    own = [u for u in busy if u in scan.ancestors_of(target.path)]
    if own:
        raise Refused(
            f"{_busy_text(target.path, own)}: wtls itself runs inside "
            f"{'it' if len(own) == 1 else 'them'}, so it will not end "
            f"{'it' if len(own) == 1 else 'them'}. Run wtls from outside the worktree; "
            "nothing was removed"
        )


def stop_processes(
    scan: ProcessScan, state: RepositoryState, target: WorktreeState
) -> tuple[ProcessUse, ...]:
    """End the processes using ``target`` and check that none is left; what was ended."""
    busy = blockers(scan, target.path)
    if not busy:
        return ()
    failed = stop(busy, scan.starts, grace=KILL_GRACE)
    if failed:
        listed = ", ".join(f"pid {pid} ({why})" for pid, why in failed.items())
        raise Refused(
            f"could not end every process using {target.path}: {listed}; nothing was removed"
        )
    again = blockers(_scan_for(state, target), target.path)
    if again:
        raise Refused(
            f"{_busy_text(target.path, again)} (started after the others were ended); "
            "nothing was removed"
        )
    return busy


def _shell_notes(scan: ProcessScan, target: WorktreeState, *, future: bool) -> list[str]:
    shells = [u for u in scan.ancestors_of(target.path) if u.reason == "cwd"]
    return [
        f"pid {u.pid} ({u.command}), which runs wtls, "
        + ("would be" if future else "is")
        + " left in a deleted folder: `cd` out of it"
        for u in shells
    ]


def _teardown_commands(target: WorktreeState, force: bool) -> tuple[tuple[str, ...], ...]:
    """The ``teardown`` of the worktree's own ``.wtls.toml``; a bad file refuses unless forced."""
    try:
        return load_project_config(target.path).teardown
    except Refused as exc:
        if force:
            return ()
        raise Refused(
            f"{exc}; wtls cannot tell what its teardown is. Fix the file, or pass --force to "
            "remove it without a teardown; nothing was removed"
        ) from exc


def _skipped_teardown(commands: Sequence[Sequence[str]], why: str) -> SetupResult:
    return SetupResult(
        skipped=f"{why} ({_commands_text(commands)})",
        commands=tuple(CommandRun(command=shlex.join(c), exit_code=None) for c in commands),
    )


def _remove_locked(
    repository: Repository,
    settings: LifecycleSettings,
    start_dir: Path,
    worktree: str,
    *,
    force: bool,
    delete_branch: bool,
    keep_branch: bool,
    dry_run: bool,
    kill: bool = False,
    trusted: bool = False,
    on_output: Callback = None,
    unsaved: UnsavedFinder | None = None,
) -> RemoveResult:
    recoveries = [] if dry_run else recover_interrupted_removals(repository.common_dir)
    recovered = [r.note for r in recoveries]
    state = repository_state(repository, settings.base_branch)
    try:
        target = resolve_worktree(state, worktree, cwd=start_dir)
    except Refused:
        # Its own interrupted removal, finished just now: that is the removal asked for.
        spec = absolute(start_dir / Path(worktree).expanduser())
        name = worktree.removeprefix("refs/heads/")
        done = next(
            (r for r in recoveries if r.finished is not None and r.branch == name),
            None,
        )
        done = next((r for r in recoveries if r.finished == spec), done)
        if done is None or done.finished is None:
            raise
        return RemoveResult(
            path=done.finished,
            branch=done.branch,
            removed=True,
            backup_ref=done.backup,
            restore_command=(
                f"cd {shlex.quote(str(run_dir_of(repository)))} && {wtls_command()} restore "
                f"{shlex.quote(done.backup)}"
                if done.backup
                else None
            ),
            message="; ".join(recovered),
        )
    main = state.main
    run_dir = main.path if main is not None and main.path.is_dir() else repository.common_dir
    if target.is_main:
        raise Refused(f"{target.path} is the main worktree: it cannot be removed")
    if target.bare:
        raise Refused("the bare repository itself cannot be removed")
    if target.prunable or not target.path.is_dir():
        raise Refused(
            f"the folder of worktree {target.path} is already gone: `wtls prune` forgets it"
        )
    if target.broken:
        raise Refused(f"worktree {target.path} is broken ({target.broken}): run `wtls repair`")
    if target.locked and not force:
        reason = f" ({target.lock_reason})" if target.lock_reason else ""
        raise Refused(
            f"worktree {target.path} is locked{reason}: unlock it ({UNLOCK.slot}) or "
            f"{REMOVE_ANYWAY.slot}",
            fixes=(UNLOCK, REMOVE_ANYWAY),
        )
    # A forced dry run (an editor's confirmation) lists them; anything else refuses unless forced.
    unsaved_now = tuple(unsaved([target.path])) if force and dry_run and unsaved else ()
    if not force:
        refuse_unsaved(
            unsaved,
            [target.path],
            what=f"removing worktree {target.path} would delete",
            fix=REMOVE_ANYWAY,
        )
    branch = target.branch
    base = state.base_branch
    merged = target.base is not None and target.base.merged
    delete = branch is not None and branch != base and not keep_branch and (merged or delete_branch)
    inspection, losses = _check_removable(target, repository, force)
    _refuse_if_linked_into(state, target, force)
    teardown_commands = _teardown_commands(target, force)
    scan = _scan_for(state, target)
    busy = blockers(scan, target.path)
    orphaned = (
        branch is None and target.head is not None and unreachable_commits(run_dir, target.head)
    )
    if dry_run:
        seen = [
            f"{len(busy)} process{'es' * (len(busy) != 1)} use it (--kill ends them)"
            if busy
            else None,
            scan.note,
            *_shell_notes(scan, target, future=True),
        ]
        return RemoveResult(
            processes=busy,
            teardown=_skipped_teardown(
                teardown_commands,
                "dry run: would run its teardown"
                if trusted
                else "the workspace is not trusted: its teardown would not run",
            )
            if teardown_commands
            else SetupResult(),
            path=target.path,
            branch=branch,
            removed=False,
            dry_run=True,
            would_delete_branch=delete,
            would_back_up=tuple(losses),
            needs_force=target.locked or bool(losses) or bool(unsaved_now),
            unsaved=unsaved_now,
            message=f"would remove {target.path}"
            + (" after backing up its changes" if losses else "")
            + (
                f", discarding the unsaved edits of {len(unsaved_now)} file"
                f"{'s' * (len(unsaved_now) != 1)} open in an editor"
                if unsaved_now
                else ""
            )
            + (" after saving its detached commits in a backup ref" if orphaned else "")
            + (f" and delete branch {branch}" if delete else "")
            + "".join(f"; {n}" for n in seen if n),
        )
    if delete and (repository.common_dir / "packed-refs.lock").exists():
        # Deleting the branch needs this lock: say "busy" now, while nothing has changed.
        raise GitBusy(
            ["branch", "-D"],
            -1,
            f"Unable to create '{repository.common_dir / 'packed-refs.lock'}': another git "
            "process is updating refs",
            run_dir,
        )
    label = _backup_label(target)
    made_refs: list[str] = []
    teardown = SetupResult()
    early_backup: Backup | None = None
    if teardown_commands and not trusted:
        teardown = _skipped_teardown(
            teardown_commands, "the workspace is not trusted: its teardown was not run"
        )
    elif teardown_commands:
        if losses:
            # Forced: the work is saved before a teardown command can touch it.
            early_backup = save_backup(inspection, run_dir, label, branch)
            made_refs.append(early_backup.ref)
        teardown = run_setup(
            target.path,
            teardown_commands,
            env=_setup_env(target.path, branch, read_ports(target.path)),
            on_output=on_output,
            timeout=settings.setup_timeout,
            kind="teardown",
        )
        if not teardown.ok and not force:
            raise Refused(
                f"{teardown.message} Nothing was removed: fix it, or pass --force to remove "
                "it anyway"
            )
        scan = _scan_for(state, target)  # the teardown may have stopped some
    stopped: tuple[ProcessUse, ...] = ()
    try:
        refuse_if_busy(scan, target, kill=kill)
        stopped = stop_processes(scan, state, target) if kill else ()
        if stopped or teardown.ran:
            # What they did (saved a file as they stopped, a teardown's leftovers) is read
            # again: neither a process ended by --kill nor a teardown takes work with it.
            inspection, losses = _check_removable(target, repository, force)
    except Refused as exc:
        # Say what did happen before the refusal: a teardown ran, processes were ended, the
        # work was saved before the teardown.
        did = [f"ended {_pids(stopped)}"] if stopped else []
        did += ["its teardown ran"] if teardown.ran else []
        if not did:
            raise
        saved = f" (its work is saved in {early_backup.ref})" if early_backup else ""
        raise Refused(f"{' and '.join(did)}{saved}, then: {exc}") from exc
    backup: Backup | None = None
    late_notes: list[str] = []
    for attempt in range(3):
        try:
            if losses:
                backup = save_backup(inspection, run_dir, label, branch)
                made_refs.append(backup.ref)
            late_notes = _delete_folder(target, inspection, run_dir, backup.ref if backup else None)
            break
        except BackupChanged as exc:
            # Files changed while the backup was read: nothing was saved or removed; again.
            if attempt == 2:
                raise Refused(
                    f"files in {target.path} kept changing while wtls saved them ({exc}); "
                    "nothing was removed. Stop what writes there and retry"
                ) from exc
            inspection, losses = _check_removable(target, repository, force)
            continue
        except GitError as exc:
            if made_refs:
                exc.stderr = f"{exc.stderr.strip()} (its work is saved in {', '.join(made_refs)})"
            raise
        except _WrittenMeanwhile as exc:
            saved = f"; everything else is saved in {backup.ref}" if backup else ""
            return RemoveResult(
                path=target.path,
                branch=branch,
                removed=False,
                backup_ref=backup.ref if backup else None,
                restore_command=_restore_command(run_dir, target, backup, None, None, None),
                would_back_up=tuple(losses) if backup else (),
                nested_saved=backup.nested if backup else (),
                message=f"stopped removing {target.path}: files were written into it meanwhile",
                problems=(
                    f"files were written into {target.path} while wtls removed it: {exc}. They "
                    f"are kept there (it is still a worktree, holding only them){saved}",
                ),
            )
        except _ChangedMeanwhile as exc:
            if attempt == 2:
                kept = f" (backup refs made meanwhile: {', '.join(made_refs)})" if made_refs else ""
                raise Refused(
                    f"files in {target.path} kept changing while wtls removed it ({exc}); "
                    f"nothing was removed{kept}. Stop what writes there and retry"
                ) from exc
            inspection, losses = _check_removable(target, repository, force)
    head_ref: str | None = None
    problems: list[str] = []
    if orphaned and backup is None and target.head is not None:
        try:
            head_ref = save_commit(run_dir, label, target.head, "detached HEAD before removal")
        except GitError as exc:
            problems.append(f"could not save its detached commits in a ref: {exc}")
    deleted = False
    branch_ref: str | None = None
    if delete and branch is not None:
        try:
            tip = run_git(["rev-parse", "--verify", f"refs/heads/{branch}"], run_dir).text
            # "Merged" may mean merged by content (a squash, or commits that undo each
            # other): the branch's own commits are then in no other ref, so they are saved.
            in_base = (
                merged
                and base is not None
                and run_git(
                    ["merge-base", "--is-ancestor", tip, f"refs/heads/{base}"],
                    run_dir,
                    ok_codes=(0, 1),
                ).returncode
                == 0
            )
            if not in_base and (backup is None or target.head != tip):
                branch_ref = save_commit(run_dir, branch, tip, "branch before deletion")
            run_git(["branch", "-D", "--end-of-options", branch], run_dir)
            deleted = True
        except GitError as exc:
            problems.append(f"could not delete branch {branch}: {exc.stderr.strip() or exc}")
    restore = _restore_command(
        run_dir, target, backup, head_ref, branch if deleted else None, branch_ref
    )
    notes = [*recovered]
    if teardown.ran:
        notes.append(
            f"ran its teardown ({len(teardown.commands)} command(s))"
            if teardown.ok
            else f"its teardown failed ({teardown.message}); removed anyway (--force)"
        )
    elif teardown.skipped:
        notes.append(f"{teardown.skipped}; pass --trust to run it")
    if early_backup is not None:
        notes.append(f"its work as it was before the teardown is saved in {early_backup.ref}")
    if stopped:
        notes.append(f"ended {_pids(stopped)}")
    notes += [f"removed {target.path}", *late_notes, *_shell_notes(scan, target, future=False)]
    if scan.note:
        notes.append(scan.note)
    if backup is not None:
        notes.append(f"its uncommitted work is saved in {backup.ref}")
    if head_ref is not None:
        notes.append(f"its detached commits are saved in {head_ref}")
    if deleted:
        notes.append(
            f"deleted branch {branch}"
            + (f" (its tip is saved in {branch_ref})" if branch_ref else "")
        )
    elif branch is not None and branch != base:
        notes.append(f"kept branch {branch}" + ("" if merged else f" (not merged into {base})"))
    return RemoveResult(
        path=target.path,
        branch=branch,
        removed=True,
        backup_ref=backup.ref if backup else (head_ref or branch_ref),
        restore_command=restore,
        branch_deleted=deleted,
        would_back_up=tuple(losses) if backup else (),
        nested_saved=backup.nested if backup else (),
        message="; ".join(notes),
        problems=tuple(problems),
        processes=stopped,
        teardown=teardown,
    )


def _pids(uses: Sequence[ProcessUse]) -> str:
    pids = list(dict.fromkeys(u.pid for u in uses))
    return f"process{'es' * (len(pids) != 1)} " + ", ".join(map(str, pids))


def wtls_command() -> str:
    """How a printed command runs this wtls: ``wtls`` when that is on PATH, else its Python."""
    found = shutil.which("wtls")
    bundled = os.environ.get("WTLS_BUNDLED_LIBS")
    if bundled:
        # The server a VS Code .vsix carries: importable only with its libraries on the path.
        return f"PYTHONPATH={shlex.quote(bundled)} {shlex.quote(sys.executable)} -m wtls"
    here = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if found is not None and (here is None or Path(found).resolve() == here or "wtls" in here.name):
        return "wtls"
    return f"{shlex.quote(sys.executable)} -m wtls"


def _restore_command(
    run_dir: Path,
    target: WorktreeState,
    backup: Backup | None,
    head_ref: str | None,
    deleted_branch: str | None,
    branch_ref: str | None,
) -> str | None:
    q = shlex.quote
    if backup is not None:
        # `wtls restore` also creates a deleted branch again at the saved HEAD.
        return f"cd {q(str(run_dir))} && {wtls_command()} restore {q(backup.ref)}"
    repo = f"git -C {q(str(run_dir))}"
    if head_ref is not None:
        return f"{repo} worktree add --detach {q(str(target.path))} {q(head_ref)}"
    if deleted_branch is not None and branch_ref is not None:
        return f"{repo} branch {q(deleted_branch)} {q(branch_ref)}"
    return None  # nothing of it is lost


def remove(
    start: Path | str,
    worktree: str,
    *,
    force: bool = False,
    delete_branch: bool = False,
    dry_run: bool = False,
    kill: bool = False,
    trusted: bool = False,
    on_output: Callback = None,
    settings: LifecycleSettings | None = None,
    unsaved: UnsavedFinder | None = None,
) -> RemoveResult:
    """Remove a worktree safely.

    Refuses the main worktree, a locked one (unless ``force``), and one with uncommitted or
    untracked changes (listing them) unless ``force``; a forced removal first saves all of them
    in a verified backup ref and returns the command that restores them. The branch is deleted
    when it is merged into base (squash and rebase merges count), or on request
    (``delete_branch``; its tip is then kept in a backup ref). ``dry_run`` checks everything and
    says what would happen without changing anything.

    Refused while processes use the folder (their working directory, an open file or their
    executable lies inside: :mod:`wtls.processes`); ``kill`` ends them first (SIGTERM, then
    SIGKILL after :data:`KILL_GRACE` seconds), checks they are gone, reads the folder again and
    only then removes it.

    The worktree's own ``.wtls.toml`` ``teardown`` commands run before the removal, only when
    ``trusted`` (else they are skipped and the result says so); one that fails stops the
    removal with nothing removed, unless ``force``. Their output goes to ``on_output``.

    Refused, unless ``force``, while an editor holds unsaved buffers of files in the worktree
    (``unsaved`` asks the editors' engine: :mod:`wtls.unsaved`).
    """
    settings = settings or LifecycleSettings()
    start_dir = _start_dir(start)
    repository = discover(start_dir)
    with _repo_lock(repository.common_dir):
        return _remove_locked(
            repository,
            settings,
            start_dir,
            worktree,
            force=force,
            delete_branch=delete_branch,
            keep_branch=False,
            dry_run=dry_run,
            kill=kill,
            trusted=trusted,
            on_output=on_output,
            unsaved=unsaved,
        )
