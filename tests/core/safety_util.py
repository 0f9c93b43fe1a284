"""Helpers for the data-safety tests: run the real CLI, build risky worktrees, capture and compare.

A *capture* is everything a user would lose if a worktree disappeared: every file, symlink and
executable bit that git does not ignore (ignored paths are computed before anything is removed,
with ``git ls-files --others --ignored --exclude-standard --directory``), the worktree's
``git status``, and for each nested repository or submodule its commits, branches, HEAD and
status. Two captures are equal when a restore gave back every byte.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.gitutil import commit_all, git, make_repo

ROOT = Path(__file__).resolve().parents[2]
BACKUP_PREFIX = "refs/wtls/backup/"

#: The files of the repository the safety tests start from (``build/`` and ``*.log`` ignored).
BASE_FILES = {
    "cli.py": "print('tasks')\n",
    "README.md": "# tasks\n",
    "src/app.py": "app = 1\n",
    "src/util.py": "util = 2\n",
    "src/naïve file.txt": "unicode and a space\n",
    "docs/guide.md": "guide\n",
    "docs/more.md": "more\n",
    ".gitignore": "build/\n*.log\n",
}


# ----------------------------------------------------------------------------- the real CLI
def cli_env() -> dict[str, str]:
    """The environment for the CLI: this checkout's code, and its ``wtls`` first on PATH."""
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    return {**os.environ, "PYTHONPATH": str(ROOT), "PATH": path}


def wtls(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python -m wtls ARGS`` in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "wtls", *args],
        cwd=str(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=cli_env(),
    )


def parse_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any] | None:
    """The JSON object a ``--json`` command printed, or None when stdout is not one."""
    try:
        value = json.loads(proc.stdout)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def wtls_json(cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run a ``--json`` command that must print a JSON object; return the process and object."""
    proc = wtls(cwd, *args, "--json")
    payload = parse_json(proc)
    assert payload is not None, (
        f"wtls {shlex.join(args)} printed no JSON object (exit {proc.returncode}):\n"
        f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
    )
    return proc, payload


def start_wtls(cwd: Path, *args: str) -> subprocess.Popen[str]:
    """Start the CLI in its own process group (so a SIGKILL can take git's children too)."""
    return subprocess.Popen(
        [sys.executable, "-m", "wtls", *args],
        cwd=str(cwd),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        start_new_session=True,
    )


def kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the process and every child it started; reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)


def run_restore_command(command: str | None, cwd: Path) -> None:
    """Run a printed ``restoreCommand`` with ``bash -c`` from ``cwd`` (any folder)."""
    assert command, "removed with something to restore, but no restoreCommand"
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["bash", "-c", command],
        cwd=str(cwd),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=cli_env(),
    )
    assert proc.returncode == 0, f"restoreCommand {command!r} failed: {proc.stderr}{proc.stdout}"


# ----------------------------------------------------------------------------- repository facts
def git_ok(cwd: Path, *args: str) -> bool:
    """Whether ``git ARGS`` exits 0."""
    return subprocess.run(["git", *args], cwd=str(cwd), capture_output=True).returncode == 0


def refs(repo: Path, prefix: str = "") -> dict[str, str]:
    """``{refname: oid}`` of every ref (under ``prefix``)."""
    patterns = [prefix] if prefix else []
    out = git(repo, "for-each-ref", "--format=%(refname) %(objectname)", *patterns)
    pairs = (line.partition(" ") for line in out.splitlines() if line)
    return {name: oid for name, _, oid in pairs}


def backup_refs(repo: Path) -> list[str]:
    """The refs under ``refs/wtls/backup/``."""
    return sorted(refs(repo, BACKUP_PREFIX))


