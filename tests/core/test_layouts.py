"""Repository layouts where git's own listing names a git dir as the main worktree: a
separate git dir, ``core.worktree``, a submodule. wtls must read the real work tree, and new
worktrees must land beside it, never inside any ``.git``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.core.lifecycle_util import run_wtls
from tests.gitutil import commit_all, git, make_repo


def _spawn(cwd: Path, name: str) -> Path:
    proc = run_wtls(cwd, "spawn", name, "--json")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return Path(json.loads(proc.stdout)["path"])


def _listed_main(cwd: Path) -> str:
    proc = run_wtls(cwd, "list", "--json")
    assert proc.returncode == 0, proc.stderr
    state = json.loads(proc.stdout)
    (main,) = [w for w in state["worktrees"] if w["isMain"]]
    return str(main["path"])


def _outside_git_dirs(path: Path) -> None:
    assert ".git" not in path.parts and "modules" not in path.parts, path
    assert (path / ".git").is_file()  # a real linked worktree, checked out
    assert git(path, "rev-parse", "--is-inside-work-tree") == "true"


def test_separate_git_dir(tmp_path: Path) -> None:
    work = tmp_path / "proj"
    store = tmp_path / "store" / "proj.git"
    store.parent.mkdir()
    git(tmp_path, "init", "-q", "-b", "main", "--separate-git-dir", str(store), str(work))
    (work / "a.txt").write_text("a\n")
    commit_all(work, "initial")
    assert _listed_main(work) == str(work.resolve())
    new = _spawn(work, "feat")
    assert new == (tmp_path / "proj-feat").resolve()
    _outside_git_dirs(new)


def test_core_worktree(tmp_path: Path) -> None:
    work = tmp_path / "tree"
    store = tmp_path / "meta" / "tree.git"
    store.parent.mkdir()
    work.mkdir()
    git(tmp_path, "init", "-q", "-b", "main", "--bare", str(store))
    git(store, "config", "core.bare", "false")
    git(store, "config", "core.worktree", str(work))
    (work / ".git").write_text(f"gitdir: {store}\n")
    (work / "a.txt").write_text("a\n")
    commit_all(work, "initial")
    assert _listed_main(work) == str(work.resolve())
    new = _spawn(work, "feat")
    assert new == (tmp_path / "tree-feat").resolve()
    _outside_git_dirs(new)
    # From the new linked worktree, the main one is still read from core.worktree.
    assert _listed_main(new) == str(work.resolve())


def test_submodule(tmp_path: Path) -> None:
    lib = make_repo(tmp_path / "src", "lib", {"lib.txt": "lib\n"})
    outer = make_repo(tmp_path, "outer", {"README": "outer\n"})
    git(outer, "submodule", "-q", "add", str(lib), "libs/lib")
    git(outer, "commit", "-q", "-m", "add lib")
    sub = outer / "libs" / "lib"
    assert _listed_main(sub) == str(sub.resolve())
    new = _spawn(sub, "feat")
    # Beside the superproject (inside it, it would be untracked files there), named after the
    # submodule; never inside .git/modules.
    assert new == (tmp_path / "lib-feat").resolve()
    _outside_git_dirs(new)
    assert git(outer, "status", "--porcelain") == ""
