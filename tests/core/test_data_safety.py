"""Data safety of ``wtls remove``, ``merge --remove`` and ``prune`` (wtls issue 10), end to end.

Everything runs the real CLI as a subprocess on real repositories. The contract:

* plain ``remove`` refuses (exit 1, the folder untouched byte for byte) whenever anything would
  be lost: changes git's stat cache cannot see, nested repositories (even in ignored folders),
  submodules with local work; any ``remove`` refuses a folder holding another worktree;
* ``remove --force`` keeps everything that is not git-ignored, and ``restoreCommand`` (or
  ``wtls restore REF``) brings back every byte, mode, symlink, staged state, nested repository
  and submodule commit;
* commits only a detached HEAD knows are saved under ``refs/wtls/backup/`` by remove and prune;
  prune keeps a folder that was moved by hand;
* whatever fails half-way (a lock held by another git, a concurrent writer, SIGKILL), the output
  tells the truth and nothing is lost.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.core.safety_util import (
    BACKUP_PREFIX,
    Capture,
    Writer,
    add_submodule,
    age,
    assert_fsck_clean,
    assert_same,
    backup_refs,
    branch_exists,
    capture,
    dirty_submodule,
    files_of,
    git_ok,
    kill_group,
    linked,
    listed,
    make_nested_repo,
    parse_json,
    refs,
    repo_facts,
    run_restore_command,
    safety_repo,
    start_wtls,
    stat_blind_rewrite,
    submodule_source,
    whole_folder,
    write,
    wtls,
    wtls_json,
)
from tests.gitutil import commit_all, git, make_repo

#: How often the slow loops run (the contract asks for at least 20 writer and 15 kill rounds).
LOOPS = int(os.environ.get("WTLS_SAFETY_LOOPS", "0"))
WRITER_ROUNDS = LOOPS or 20
KILL_ROUNDS = LOOPS or 15

Setup = Callable[[Path, Path, Path], None]


def _append(path: Path, text: str) -> None:
    with path.open("a") as fh:
        fh.write(text)


# ----------------------------------------------------------------------------- states to keep
def tracked_changes(repo: Path, wt: Path, tmp: Path) -> None:
    """Staged, unstaged, staged-then-edited, staged and unstaged deletes, a staged new file."""
    write(wt / "README.md", "# tasks, staged\n")
    git(wt, "add", "README.md")
    write(wt / "README.md", "# tasks, staged, then edited again\n")
    write(wt / "src/app.py", "app = 'unstaged edit'\n")
    git(wt, "rm", "-q", "src/util.py")
    (wt / "src/naïve file.txt").unlink()
    write(wt / "src/new staged.txt", "staged new file\n")
    git(wt, "add", "src/new staged.txt")


def untracked_files(repo: Path, wt: Path, tmp: Path) -> None:
    """Untracked files in new folders, with spaces and non-ASCII names, and binary bytes."""
    write(wt / "notes/todo list.md", "untracked notes\n")
    write(wt / "notes/日本語 ünï.txt", "unicode name\n")
    write(wt / "blob.bin", bytes(range(256)) * 8)


def sparse_outside_cone(repo: Path, wt: Path, tmp: Path) -> None:
    """A sparse checkout (cone: src) and a file outside the cone that exists and is modified."""
    git(wt, "sparse-checkout", "set", "--cone", "--skip-checks", "src", "lib", "vendor")
    assert not (wt / "docs").exists()
    write(wt / "docs/guide.md", "guide, edited outside the sparse cone\n")


def crlf_only(repo: Path, wt: Path, tmp: Path) -> None:
    """Under ``* text=auto`` a file whose bytes differ from the checkout only in CRLF."""
    _append(wt / ".gitattributes", "* text=auto\n")
    write(wt / "crlf.txt", "line one\nline two\n")
    commit_all(wt, "text=auto")
    write(wt / "crlf.txt", b"line one\r\nline two\r\n")


def clean_filter(repo: Path, wt: Path, tmp: Path) -> None:
    """Files under a clean filter: the raw bytes on disk are what must come back."""
    git(repo, "config", "filter.strip.clean", "sed -e s/secret//")
    _append(wt / ".gitattributes", "*.ipynb filter=strip\n")
    write(wt / "nb.ipynb", "cell\n")
    write(wt / "nb2.ipynb", "cell two\n")
    commit_all(wt, "notebooks")
    write(wt / "nb.ipynb", "cellsecret\n")  # cleans to what HEAD has
    write(wt / "nb2.ipynb", "cell 2 secret\n")  # cleans to something new
    write(wt / "new.ipynb", "untracked secret\n")


def symlinks(repo: Path, wt: Path, tmp: Path) -> None:
    """Untracked symlinks (to a file, a folder, nowhere) and a tracked one retargeted."""
    (wt / "link-tracked").symlink_to("cli.py")
    commit_all(wt, "a link")
    (wt / "link-tracked").unlink()
    (wt / "link-tracked").symlink_to("README.md")
    (wt / "links").mkdir()
    (wt / "links/to-file").symlink_to("../cli.py")
    (wt / "links/to-dir").symlink_to("../src")
    (wt / "links/dangling").symlink_to("../nowhere")


def exec_bits(repo: Path, wt: Path, tmp: Path) -> None:
    """A tracked file made executable, an untracked executable script."""
    (wt / "cli.py").chmod(0o755)
    write(wt / "tools/run.sh", "#!/bin/sh\necho run\n").chmod(0o755)


def empty_files(repo: Path, wt: Path, tmp: Path) -> None:
    """Empty untracked files and a tracked file truncated to nothing."""
    write(wt / "src/full.txt", "full\n")
    commit_all(wt, "full")
    write(wt / "src/full.txt", b"")
    write(wt / "empty.txt", b"")
    write(wt / "emptydir/zero", b"")


def nested_repository(repo: Path, wt: Path, tmp: Path) -> None:
    """A nested repository with its own commits, branches, staged and untracked changes."""
    make_nested_repo(wt / "vendor/nested")


def submodule(repo: Path, wt: Path, tmp: Path) -> None:
    """A submodule with a commit made inside it and pushed nowhere, plus an untracked file."""
    add_submodule(wt, submodule_source(tmp))
    dirty_submodule(wt / "lib")


KINDS: dict[str, Setup] = {
    "tracked": tracked_changes,
    "untracked": untracked_files,
    "sparse": sparse_outside_cone,
    "crlf": crlf_only,
    "clean-filter": clean_filter,
    "symlinks": symlinks,
    "exec-bits": exec_bits,
    "empty-files": empty_files,
    "nested-repo": nested_repository,
    "submodule": submodule,
}


def _dirty_worktree(tmp: Path, kinds: list[str]) -> tuple[Path, Path]:
    repo = safety_repo(tmp)
    wt = linked(repo, tmp / "wt")
    # The sparse cone last: `git add` refuses paths outside it, and other kinds commit.
    for kind in sorted(kinds, key=lambda k: k == "sparse"):
        KINDS[kind](repo, wt, tmp)
    return repo, wt


def _force_remove(repo: Path, wt: Path, *extra: str) -> dict[str, object]:
    proc, out = wtls_json(repo, "remove", str(wt), "--force", *extra)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
    assert out["removed"] is True, out
    assert not wt.exists(), "removed: true but the folder is still there"
    assert wt not in listed(repo)
    ref = out["backupRef"]
    assert isinstance(ref, str) and ref.startswith(BACKUP_PREFIX), out
    assert git_ok(repo, "rev-parse", "--verify", ref), f"{ref} does not exist"
    return out


@pytest.mark.parametrize("kind", list(KINDS))
def test_force_remove_keeps_and_restores(kind: str, tmp_path: Path) -> None:
    repo, wt = _dirty_worktree(tmp_path, [kind])
    before = capture(wt)
    out = _force_remove(repo, wt)
    run_restore_command(str(out["restoreCommand"]), tmp_path / "elsewhere")
    assert_same(before, capture(wt, before.ignored))


@pytest.mark.parametrize("how", ["restoreCommand", "wtls restore"])
def test_force_remove_everything_at_once(how: str, tmp_path: Path) -> None:
    repo, wt = _dirty_worktree(tmp_path, list(KINDS))
    write(wt / "build/out.log", "ignored output\n")  # ignored: may go
    before = capture(wt)
    assert "build/" in before.ignored
    out = _force_remove(repo, wt)
    if how == "restoreCommand":
        run_restore_command(str(out["restoreCommand"]), tmp_path / "elsewhere")
    else:
        proc = wtls(repo, "restore", str(out["backupRef"]))
        assert proc.returncode == 0, proc.stderr
    assert_same(before, capture(wt, before.ignored))
    assert git(wt / "lib", "rev-parse", "HEAD") == before.nested["lib"].head


def test_restore_to_another_path_and_its_refusals(tmp_path: Path) -> None:
    repo, wt = _dirty_worktree(tmp_path, ["tracked", "untracked"])
    before = capture(wt)
    ref = str(_force_remove(repo, wt)["backupRef"])

    # A folder that exists and is not empty: refused, nothing changed.
    busy = write(tmp_path / "busy/keep.txt", "mine\n").parent
    snapshot = (refs(repo), listed(repo), whole_folder(busy))
    proc = wtls(repo, "restore", ref, "--path", str(busy))
    assert proc.returncode == 1, proc.stderr
    assert (refs(repo), listed(repo), whole_folder(busy)) == snapshot

    # A ref that is not a wtls backup: refused.
    for not_backup in ("refs/heads/main", "main", "refs/wtls/backup/no-such"):
        proc = wtls(repo, "restore", not_backup, "--path", str(tmp_path / "x"))
        assert proc.returncode == 1, (not_backup, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert not (tmp_path / "x").exists()

    proc, _out = wtls_json(repo, "restore", ref, "--path", str(tmp_path / "again"))
    assert proc.returncode == 0, proc.stderr
    assert_same(before, capture(tmp_path / "again", before.ignored), "restored elsewhere")


# ----------------------------------------------------------------------------- plain remove refuses
def _racy_rewrite(repo: Path, wt: Path, tmp: Path) -> None:
    # Write, let git stat it, rewrite with the same size in the same second, same mtime.
    target = wt / "src/app.py"
    write(target, "app = 1\n")
    git(wt, "status", "--porcelain")
    stat_blind_rewrite(target, b"app = 9\n")


def _stat_blind_rewrite(repo: Path, wt: Path, tmp: Path) -> None:
    # The same with an older mtime: git's stat cache (size, mtime, ctime in seconds, inode)
    # still matches, so `git status` itself calls the worktree clean.
    target = wt / "src/app.py"
    age(target)
    git(wt, "status", "--porcelain")
    stat_blind_rewrite(target, b"app = 9\n")


def _nested_in_ignored(repo: Path, wt: Path, tmp: Path) -> None:
    make_nested_repo(wt / "build/nested")


def _clean_nested_in_ignored(repo: Path, wt: Path, tmp: Path) -> None:
    nested = make_repo(wt / "build", "clean-nested", files={"only.txt": "only commit\n"})
    assert git(nested, "status", "--porcelain") == ""


def _submodule_local_commit(repo: Path, wt: Path, tmp: Path) -> None:
    add_submodule(wt, submodule_source(tmp))
    write(wt / "lib/lib.txt", "local\n")
    commit_all(wt / "lib", "local submodule commit")


def _submodule_untracked(repo: Path, wt: Path, tmp: Path) -> None:
    add_submodule(wt, submodule_source(tmp))
    write(wt / "lib/scratch.txt", "untracked in the submodule\n")


def _submodule_commit_recorded(repo: Path, wt: Path, tmp: Path) -> None:
    # The outer worktree is clean (the new gitlink is committed), but the submodule's commit
    # exists only in this worktree's own submodule repository.
    _submodule_local_commit(repo, wt, tmp)
    commit_all(wt, "record the submodule commit")
    assert git(wt, "status", "--porcelain") == ""


def _unstaged(repo: Path, wt: Path, tmp: Path) -> None:
    write(wt / "cli.py", "edited\n")


def _staged(repo: Path, wt: Path, tmp: Path) -> None:
    write(wt / "s.txt", "staged\n")
    git(wt, "add", "s.txt")


def _untracked(repo: Path, wt: Path, tmp: Path) -> None:
    write(wt / "u.txt", "untracked\n")


REFUSALS: dict[str, Setup] = {
    "unstaged": _unstaged,
    "staged": _staged,
    "untracked": _untracked,
    "racy-rewrite": _racy_rewrite,
    "stat-blind-rewrite": _stat_blind_rewrite,
    "nested-repo": nested_repository,
    "nested-repo-in-ignored-folder": _nested_in_ignored,
    "clean-nested-repo-in-ignored-folder": _clean_nested_in_ignored,
    "submodule-local-commit": _submodule_local_commit,
    "submodule-untracked-file": _submodule_untracked,
    "submodule-commit-recorded": _submodule_commit_recorded,
}


@pytest.mark.parametrize("kind", list(REFUSALS))
def test_plain_remove_refuses_when_something_would_be_lost(kind: str, tmp_path: Path) -> None:
    repo = safety_repo(tmp_path)
    wt = linked(repo, tmp_path / "wt")
    REFUSALS[kind](repo, wt, tmp_path)
    folder, ref_map, records = whole_folder(wt), refs(repo), listed(repo)
    proc = wtls(repo, "remove", str(wt))
    assert proc.returncode == 1, f"exit {proc.returncode}: {proc.stdout}{proc.stderr}"
    assert proc.stderr.strip(), "a refusal says why"
    assert "Traceback" not in proc.stderr
    assert whole_folder(wt) == folder, "the folder changed"
    assert refs(repo) == ref_map
    assert listed(repo) == records


@pytest.mark.parametrize("force", [False, True])
def test_any_remove_refuses_a_folder_holding_another_worktree(force: bool, tmp_path: Path) -> None:
    repo = safety_repo(tmp_path)
    outer = linked(repo, tmp_path / "outer")
    spawned = wtls(repo, "spawn", "inner", "--path", str(outer / "build/inner"))
    assert spawned.returncode == 0, spawned.stderr
    inner = outer / "build/inner"
    write(inner / "inner work.txt", "the inner worktree's own untracked work\n")
    outer_files, inner_files = whole_folder(outer), whole_folder(inner)
    ref_map, records = refs(repo), listed(repo)
    assert inner in records

    proc = wtls(repo, "remove", str(outer), *(["--force"] if force else []))
    assert proc.returncode == 1, f"exit {proc.returncode}: {proc.stdout}{proc.stderr}"
    assert str(inner) in proc.stderr or "worktree" in proc.stderr
    assert whole_folder(inner) == inner_files
    assert whole_folder(outer) == outer_files
    assert refs(repo) == ref_map
    assert listed(repo) == records


# ----------------------------------------------------------------------------- detached, prune
def _detached_with_commits(repo: Path, path: Path) -> tuple[Path, str]:
    wt = linked(repo, path, detach=True)
    write(wt / "detached.txt", "work only a detached HEAD knows\n")
    commit_all(wt, "detached 1")
    write(wt / "detached.txt", "more of it\n")
    tip = commit_all(wt, "detached 2")
    assert git(repo, "branch", "--contains", tip) == ""
    return wt, tip


def test_plain_remove_of_a_detached_worktree_saves_its_commits(tmp_path: Path) -> None:
    repo = safety_repo(tmp_path)
    wt, tip = _detached_with_commits(repo, tmp_path / "det")
    proc, out = wtls_json(repo, "remove", str(wt))
    assert proc.returncode == 0, proc.stderr
    assert out["removed"] is True and not wt.exists()
    ref = out["backupRef"]
    assert isinstance(ref, str) and ref.startswith(BACKUP_PREFIX), out
    assert git_ok(repo, "merge-base", "--is-ancestor", tip, ref)


def test_prune_saves_the_commits_of_a_deleted_detached_worktree(tmp_path: Path) -> None:
    repo = safety_repo(tmp_path)
    wt, tip = _detached_with_commits(repo, tmp_path / "det")
    shutil.rmtree(wt)
    proc, out = wtls_json(repo, "prune")
    assert proc.returncode == 0, proc.stderr
    entry = next((p for p in out["pruned"] if p["path"] == str(wt)), None)
    assert entry is not None, out
    ref = entry.get("backupRef")
    assert isinstance(ref, str) and ref.startswith(BACKUP_PREFIX), entry
    assert git_ok(repo, "merge-base", "--is-ancestor", tip, ref)
    assert wt not in listed(repo)
    assert_fsck_clean(repo)


def test_prune_keeps_a_worktree_moved_by_hand(tmp_path: Path) -> None:
    repo = safety_repo(tmp_path)
    wt = linked(repo, tmp_path / "wt")
    write(wt / "untracked.txt", "still here\n")
    moved = tmp_path / "wt2"
    wt.rename(moved)
    files = whole_folder(moved)

    status = wtls(moved, "status")
    assert "moved" in (status.stdout + status.stderr)

    proc, out = wtls_json(repo, "prune")
    assert proc.returncode == 0, proc.stderr
    assert all(p["path"] != str(wt) for p in out["pruned"]), out
    kept = [k for k in out["kept"] if k.get("path") in (str(wt), str(moved))]
    assert kept and "moved" in str(kept[0].get("reason")), out
    assert wt in listed(repo), "the record of a moved worktree was pruned"

    fixed = wtls(repo, "repair", "--apply", "--", str(moved))
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert moved in listed(repo)
    assert git(moved, "rev-parse", "--abbrev-ref", "HEAD") == "feature/a"
    assert whole_folder(moved) == files


# ----------------------------------------------------------------------------- truthful output
def _lock_packed_refs(repo: Path) -> Path:
    git(repo, "pack-refs", "--all")
    lock = repo / ".git/packed-refs.lock"
    lock.write_bytes(b"")
    return lock


def test_remove_with_a_lock_held_by_another_git_tells_the_truth(tmp_path: Path) -> None:
    repo = safety_repo(tmp_path)
    wt = linked(repo, tmp_path / "wt")
    write(wt / "committed.txt", "unmerged commit\n")
    tip = commit_all(wt, "unmerged work")
    tracked_changes(repo, wt, tmp_path)
    untracked_files(repo, wt, tmp_path)
    before, folder = capture(wt), whole_folder(wt)
    ref_map = refs(repo)
    lock = _lock_packed_refs(repo)

    proc = wtls(repo, "remove", str(wt), "--force", "--delete-branch", "--json")
    out = parse_json(proc)
    gone = not wt.exists()
    branch_there = branch_exists(repo, "feature/a")
    changed = gone or not branch_there or refs(repo) != ref_map or wt not in listed(repo)
    if not changed:
        assert proc.returncode in (1, 2), proc.stdout + proc.stderr
        assert whole_folder(wt) == folder
        assert out is None or out.get("removed") is False
        return
    assert out is not None, f"something changed but no JSON result: {proc.stderr}"
    assert "nothing changed" not in proc.stderr + proc.stdout
    assert out["removed"] is gone, (out, gone)
    assert out["branchDeleted"] is (not branch_there), (out, branch_there)
    if branch_there:  # the branch deletion is the step the lock blocks
        assert proc.returncode == 2, proc.stderr
        assert out["problems"] and any("branch" in p for p in out["problems"]), out
    if proc.returncode != 0:
        assert out["problems"], out
    if gone:
        assert out["restoreCommand"], out
        lock.unlink()
        run_restore_command(str(out["restoreCommand"]), tmp_path / "elsewhere")
        assert_same(before, capture(wt, before.ignored))
        assert git_ok(repo, "merge-base", "--is-ancestor", tip, "refs/heads/feature/a")


def test_merge_remove_with_a_lock_held_by_another_git_tells_the_truth(tmp_path: Path) -> None:
    repo = safety_repo(tmp_path)
    wt = linked(repo, tmp_path / "wt")
    write(wt / "feature.txt", "the feature\n")
    tip = commit_all(wt, "feature")
    main_before = git(repo, "rev-parse", "main")
    folder = whole_folder(wt)
    _lock_packed_refs(repo)

    proc = wtls(repo, "merge", "feature/a", "--remove", "--json")
    out = parse_json(proc)
    main_now = git(repo, "rev-parse", "main")
    gone = not wt.exists()
    branch_there = branch_exists(repo, "feature/a")
    if main_now == main_before:
        assert proc.returncode != 0
        assert out is None or out.get("merged") is False
        assert whole_folder(wt) == folder and branch_there
        return
    assert git_ok(repo, "merge-base", "--is-ancestor", tip, main_now)
    assert out is not None, f"the merge happened but no JSON result says so: {proc.stderr}"
    assert out["merged"] is True, out
    assert out["removed"] is gone, (out, gone)
    assert out["branchDeleted"] is (not branch_there), (out, branch_there)
    if branch_there or not gone:
        assert proc.returncode == 2, proc.stderr
        assert out["problems"], out
    if not gone:
        assert whole_folder(wt) == folder


# ----------------------------------------------------------------------------- concurrency, kills
def test_concurrent_writer_loses_nothing(tmp_path: Path) -> None:
    for round_ in range(WRITER_ROUNDS):
        tmp = tmp_path / f"r{round_}"
        repo = safety_repo(tmp)
        wt = linked(repo, tmp / "wt")
        untracked_files(repo, wt, tmp)
        writer = Writer(wt, seed=round_)
        writer.start()
        try:
            proc = wtls(repo, "remove", str(wt), "--force", "--json")
        finally:
            written = writer.finish()
        out = parse_json(proc)
        if wt.exists():
            assert wt in listed(repo), f"round {round_}: half-removed folder"
        else:
            assert proc.returncode in (0, 2) and out is not None, proc.stderr
            assert out["removed"] is True
            run_restore_command(out["restoreCommand"], tmp / "elsewhere")
        missing = {
            name
            for name, data in written.items()
            if not (wt / name).is_file() or (wt / name).read_bytes() != data
        }
        assert not missing, f"round {round_}: lost {sorted(missing)} written during the removal"


def _kill_repo(tmp: Path) -> tuple[Path, Path]:
    files = {f"src/m{i}/f{j}.py": f"value = {i * j}\n" * 10 for i in range(20) for j in range(30)}
    files[".gitignore"] = "build/\n"
    repo = make_repo(tmp, "proj", files=files)
    wt = linked(repo, tmp / "wt")
    for i in range(0, 20, 2):
        write(wt / f"src/m{i}/f0.py", f"edited {i}\n")
    git(wt, "add", "src/m0")
    (wt / "src/m1/f1.py").unlink()
    for i in range(150):
        write(wt / f"new/n{i // 30}/u{i}.txt", f"untracked {i}\n")
    write(wt / "build/ignored.o", "ignored\n")
    return repo, wt


def _restores_to(repo: Path, ref: str, path: Path, before: Capture) -> bool:
    proc = wtls(repo, "restore", ref, "--path", str(path))
    if proc.returncode != 0 or not path.is_dir():
        return False
    same = files_of(path, before.ignored) == before.files
    git(repo, "worktree", "remove", "--force", "--", str(path))
    return same


def test_sigkill_during_forced_remove_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(10)
    for round_ in range(KILL_ROUNDS):
        tmp = tmp_path / f"k{round_}"
        repo, wt = _kill_repo(tmp)
        before = capture(wt)
        delay = rng.uniform(0.0, 1.5)
        proc = start_wtls(repo, "remove", str(wt), "--force", "--json")
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=delay)
        kill_group(proc)
        where = f"round {round_} (kill after {delay:.2f} s)"

        intact = wt.is_dir() and files_of(wt, before.ignored) == before.files
        if not intact:
            refs_now = backup_refs(repo)
            assert refs_now, f"{where}: the folder is damaged and there is no backup ref"
            assert any(
                _restores_to(repo, ref, tmp / f"check-{i}", before)
                for i, ref in enumerate(refs_now)
            ), f"{where}: no backup ref restores the folder's bytes"
        assert_fsck_clean(repo)

        # A second forced remove (or a prune, when the record is gone) cleans up, losing nothing.
        # A folder the kill left renamed aside for its last check is put back by it first.
        aside = list(wt.parent.glob(f".{wt.name}.wtls-removing-*"))
        if wt.exists() or wt in listed(repo) or aside:
            again = wtls(repo, "remove", str(wt), "--force", "--json")
        else:
            again = wtls(repo, "prune", "--json")
        assert again.returncode == 0, f"{where}: {again.stdout}{again.stderr}"
        assert not wt.exists() and wt not in listed(repo), where
        assert listed(repo) == [repo], where
        assert_fsck_clean(repo)
        assert any(
            _restores_to(repo, ref, tmp / f"final-{i}", before)
            for i, ref in enumerate(backup_refs(repo))
        ), f"{where}: after the cleanup no backup ref restores the worktree"


def test_submodule_commit_survives_forced_remove_by_facts(tmp_path: Path) -> None:
    """The submodule's local commit is its HEAD again after the restore (``git log --all``)."""
    repo = safety_repo(tmp_path)
    wt = linked(repo, tmp_path / "wt")
    add_submodule(wt, submodule_source(tmp_path))
    local = dirty_submodule(wt / "lib")
    out = _force_remove(repo, wt)
    run_restore_command(str(out["restoreCommand"]), Path("/"))
    assert repo_facts(wt / "lib").head == local
    assert (wt / "lib/scratch.txt").read_text() == "untracked in the submodule\n"
