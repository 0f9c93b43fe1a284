"""Spawn names: slugs, branch and folder names from templates, the plan, live validation."""

from __future__ import annotations

import contextlib
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from wtls.errors import Refused
from wtls.git import GitBusy, GitError, run_git
from wtls.lifecycle.common import (
    _has_control,
    _open_repo,
    _Repo,
    _start_dir,
)
from wtls.lifecycle.results import (
    MAX_NAME_LENGTH,
    LifecycleSettings,
    NameCheck,
)
from wtls.links import absolute
from wtls.locations import to_path
from wtls.worktrees import (
    default_base_branch,
)


def slugify(text: str) -> str:
    """A folder-safe slug: lowercase ASCII ``[a-z0-9._-]``, other runs become ``-``."""
    ascii_text = (
        unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    )
    slug = re.sub(r"[^a-z0-9._-]+", "-", ascii_text)
    slug = re.sub(r"-{2,}", "-", slug)
    return slug.strip("-._")


def _check_branch_name(run_dir: Path, branch: str) -> None:
    """Refuse a branch name git would refuse (``git check-ref-format --branch``)."""
    rules = (
        "branch names cannot contain spaces, control characters, ~ ^ : ? * [ \\, '..' or '@{', "
        "nor have a part that starts with '.' or ends with '.lock'"
    )
    if branch.startswith("-"):
        raise Refused(f"{branch!r} is not a valid branch name: it cannot start with '-'")
    try:
        out = run_git(["check-ref-format", "--branch", branch], run_dir).text
    except GitBusy:
        raise
    except GitError as exc:
        raise Refused(f"{branch!r} is not a valid branch name ({rules})") from exc
    # --branch expands "@{-1}" and similar to another branch's name: only the literal is fine.
    if out != branch:
        raise Refused(f"{branch!r} is not a valid branch name ({rules})")


def _fill(template: str, values: Mapping[str, str], what: str) -> str:
    if "{slug}" not in template:
        raise Refused(f"the {what} template {template!r} must contain {{slug}}")
    try:
        return template.format_map(dict(values))
    except (KeyError, IndexError, ValueError) as exc:
        known = ", ".join("{" + k + "}" for k in values)
        raise Refused(f"bad {what} template {template!r}: {exc} (placeholders: {known})") from exc


def names_for(name: str, settings: LifecycleSettings) -> tuple[str, str]:
    """``(branch, slug)`` for a task name (pure: no git). Raises :class:`Refused`.

    A name with ``/`` is a branch name used as-is; its last part gives the slug. Other names
    become ``branch_template`` with their slug.
    """
    if not name or not name.strip():
        raise Refused("the name is empty: give a task name such as `fix-login`")
    if name.startswith("-"):
        raise Refused(f"{name!r} cannot be used: a name cannot start with '-'")
    if _has_control(name):
        raise Refused(f"{name!r} contains a control character (such as a newline or tab)")
    if len(name) > MAX_NAME_LENGTH:
        raise Refused(f"the name is too long ({len(name)} characters; at most {MAX_NAME_LENGTH})")
    if "/" in name:
        branch = name.removeprefix("refs/heads/")
        slug = slugify(branch.rsplit("/", 1)[-1])
    else:
        slug = slugify(name)
        branch = ""
    if not slug:
        raise Refused(
            f"{name!r} gives an empty folder name: use letters or digits (a-z, 0-9) in the name"
        )
    if not branch:
        branch = _fill(settings.branch_template, {"slug": slug}, "branch")
    return branch, slug


def _repo_names(repo: _Repo) -> tuple[Path, str]:
    """``(repoParent, repo)`` for path templates: the main worktree's folder and name.

    A submodule's worktrees go beside its outermost superproject's work tree (``repoParent``
    is that folder's parent, ``repo`` the submodule's folder name): beside the submodule they
    would land inside the superproject, as untracked files there. Never inside a git dir.
    """
    main = repo.main
    superproject = repo.repository.superproject
    if main is not None and superproject is not None:
        return _outermost_superproject(superproject).parent, main.path.name
    if main is not None and main.path != repo.repository.common_dir:
        return main.path.parent, main.path.name
    common = repo.repository.common_dir
    return common.parent, common.name.removesuffix(".git") or common.name


def _outermost_superproject(superproject: Path) -> Path:
    """The top of the superproject that is not itself a submodule (nested submodules)."""
    top = superproject
    for _ in range(32):  # nesting deeper than this is not a real layout
        result = run_git(["rev-parse", "--show-superproject-working-tree"], top, ok_codes=(0, 128))
        if result.returncode != 0 or not result.text:
            break
        top = absolute(Path(result.text))
    return top


def _ref_exists(run_dir: Path, ref: str) -> bool:
    result = run_git(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", ref], run_dir, ok_codes=(0, 1)
    )
    return result.returncode == 0


