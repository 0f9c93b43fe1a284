"""Spawn a worktree for a fresh AI session, and open one."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from wtls.errors import Refused
from wtls.git import GitBusy, GitError, run_git, split_z
from wtls.lifecycle.agent_hooks import wire_claude_hooks
from wtls.lifecycle.common import (
    _open_repo,
    _Repo,
    _repo_lock,
    _say,
    _start_dir,
    resolve_worktree,
)
from wtls.lifecycle.files import (
    CopiedFiles,
    _ensure_wtls_dir,
    _write_private,
    copy_ignored_files,
    read_ports,
)
from wtls.lifecycle.names import (
    _Plan,
    _plan,
    _ref_exists,
)
from wtls.lifecycle.results import (
    LARGE_CHECKOUT,
    PORTS_FILE,
    PROMPT_FILE,
    SPAWN_INFO_FILE,
    WTLS_DIR,
    Callback,
    CommandRun,
    LifecycleSettings,
    OpenResult,
    SetupResult,
    SpawnResult,
)
from wtls.lifecycle.setup import (
    _commands_text,
    _setup_env,
    assign_ports,
    run_open_command,
    run_setup,
)
from wtls.lifecycle.sharing import check_shares, link_shared
from wtls.project_config import ProjectConfig, check_relative_path, load_project_config
from wtls.safety import UnsafeFile
from wtls.worktrees import (
    discover,
    repository_state,
    worktree_payload,
)

#: The agents ``spawn(agent=...)`` knows (None: none).
SPAWN_AGENTS = (None, "claude", "codex")


def _count_files(folder: Path) -> int:
    count = 0
    for _root, dirs, files in os.walk(folder):
        if ".git" in dirs:
            dirs.remove(".git")
        count += len(files)
    return count


def _worktree_add(
    plan: _Plan, run_dir: Path, on_progress: Callback, sparse: Sequence[str] = ()
) -> None:
    """``git worktree add -b BRANCH -- PATH BASE``, reporting progress on large checkouts.

    With ``sparse`` paths: ``--no-checkout``, then ``git sparse-checkout set --cone -- PATHS``
    and ``git checkout`` in the new worktree, so only those folders (and the files at the top)
    are ever written.
    """
    total = len(
        split_z(
            run_git(
                ["ls-tree", "-r", "-z", "--name-only", "--end-of-options", plan.base_commit],
                run_dir,
            ).stdout
        )
    )
    _say(
        on_progress,
        f"creating {plan.path} on new branch {plan.branch} from {plan.base} ({total} files)",
    )
    add = ["worktree", "add", *(["--no-checkout"] if sparse else []), "-b", plan.branch]
    add += ["--", str(plan.path), plan.base_commit]
    if sparse:
        run_git(add, run_dir, timeout=None)
        _say(on_progress, f"sparse checkout of {', '.join(sparse)}")
        run_git(["sparse-checkout", "set", "--cone", "--", *sparse], plan.path, timeout=None)
        steps = [(["checkout"], plan.path)]
    else:
        steps = [(add, run_dir)]
    for args, where in steps:
        _run_with_progress(args, where, plan, total, on_progress)


def _run_with_progress(
    args: list[str], where: Path, plan: _Plan, total: int, on_progress: Callback
) -> None:
    """Run one checkout step; on a large checkout, report the files written once a second."""
    if total <= LARGE_CHECKOUT or on_progress is None:
        run_git(args, where, timeout=None)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(run_git, args, where, timeout=None)
        while True:
            try:
                future.result(timeout=1.0)
                return
            except TimeoutError:
                done = _count_files(plan.path) if plan.path.is_dir() else 0
                _say(on_progress, f"checking out: {min(done, total)}/{total} files")


def _explain_add_failure(exc: GitError, plan: _Plan, run_dir: Path) -> Refused | None:
    """Turn a lost race (another process took the branch or path first) into a clear refusal."""
    if _ref_exists(run_dir, f"refs/heads/{plan.branch}") and "already exists" in exc.stderr:
        return Refused(
            f"branch {plan.branch} already exists (created by another process at the same time?)"
        )
    if os.path.lexists(plan.path) and "already exists" in exc.stderr:
        return Refused(f"path {plan.path} already exists (created by another process?)")
    return None


def _other_ports(repo: _Repo, exclude: Path) -> set[int]:
    taken: set[int] = set()
    for entry in repo.entries:
        if not entry.bare and entry.path != exclude:
            taken.update(read_ports(entry.path).values())
    return taken


def spawn(
    start: Path | str,
    name: str,
    *,
    base: str | None = None,
    path: Path | str | None = None,
    prompt: str | None = None,
    trusted: bool = False,
    approved_setup: Sequence[Sequence[str]] | None = None,
    open_window: bool = False,
    settings: LifecycleSettings | None = None,
    on_output: Callback = None,
    on_progress: Callback = None,
    agent: str | None = None,
    sparse: Sequence[str] = (),
) -> SpawnResult:
    """Create a worktree for a fresh AI session and prepare it.

    ``git worktree add -b BRANCH PATH BASE``, then: copy the ignored files ``.wtls.toml``
    ``copy`` and ``.worktreeinclude`` name, assign ``ports`` (``.wtls/ports.env``), write the task
    prompt (``.wtls/task.md``), record ``.wtls/spawn.json``, run ``setup`` only when
    ``trusted``, and run the open command when ``open_window`` and one is configured.
    Refusals happen before anything is created; a failure after ``worktree add`` keeps the
    worktree and is reported in ``problems`` / ``setup``.

    The recipe is read once, under the repository lock. ``approved_setup`` is what a person
    was shown and approved (``wtls spawn``'s prompt): when the recipe read here holds other
    commands (the file changed in between), none is run and ``setup.skipped`` says why.

    ``agent``: the coding agent that will work there. ``claude`` gets wtls's hooks in the
    worktree's ``.claude/settings.local.json`` (:mod:`wtls.lifecycle.agent_hooks`); ``codex``
    has no per-folder place for its ``notify`` setting, so nothing is written for it.

    ``share`` entries of the recipe become links to the source worktree's folders
    (:mod:`wtls.lifecycle.sharing`; checked before anything is created). ``sparse``: only
    these folders are checked out (cone mode); each must be a plain relative path.
    """
    if agent not in SPAWN_AGENTS:
        known = ", ".join(a for a in SPAWN_AGENTS if a)
        raise Refused(f"unknown agent {agent!r} (one of: {known})")
    sparse = tuple(dict.fromkeys(check_relative_path(p, "sparse path") for p in sparse))
    for p in sparse:
        # git refuses these in cone mode only after `worktree add --no-checkout` made the
        # folder: a half-made worktree whose every file shows as deleted.
        if p.startswith("!") or any(c in p for c in "*?[]"):
            raise Refused(
                f"sparse path {p!r} looks like a pattern (`*?[]`, a leading `!`): --sparse "
                "takes folder names; nothing was created"
            )
    settings = settings or LifecycleSettings()
    start_dir = _start_dir(start)
    repo = _open_repo(start_dir)
    problems: list[str] = []
    with _repo_lock(repo.repository.common_dir):
        # Re-read the listing under the lock: a spawn that just finished is now visible.
        repo = _open_repo(start_dir)
        plan = _plan(repo, start_dir, name, settings, base, path)
        recipe = load_project_config(plan.source) if plan.source.is_dir() else ProjectConfig()
        shares = check_shares(plan.source, recipe.share, plan.base_commit)
        notes = list(shares.notes)
        try:
            _worktree_add(plan, repo.run_dir, on_progress, sparse)
        except GitBusy:
            raise
        except GitError as exc:
            refusal = _explain_add_failure(exc, plan, repo.run_dir)
            if refusal is not None:
                raise refusal from exc
            raise
        wtls_dir = plan.path / WTLS_DIR
        try:
            _ensure_wtls_dir(plan.path)
        except UnsafeFile as exc:
            problems.append(str(exc))
        except OSError as exc:
            problems.append(f"could not create {wtls_dir}: {exc}")
        ports: dict[str, int] = {}
        if recipe.ports:
            _say(on_progress, "assigning ports")
            try:
                ports = assign_ports(recipe.ports, plan.path, _other_ports(repo, plan.path))
                lines = "".join(f"{k}={v}\n" for k, v in ports.items())
                _write_private(
                    plan.path,
                    Path(PORTS_FILE).name,
                    f"# ports wtls assigned to this worktree\n{lines}",
                )
            except (OSError, Refused) as exc:
                problems.append(f"could not assign ports: {exc}")
                ports = {}
        shared: dict[str, str] = {}
        if shares.links:
            _say(on_progress, f"linking shared folders: {', '.join(shares.links)}")
            try:
                shared, share_notes, share_problems = link_shared(
                    plan.path, repo.repository.common_dir, shares.links
                )
                notes += share_notes
                problems += share_problems
            except (OSError, GitError) as exc:
                problems.append(f"could not share {', '.join(shares.links)}: {exc}")
    copied = CopiedFiles()
    if recipe.copy:
        _say(on_progress, "copying ignored files (.wtls.toml copy, .worktreeinclude)")
        try:
            # What is shared is linked, not copied (and never written through).
            copied = copy_ignored_files(
                plan.source, plan.path, recipe.copy, skip=tuple(shares.links)
            )
            problems.extend(copied.problems)
        except GitError as exc:
            problems.append(f"could not list the files to copy: {exc}")
    agent_hooks: Path | None = None
    if agent == "claude":
        try:
            agent_hooks = wire_claude_hooks(plan.path, repo.repository.common_dir)
        except (OSError, ValueError, GitError) as exc:
            problems.append(f"could not add the Claude Code hooks: {exc}")
    prompt_file: Path | None = None
    if prompt:
        try:
            prompt_file = _write_private(
                plan.path,
                Path(PROMPT_FILE).name,
                prompt if prompt.endswith("\n") else prompt + "\n",
            )
        except OSError as exc:
            problems.append(f"could not write the task prompt: {exc}")
            prompt_file = None
    info = {
        "version": 1,
        "branch": plan.branch,
        "base": plan.base,
        "baseCommit": plan.base_commit,
        "source": str(plan.source),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "promptFile": PROMPT_FILE if prompt_file else None,
        "ports": ports,
        "copied": list(copied.files),
        "cloned": copied.cloned,
        "shared": shared,
        "sparse": list(sparse),
    }
    try:
        _write_private(plan.path, Path(SPAWN_INFO_FILE).name, json.dumps(info, indent=2) + "\n")
    except OSError as exc:
        problems.append(f"could not write {SPAWN_INFO_FILE}: {exc}")
    approved = None if approved_setup is None else tuple(tuple(argv) for argv in approved_setup)
    if not recipe.setup:
        setup = SetupResult()
    elif trusted and approved is not None and approved != recipe.setup:
        setup = SetupResult(
            skipped="the setup commands changed after they were approved, so none was run "
            f"(approved: {_commands_text(approved)}; the file now says: "
            f"{_commands_text(recipe.setup)})",
            commands=tuple(CommandRun(command=shlex.join(c), exit_code=None) for c in recipe.setup),
        )
    elif not trusted:
        setup = SetupResult(
            skipped="the workspace is not trusted: setup commands were not run "
            f"({_commands_text(recipe.setup)})",
            commands=tuple(CommandRun(command=shlex.join(c), exit_code=None) for c in recipe.setup),
        )
    else:
        _say(on_progress, "running setup commands")
        setup = run_setup(
            plan.path,
            recipe.setup,
            env=_setup_env(plan.path, plan.branch, ports),
            on_output=on_output,
            timeout=settings.setup_timeout,
        )
    opened = False
    if open_window and settings.open_command:
        try:
            run_open_command(settings.open_command, plan.path, branch=plan.branch, wait=False)
            opened = True
        except Refused as exc:
            problems.append(str(exc))
    return SpawnResult(
        path=plan.path,
        branch=plan.branch,
        base=plan.base,
        base_commit=plan.base_commit,
        prompt_file=prompt_file,
        ports=ports,
        copied=copied.files,
        cloned=copied.cloned,
        shared=tuple(shared),
        sparse=sparse,
        notes=tuple(notes),
        setup=setup,
        opened=opened,
        problems=tuple(problems),
        agent_hooks=agent_hooks,
    )


def open_worktree(
    start: Path | str,
    worktree: str | None = None,
    *,
    open_window: bool = False,
    wait: bool = False,
    settings: LifecycleSettings | None = None,
) -> OpenResult:
    """Without ``worktree``: every worktree (protocol objects) for the client to pick from.

    With it: that worktree's path and URI; with ``open_window`` and an open command configured,
    the command is run (``wait`` as in :func:`run_open_command`).
    """
    settings = settings or LifecycleSettings()
    start_dir = _start_dir(start)
    state = repository_state(discover(start_dir), settings.base_branch)
    if worktree is None:
        this = state.find(start_dir)
        return OpenResult(
            worktrees=tuple(
                worktree_payload(w, this.path if this else None, state.base_branch)
                for w in state.worktrees
                if not w.bare
            )
        )
    target = resolve_worktree(state, worktree, cwd=start_dir)
    if target.prunable or not target.path.is_dir():
        raise Refused(f"the folder of worktree {target.path} is gone: `wtls prune` forgets it")
    opened = False
    status: int | None = None
    if open_window and settings.open_command:
        status = run_open_command(
            settings.open_command, target.path, branch=target.branch, wait=wait
        )
        opened = True
    return OpenResult(path=target.path, branch=target.branch, opened=opened, exit_status=status)