def listed(repo: Path) -> list[Path]:
    """The worktree paths git records."""
    return [
        Path(line.removeprefix("worktree "))
        for line in git(repo, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]


def branch_exists(repo: Path, branch: str) -> bool:
    """Whether ``refs/heads/BRANCH`` exists."""
    return git_ok(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")


def assert_fsck_clean(repo: Path) -> None:
    """``git fsck`` finds no error (dangling objects are fine)."""
    proc = subprocess.run(
        ["git", "fsck", "--no-progress"], cwd=str(repo), capture_output=True, text=True
    )
    assert proc.returncode == 0, f"git fsck: {proc.stdout}{proc.stderr}"
    assert "error" not in proc.stderr.lower(), proc.stderr


# ----------------------------------------------------------------------------- building
def safety_repo(root: Path, name: str = "proj") -> Path:
    """A repository on main with :data:`BASE_FILES` (``build/`` and ``*.log`` ignored)."""
    return make_repo(root, name, files=dict(BASE_FILES))


def linked(repo: Path, path: Path, branch: str = "feature/a", *, detach: bool = False) -> Path:
    """``git worktree add`` a linked worktree (on a new branch, or detached)."""
    if detach:
        git(repo, "worktree", "add", "-q", "--detach", "--", str(path), "HEAD")
    else:
        git(repo, "worktree", "add", "-q", "-b", branch, "--", str(path), "HEAD")
    return path


def write(path: Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path``, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def make_nested_repo(path: Path) -> None:
    """A nested repository with two commits on main, a branch of its own, staged and untracked
    changes (nothing of it is pushed anywhere)."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    write(path / "n.txt", "nested one\n")
    commit_all(path, "nested 1")
    write(path / "n.txt", "nested two\n")
    commit_all(path, "nested 2")
    git(path, "switch", "-q", "-c", "side")
    write(path / "side.txt", "only on side\n")
    commit_all(path, "side work")
    git(path, "switch", "-q", "main")
    write(path / "staged.txt", "staged in nested\n")
    git(path, "add", "staged.txt")
    write(path / "n.txt", "nested two, edited\n")
    write(path / "untracked in nested.txt", "untracked in nested\n")


def submodule_source(root: Path) -> Path:
    """A repository to be used as a submodule."""
    return make_repo(root, "sublib", files={"lib.txt": "lib v1\n"})


def add_submodule(worktree: Path, source: Path, where: str = "lib") -> None:
    """Add ``source`` as a submodule at ``where`` and commit it (on the worktree's branch)."""
    git(worktree, "submodule", "add", "-q", "--", str(source), where)
    git(worktree, "commit", "-q", "-m", f"add submodule {where}")


def dirty_submodule(sub: Path) -> str:
    """Make a local commit inside a checked-out submodule (pushed nowhere) and an untracked file
    there; return the local commit."""
    write(sub / "lib.txt", "lib v2, committed locally, never pushed\n")
    commit_all(sub, "local submodule work")
    write(sub / "scratch.txt", "untracked in the submodule\n")
    return git(sub, "rev-parse", "HEAD")


def stat_blind_rewrite(path: Path, new: bytes) -> None:
    """Rewrite ``path`` in place with bytes of the same size and its old mtime after git has
    stat'ed it, so git's stat cache still calls the file unchanged."""
    old = path.stat()
    assert len(new) == old.st_size
    with path.open("r+b") as fh:
        fh.write(new)
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))


def age(path: Path, seconds: int = 100) -> None:
    """Set ``path``'s mtime ``seconds`` in the past (so the index does not treat it as racy)."""
    t = int(time.time()) - seconds
    os.utime(path, (t, t))


# ----------------------------------------------------------------------------- capture, compare
def ignored_entries(worktree: Path) -> list[str]:
    """Git-ignored paths of ``worktree`` (folders end with ``/``)."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory"],
        cwd=str(worktree),
        capture_output=True,
        check=True,
    ).stdout
    return [os.fsdecode(p) for p in out.split(b"\0") if p]


def _is_ignored(rel: str, ignored: list[str]) -> bool:
    return any(rel == i.rstrip("/") or (i.endswith("/") and rel.startswith(i)) for i in ignored)


def files_of(root: Path, ignored: list[str] | None = None) -> dict[str, tuple[str, bytes | str]]:
    """Every file and symlink under ``root`` except ``.git`` dirs/files and ``ignored`` paths:
    ``{rel: ("f"|"x", bytes) | ("link", target)}``."""
    ignored = ignored or []
    out: dict[str, tuple[str, bytes | str]] = {}
    for folder, dirs, names in os.walk(root):
        keep = []
        for d in dirs:
            p = Path(folder, d)
            rel = p.relative_to(root).as_posix()
            if d == ".git" or _is_ignored(rel, ignored):
                continue
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            else:
                keep.append(d)
        dirs[:] = keep
        for name in names:
            p = Path(folder, name)
            rel = p.relative_to(root).as_posix()
            if name == ".git" or _is_ignored(rel, ignored):
                continue
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            else:
                out[rel] = ("x" if os.access(p, os.X_OK) else "f", p.read_bytes())
    return out


def nested_repos(root: Path, ignored: list[str]) -> list[str]:
    """Folders under ``root`` (not ignored) that hold a ``.git`` of their own."""
    found = []
    for folder, dirs, _names in os.walk(root):
        here = Path(folder)
        rel = here.relative_to(root).as_posix()
        if here != root and (here / ".git").exists() and not _is_ignored(rel + "/", ignored):
            found.append(rel)
        dirs[:] = [d for d in dirs if d != ".git" and not Path(folder, d).is_symlink()]
    return sorted(found)


@dataclass
class RepoFacts:
    """What a nested repository or submodule holds beyond its files."""

    head: str
    commits: list[str]
    branches: str
    status: str


def content_status(path: Path) -> str:
    """``git status --porcelain`` judged by content alone, never by stat data.

    No restore can give back an index's stat data, and git's answer for an entry whose stat
    data is stale can depend on its size alone (a CRLF file under ``text=auto`` written over a
    checkout is "modified", the same bytes after ``git add`` are clean). So the status is taken
    against a copy of the index without stat data: every entry is compared by content.
    """
    tree = git(path, "write-tree")
    with tempfile.TemporaryDirectory(prefix="wtls-status-") as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        subprocess.run(["git", "read-tree", tree], cwd=path, env=env, check=True)
        out = subprocess.run(
            ["git", "status", "--porcelain"],
            cwd=path,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return out.strip()


def repo_facts(path: Path) -> RepoFacts:
    """Commits (``git log --all``), branches, HEAD and status of a nested repo or submodule."""
    return RepoFacts(
        head=git(path, "rev-parse", "HEAD"),
        commits=sorted(git(path, "log", "--all", "--format=%H").split()),
        branches=git(path, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads"),
        status=content_status(path),
    )


@dataclass
class Capture:
    """Everything of a worktree a removal must not lose (see the module docstring)."""

    files: dict[str, tuple[str, bytes | str]]
    status: str
    nested: dict[str, RepoFacts] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


def capture(worktree: Path, ignored: list[str] | None = None) -> Capture:
    """Capture ``worktree``; ``ignored`` defaults to what git ignores there now (pass the
    list taken before a removal when capturing the restored copy)."""
    if ignored is None:
        ignored = ignored_entries(worktree)
    nested = {rel: repo_facts(worktree / rel) for rel in nested_repos(worktree, ignored)}
    return Capture(
        files=files_of(worktree, ignored),
        status=content_status(worktree),
        nested=nested,
        ignored=ignored,
    )


def _show(entry: tuple[str, bytes | str] | None) -> str:
    if entry is None:
        return "(missing)"
    kind, data = entry
    return f"{kind} {data[:80]!r}" + ("..." if len(data) > 80 else "")


def assert_same(before: Capture, after: Capture, what: str = "restored worktree") -> None:
    """Every non-ignored file byte for byte and mode for mode, status, nested repos."""
    diffs = []
    for rel in sorted(set(before.files) | set(after.files)):
        a, b = before.files.get(rel), after.files.get(rel)
        if a != b:
            diffs.append(f"  {rel}: before {_show(a)}, after {_show(b)}")
    assert not diffs, f"{what}: files differ:\n" + "\n".join(diffs[:20])
    assert after.status == before.status, (
        f"{what}: git status differs:\nbefore:\n{before.status}\nafter:\n{after.status}"
    )
    assert set(after.nested) == set(before.nested), f"{what}: nested repositories differ"
    for rel, facts in before.nested.items():
        assert after.nested[rel] == facts, f"{what}: nested repository {rel} differs"


def whole_folder(root: Path) -> dict[str, tuple[str, bytes | str]]:
    """Every file under ``root`` (ignored ones included, ``.git`` excluded): "untouched"."""
    return files_of(root, [])


# ----------------------------------------------------------------------------- concurrency
class Writer(threading.Thread):
    """Writes a new small file into a folder every 20-150 ms; records each file only after its
    write and close succeeded."""

    def __init__(self, folder: Path, seed: int) -> None:
        super().__init__(daemon=True)
        self.folder = folder
        self.rng = random.Random(seed)
        self.written: dict[str, bytes] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            name = f"writer-{n:04d}.txt"
            data = f"written by the concurrent writer, file {n}\n".encode()
            n += 1
            try:
                with open(self.folder / name, "xb") as fh:
                    fh.write(data)
            except OSError:
                pass
            else:
                self.written[name] = data
            self.stop.wait(self.rng.uniform(0.02, 0.15))

    def finish(self) -> dict[str, bytes]:
        """Stop and return the recorded files."""
        self.stop.set()
        self.join(timeout=10)
        assert not self.is_alive()
        return dict(self.written)
