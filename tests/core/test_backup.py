"""The backup core on real repositories: what counts as work, and the proof against the disk."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.gitutil import add_worktree, commit_all, git, make_repo
from wtls import lifecycle as lc
from wtls.backup import (
    blob_id,
    delete_verified,
    deletion_plan,
    inspect_worktree,
    read_manifest,
    restore_backup,
    save_backup,
    verify_folder,
)
from wtls.errors import Refused
from wtls.wire import wire_object


def test_blob_id_matches_git(tmp_path: Path) -> None:
    data = b"a\r\nb\x00\xff"
    (tmp_path / "f").write_bytes(data)
    assert blob_id(data, "sha1") == git(tmp_path, "hash-object", "--no-filters", "f")


def test_a_clean_crlf_checkout_is_not_work(tmp_path: Path) -> None:
    """`eol=crlf` checkouts differ from their blobs byte for byte; a checkout writes them so."""
    repo = make_repo(tmp_path, files={".gitattributes": "* text eol=crlf\n", "a.txt": "a\nb\n"})
    wt = add_worktree(repo, tmp_path / "wt", "feature/crlf")
    assert (wt / "a.txt").read_bytes() == b"a\r\nb\r\n"
    assert inspect_worktree(wt).losses() == []
    (wt / "a.txt").write_bytes(b"a\r\nb\r\nc\r\n")
    assert inspect_worktree(wt).losses() == ["a.txt"]


def test_line_endings_alone_are_work_under_text_auto(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, files={".gitattributes": "* text=auto\n", "a.txt": "a\nb\n"})
    wt = add_worktree(repo, tmp_path / "wt", "feature/auto")
    (wt / "a.txt").write_bytes(b"a\r\nb\r\n")
    # git status may call this file clean (same normalized content); its bytes are not HEAD's.
    assert "a.txt" in inspect_worktree(wt).changed


def test_a_same_second_same_size_rewrite_is_seen(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    wt = add_worktree(repo, tmp_path / "wt", "feature/racy")
    target = wt / "cli.py"
    original = target.read_bytes()
    stamp = int(time.time())
    target.write_bytes(original.replace(b"tiny", b"TINY"))
    os.utime(target, (stamp, stamp))
    git(wt, "status", "--porcelain")
    git(wt, "update-index", "--refresh", check=False)
    target.write_bytes(original.replace(b"tiny", b"tinY"))
    os.utime(target, (stamp, stamp))
    assert "cli.py" in inspect_worktree(wt).changed


def test_repositories_and_worktrees_inside_ignored_folders_are_found(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, files={".gitignore": "build/\n", "a": "a\n"})
    wt = add_worktree(repo, tmp_path / "wt", "feature/nested")
    nested = wt / "build" / "deep" / "lib"
    nested.mkdir(parents=True)
    git(nested, "init", "-q")
    inner = add_worktree(repo, wt / "build" / "inner", "feature/inner")
    found = inspect_worktree(wt)
    kinds = {n.path: n.kind for n in found.nested}
    assert kinds == {"build/deep/lib": "repository", "build/inner": "worktree"}
    assert [n.path for n in found.worktrees_inside] == ["build/inner"]
    assert found.losses() == ["build/deep/lib/ (a git repository)"]
    with pytest.raises(Refused, match="another worktree lies inside"):
        lc.remove(repo, "feature/nested", force=True)
    assert inner.is_dir() and nested.is_dir()


def test_verify_notices_every_kind_of_difference(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    wt = add_worktree(repo, tmp_path / "wt", "feature/verify")
    (wt / "run.sh").write_text("#!/bin/sh\n")
    commit_all(wt, "script")
    seen = inspect_worktree(wt)
    assert verify_folder(wt, seen) == []
    (wt / "new.txt").write_text("appeared meanwhile\n")
    assert verify_folder(wt, seen) == ["new.txt"]
    (wt / "new.txt").unlink()
    (wt / "run.sh").chmod(0o755)
    assert verify_folder(wt, seen) == ["run.sh"]
    (wt / "run.sh").chmod(0o644)
    git(wt, "add", "run.sh")
    (wt / "cli.py").unlink()
    assert verify_folder(wt, seen) == ["cli.py"]


def test_restore_refuses_what_is_not_a_backup(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    with pytest.raises(Refused, match="no backup"):
        read_manifest(repo, "refs/wtls/backup/nothing")
    with pytest.raises(Refused, match="not a wtls backup"):
        read_manifest(repo, "HEAD")
    with pytest.raises(Refused, match="not a backup ref"):
        read_manifest(repo, "--all")


def _wt_with_ignored_build(tmp_path: Path, branch: str) -> tuple[Path, Path]:
    repo = make_repo(tmp_path, files={".gitignore": "build/\n", "a": "a\n"})
    return repo, add_worktree(repo, tmp_path / branch.replace("/", "-"), branch)


def test_a_nested_repository_behind_a_dot_git_link_or_a_long_gitfile_is_work(
    tmp_path: Path,
) -> None:
    """git uses a `.git` that is a link, or a gitdir file with trailing blank lines."""
    repo, wt = _wt_with_ignored_build(tmp_path, "feature/odd")
    elsewhere = tmp_path / "lib.gitdir"
    git(tmp_path, "init", "-q", "--bare", str(elsewhere))
    git(tmp_path, "--git-dir", str(elsewhere), "config", "core.bare", "false")
    (wt / "build" / "linked").mkdir(parents=True)
    (wt / "build" / "linked" / ".git").symlink_to(elsewhere)
    (wt / "build" / "linked" / "notes.txt").write_text("precious\n")
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", str(other))
    (wt / "long").mkdir()
    (wt / "long" / ".git").write_text(f"gitdir: {other / '.git'}\n" + "\n" * 5000)
    kinds = {n.path: n.kind for n in inspect_worktree(wt).nested}
    assert kinds == {"build/linked": "repository", "long": "repository"}
    with pytest.raises(Refused, match="uncommitted changes"):
        lc.remove(repo, "feature/odd")
    assert (wt / "build" / "linked" / "notes.txt").is_file()


def test_a_bare_repository_inside_is_never_deleted(tmp_path: Path) -> None:
    repo, wt = _wt_with_ignored_build(tmp_path, "feature/bare")
    git(tmp_path, "init", "-q", "--bare", str(wt / "build" / "mirror.git"))
    (wt / "stray").mkdir()
    (wt / "stray" / ".git").symlink_to(tmp_path / "missing")
    found = {n.path: n.kind for n in inspect_worktree(wt).nested}
    assert found == {"build/mirror.git": "bare", "stray": "unknown"}
    for force in (False, True):
        with pytest.raises(Refused, match="cannot back up"):
            lc.remove(repo, "feature/bare", force=force)
    assert (wt / "build" / "mirror.git" / "HEAD").is_file()


def test_a_removal_killed_while_deleting_is_finished_not_put_back(tmp_path: Path) -> None:
    """Deletion had begun on a verified folder: putting a half-deleted folder back would lie."""
    repo = make_repo(tmp_path, files={".gitignore": "build/\n", "cli.py": "x\n", "b.py": "b\n"})
    wt = add_worktree(repo, tmp_path / "wt", "feature/half")
    (wt / "work.txt").write_text("saved first\n")
    (wt / "build").mkdir()
    (wt / "build" / "out.o").write_text("ignored\n")
    inspection = inspect_worktree(wt)
    ref = save_backup(inspection, repo, "feature/half", "feature/half").ref
    admin = Path(git(wt, "rev-parse", "--absolute-git-dir"))
    aside = wt.parent / f".{wt.name}.wtls-removing-4242"
    os.rename(wt, aside)
    (admin / "gitdir").write_text(f"{aside / '.git'}\n")
    marker = {"backup": ref, **deletion_plan(inspection, aside)}
    (admin / "wtls-deleting").write_text(json.dumps(marker))
    (aside / "cli.py").unlink()  # the deletion had begun
    pruned = lc.prune(repo)
    assert pruned.recovered == (
        f"finished an interrupted removal of {wt} (its work is saved in {ref})",
    )
    assert not aside.exists() and not wt.exists() and not admin.exists()
    restored = tmp_path / "back"
    restore_backup(repo, ref, restored)
    assert (restored / "work.txt").read_text() == "saved first\n"
    assert (restored / "cli.py").read_text() == "x\n"


def test_files_written_during_the_deletion_are_kept(tmp_path: Path) -> None:
    """A process working inside writes by a relative path after the last check: kept."""
    repo = make_repo(tmp_path, files={".gitignore": "build/\n", "cli.py": "x\n"})
    wt = add_worktree(repo, tmp_path / "wt", "feature/late")
    inspection = inspect_worktree(wt)
    (wt / "build").mkdir()
    (wt / "build" / "late.o").write_text("ignored: may go\n")
    (wt / "late.txt").write_text("written after the last check\n")
    (wt / "cli.py").write_text("changed after the last check\n")
    kept = delete_verified(wt, deletion_plan(inspection, wt))
    assert kept == ["cli.py", "late.txt"]
    assert (wt / "late.txt").read_text() == "written after the last check\n"
    assert (wt / "cli.py").read_text() == "changed after the last check\n"
    assert not (wt / "build").exists() and (wt / ".git").is_file()


def test_a_worktrees_own_refs_are_work_and_survive_remove_and_prune(tmp_path: Path) -> None:
    """refs/worktree/* live in the worktree's private git folder; removal used to drop them."""
    repo = make_repo(tmp_path)
    wt = add_worktree(repo, tmp_path / "wt", "feature/own")
    (wt / "cli.py").write_text("experiment\n")
    only_here = commit_all(wt, "experiment")
    git(wt, "update-ref", "refs/worktree/keep", "HEAD")
    git(wt, "reset", "-q", "--hard", "HEAD~1")
    with pytest.raises(Refused, match="refs/worktree/keep"):
        lc.remove(repo, "feature/own")
    removed = lc.remove(repo, "feature/own", force=True)
    assert removed.backup_ref is not None
    assert git(repo, "for-each-ref", "--contains", only_here, "--format=%(refname)")
    restored = restore_backup(repo, removed.backup_ref)
    assert git(restored.path, "rev-parse", "refs/worktree/keep") == only_here

    gone = add_worktree(repo, tmp_path / "gone", "feature/gone")
    (gone / "cli.py").write_text("bisecting\n")
    bisected = commit_all(gone, "bisect point")
    git(gone, "update-ref", "refs/bisect/bad", bisected)
    git(gone, "reset", "-q", "--hard", "HEAD~1")
    shutil.rmtree(gone)
    pruned = lc.prune(repo)
    [entry] = [p for p in wire_object(pruned)["pruned"] if p["path"] == str(gone)]
    saved = entry["ownRefsSavedIn"]
    assert saved is not None
    assert git(repo, "rev-parse", f"{saved}/refs/bisect/bad") == bisected


def test_a_nested_repositorys_stashes_reflogs_and_hooks_come_back(tmp_path: Path) -> None:
    repo, wt = _wt_with_ignored_build(tmp_path, "feature/stash")
    lib = wt / "build" / "lib"
    lib.mkdir(parents=True)
    git(lib, "init", "-q")
    (lib / "f").write_text("1\n")
    git(lib, "add", "f")
    git(lib, "commit", "-qm", "c1")
    (lib / "f").write_text("2\n")
    git(lib, "commit", "-qam", "reflog only")
    reset_away = git(lib, "rev-parse", "HEAD")
    git(lib, "reset", "-q", "--hard", "HEAD~1")
    for n in (1, 2, 3):
        (lib / "f").write_text(f"stash {n}\n")
        git(lib, "stash", "-q")
    (lib / ".git" / "hooks" / "pre-commit").write_text("#!/bin/sh\nexit 0\n")
    stashes = git(lib, "stash", "list", "--format=%H")
    removed = lc.remove(repo, "feature/stash", force=True)
    assert removed.backup_ref is not None
    git(repo, "gc", "-q", "--prune=now")
    restore_backup(repo, removed.backup_ref)
    assert git(lib, "stash", "list", "--format=%H") == stashes
    assert git(lib, "cat-file", "-t", reset_away) == "commit"
    assert (lib / ".git" / "hooks" / "pre-commit").read_text() == "#!/bin/sh\nexit 0\n"


def test_a_nested_repository_with_worktrees_elsewhere_is_refused(tmp_path: Path) -> None:
    repo, wt = _wt_with_ignored_build(tmp_path, "feature/wts")
    lib = wt / "build" / "lib"
    lib.mkdir(parents=True)
    git(lib, "init", "-q")
    (lib / "f").write_text("1\n")
    git(lib, "add", "f")
    git(lib, "commit", "-qm", "c1")
    git(lib, "worktree", "add", "-q", "--detach", str(tmp_path / "lib-wt"))
    for force in (False, True):
        with pytest.raises(Refused, match="linked worktrees of its own"):
            lc.remove(repo, "feature/wts", force=force)
    assert git(tmp_path / "lib-wt", "rev-parse", "HEAD")


def test_a_dry_run_says_whether_force_is_needed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    wt = add_worktree(repo, tmp_path / "wt", "feature/dry")
    assert (
        wire_object(lc.remove(repo, "feature/dry", force=True, dry_run=True))["needsForce"] is False
    )
    git(repo, "worktree", "lock", str(wt))
    assert lc.remove(repo, "feature/dry", force=True, dry_run=True).needs_force is True
    git(repo, "worktree", "unlock", str(wt))
    (wt / "new.txt").write_text("work\n")
    assert lc.remove(repo, "feature/dry", force=True, dry_run=True).needs_force is True


def test_deletion_never_follows_a_folder_swapped_for_a_link(tmp_path: Path) -> None:
    """A folder replaced by a link to outside between the plan and the deletion."""
    repo = make_repo(tmp_path, files={".gitignore": "build/\n", "a": "a\n"})
    wt = add_worktree(repo, tmp_path / "wt", "feature/swap")
    (wt / "build").mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    for i in range(20):
        (wt / "build" / f"f{i}").write_text(f"{i}\n")
        (victim / f"f{i}").write_text(f"precious {i}\n")
    (victim / "a").write_text("a\n")  # same bytes as a saved file
    inspection = inspect_worktree(wt)
    plan = deletion_plan(inspection, wt)
    shutil.rmtree(wt / "build")
    (wt / "build").symlink_to(victim)
    kept = delete_verified(wt, plan)
    assert sorted(p.name for p in victim.iterdir()) == sorted(["a", *(f"f{i}" for i in range(20))])
    assert kept == ["build"]  # the link itself, which nothing saved


def test_deletion_keeps_a_nested_repository_committed_to_meanwhile(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, files={".gitignore": "build/\n", "a": "a\n"})
    wt = add_worktree(repo, tmp_path / "wt", "feature/late-commit")
    lib = wt / "lib"
    lib.mkdir()
    git(lib, "init", "-q")
    (lib / "f").write_text("1\n")
    git(lib, "add", "f")
    git(lib, "commit", "-qm", "c1")
    inspection = inspect_worktree(wt)
    plan = deletion_plan(inspection, wt)
    git(lib, "commit", "-q", "--allow-empty", "-m", "precious")
    late = git(lib, "rev-parse", "HEAD")
    kept = delete_verified(wt, plan)
    assert "lib/" in kept
    assert git(lib, "cat-file", "-t", late) == "commit"


def test_ignored_names_that_look_like_pathspec_magic(tmp_path: Path) -> None:
    """`:!x` and `:(top)x` are file names, never pathspecs, when wtls asks what is ignored."""
    repo = make_repo(tmp_path, files={".gitignore": "*.log\nbuild/\n", "a": "a\n"})
    wt = add_worktree(repo, tmp_path / "wt", "feature/magic")
    (wt / ":!debug.log").write_text("ignored\n")
    inspection = inspect_worktree(wt)
    plan = deletion_plan(inspection, wt)
    (wt / ":(top)build").mkdir()
    (wt / ":(top)build" / "todo.txt").write_text("not ignored: written meanwhile\n")
    assert delete_verified(wt, plan) == [":(top)build/todo.txt"]
    assert not (wt / ":!debug.log").exists()


def test_a_folder_moved_back_by_hand_after_a_kill_is_kept(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    wt = add_worktree(repo, tmp_path / "wt", "feature/back")
    inspection = inspect_worktree(wt)
    admin = Path(git(wt, "rev-parse", "--absolute-git-dir"))
    aside = wt.parent / f".{wt.name}.wtls-removing-4243"
    os.rename(wt, aside)
    (admin / "gitdir").write_text(f"{aside / '.git'}\n")
    (admin / "wtls-deleting").write_text(
        json.dumps({"backup": None, **deletion_plan(inspection, aside)})
    )
    os.rename(aside, wt)  # the user found it and put it back
    (wt / "new.txt").write_text("work done since\n")
    pruned = lc.prune(repo)
    assert pruned.recovered == (f"{wt} was put back by hand after an interrupted removal: kept",)
    assert git(wt, "status", "--porcelain") == "?? new.txt"


def test_a_submodule_not_checked_out_keeps_the_worktree(tmp_path: Path) -> None:
    """git keeps a deinit'ed submodule's git data in the worktree's admin dir."""
    sub = make_repo(tmp_path, name="sub", files={"s": "s\n"})
    repo = make_repo(tmp_path)
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "lib")
    commit_all(repo, "lib")
    wt = add_worktree(repo, tmp_path / "wt", "feature/deinit")
    git(wt, "-c", "protocol.file.allow=always", "submodule", "update", "--init", "-q")
    (wt / "lib" / "s").write_text("local\n")
    git(wt / "lib", "commit", "-qam", "unpushed")
    git(wt, "submodule", "deinit", "-q", "-f", "lib")
    for force in (False, True):
        with pytest.raises(Refused, match="not checked out"):
            lc.remove(repo, "feature/deinit", force=force)
    assert wt.is_dir()


def test_a_new_file_in_a_folder_of_ignored_files_is_kept(tmp_path: Path) -> None:
    """`ls-files --directory` names `foo/` when all it holds is ignored; `foo/` is not ignored."""
    repo = make_repo(tmp_path, files={".gitignore": "*.log\n", "a": "a\n"})
    wt = add_worktree(repo, tmp_path / "wt", "feature/logs")
    (wt / "foo").mkdir()
    (wt / "foo" / "x.log").write_text("ignored\n")
    inspection = inspect_worktree(wt)
    plan = deletion_plan(inspection, wt)
    (wt / "foo" / "important.txt").write_text("written meanwhile\n")
    assert delete_verified(wt, plan) == ["foo/important.txt"]
    assert (wt / "foo" / "important.txt").read_text() == "written meanwhile\n"
    assert not (wt / "foo" / "x.log").exists()


@pytest.mark.parametrize("record_moved", [False, True])
def test_merge_remove_retried_after_a_killed_removal_finishes_it(
    tmp_path: Path, record_moved: bool
) -> None:
    """`merge --remove` killed while removing: the retry puts the folder back, then removes it."""
    repo = make_repo(tmp_path, files={"cli.py": "x\n"})
    wt = add_worktree(repo, tmp_path / "wt", "feature/done")
    (wt / "feature.py").write_text("done\n")
    tip = commit_all(wt, "Feature")
    git(repo, "merge", "--no-edit", "feature/done")  # the merge itself had happened
    admin = Path(git(wt, "rev-parse", "--absolute-git-dir"))
    aside = wt.parent / f".{wt.name}.wtls-removing-4244"
    os.rename(wt, aside)  # killed right after renaming the folder aside
    if record_moved:
        (admin / "gitdir").write_text(f"{aside / '.git'}\n")
    result = lc.merge_back(repo, "feature/done", remove=True)
    assert result.merged and result.removed, result
    assert "already merged" in result.message and f"put {wt} back" in result.message
    assert not wt.exists() and not aside.exists() and not admin.exists()
    assert git(repo, "merge-base", "--is-ancestor", tip, "HEAD") == ""