def _is_ignored(worktree: Path, path: Path) -> bool:
    # The trailing "/" says "a folder" for a path that does not exist yet, so `dir/` patterns
    # match it too.
    rel = os.path.relpath(path, worktree) + "/"
    result = run_git(["check-ignore", "-q", "--no-index", "--", rel], worktree, ok_codes=(0, 1))
    return result.returncode == 0


@dataclass(frozen=True)
class _Plan:
    branch: str
    slug: str
    path: Path
    base: str
    base_commit: str
    source: Path


def _source_worktree(repo: _Repo, start: Path) -> Path:
    """The worktree a spawn copies from: the one containing ``start``, else the main one."""
    inside = [
        e for e in repo.entries if not e.bare and (e.path == start or e.path in start.parents)
    ]
    if inside:
        return max(inside, key=lambda e: len(e.path.parts)).path
    main = repo.main
    if main is None:
        return repo.repository.common_dir
    return main.path


def _plan(
    repo: _Repo,
    start: Path,
    name: str,
    settings: LifecycleSettings,
    base: str | None,
    path: Path | str | None,
) -> _Plan:
    """Check everything about a spawn before anything is created; raise :class:`Refused`."""
    run_dir = repo.run_dir
    branch, slug = names_for(name, settings)
    _check_branch_name(run_dir, branch)
    # Branch: free, not checked out, and no ref in the way of its folder-like name.
    for entry in repo.entries:
        if entry.branch == branch:
            raise Refused(f"branch {branch} is already checked out in worktree {entry.path}")
    if _ref_exists(run_dir, f"refs/heads/{branch}"):
        raise Refused(
            f"branch {branch} already exists: choose another name, or delete that branch first"
        )
    parts = branch.split("/")
    for i in range(1, len(parts)):
        prefix = "/".join(parts[:i])
        if _ref_exists(run_dir, f"refs/heads/{prefix}"):
            raise Refused(f"branch {prefix} exists, so no branch can be named {branch}")
    below = run_git(
        ["for-each-ref", "--count=1", "--format=%(refname)", f"refs/heads/{branch}/"], run_dir
    ).text
    if below:
        raise Refused(
            f"branch {below.removeprefix('refs/heads/')} exists, so no branch can be named {branch}"
        )
    # Base.
    base_name = (
        base
        if base is not None
        else default_base_branch(repo.repository, repo.entries, settings.base_branch)
    )
    if base_name is None:
        raise Refused("the repository has no base branch yet (no commits?): give a base")
    if not base_name or _has_control(base_name):
        raise Refused(f"base {base_name!r} is not a valid branch, tag or commit")
    found = run_git(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{base_name}^{{commit}}"],
        run_dir,
        ok_codes=(0, 1),
    )
    if found.returncode != 0 or not found.text:
        raise Refused(f"base {base_name!r} does not exist (no branch, tag or commit by that name)")
    base_commit = found.text.splitlines()[0]
    # Path.
    parent, repo_name = _repo_names(repo)
    if path is None:
        filled = _fill(
            settings.path_template,
            {"repoParent": str(parent), "repo": repo_name, "slug": slug},
            "path",
        )
        target = Path(filled).expanduser()
        if not target.is_absolute():
            target = parent / target
    else:
        text = str(path)
        if not text or _has_control(text):
            raise Refused(f"{text!r} is not a usable folder path")
        target = to_path(text, name="path", base=start)
    target = Path(os.path.normpath(absolute(target)))
    if os.path.lexists(target):
        raise Refused(f"path {target} already exists: choose another name or path")
    for entry in repo.entries:
        if entry.path == target:
            raise Refused(
                f"git still has a worktree record for {target} (its folder was deleted by hand): "
                "run `wtls prune` first"
            )
    for entry in repo.entries:
        if entry.bare or entry.path not in target.parents or not entry.path.is_dir():
            continue
        if not _is_ignored(entry.path, target):
            raise Refused(
                f"{target} is inside worktree {entry.path} and not ignored there: that worktree "
                "would see the new one as untracked files; choose a folder outside it or "
                "add the folder to its .gitignore"
            )
    return _Plan(
        branch=branch,
        slug=slug,
        path=target,
        base=base_name,
        base_commit=base_commit,
        source=_source_worktree(repo, start),
    )


def validate_name(
    start: Path | str,
    name: str,
    settings: LifecycleSettings | None = None,
    *,
    base: str | None = None,
    path: Path | str | None = None,
) -> NameCheck:
    """Check a spawn name (live, for an input box): never raises :class:`Refused`."""
    settings = settings or LifecycleSettings()
    start_dir = _start_dir(start)
    repo = _open_repo(start_dir)
    try:
        plan = _plan(repo, start_dir, name, settings, base, path)
    except Refused as exc:
        branch = slug = None
        with contextlib.suppress(Refused):
            branch, slug = names_for(name, settings)
        return NameCheck(ok=False, message=str(exc), branch=branch, slug=slug)
    return NameCheck(
        ok=True,
        message=f"creates branch {plan.branch} from {plan.base} in {plan.path}",
        branch=plan.branch,
        path=plan.path,
        slug=plan.slug,
    )
