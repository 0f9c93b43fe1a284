"""Broken worktree links on real repositories: detect, explain, repair (wtls.repair)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.gitutil import add_worktree, git, make_repo
from wtls.errors import Refused
from wtls.repair import check_link, describe, diagnose, repair
from wtls.wire import wire_object

WIPE = "tasks-app-wipe"
#: Spaces and non-ASCII letters on purpose: every path must survive quoting.
REMAINING = "tasks app – rëmaining"


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The seed's tasks-app with two linked worktrees next to it."""
    main = make_repo(tmp_path)
    wipe = add_worktree(main, tmp_path / WIPE, "feature/wipe")
    remaining = add_worktree(main, tmp_path / REMAINING, "feature/remaining")
    return main, wipe, remaining


def worktree_paths(repo: Path) -> list[Path]:
    """Paths from ``git worktree list --porcelain``."""
    out = git(repo, "worktree", "list", "--porcelain")
    return [
        Path(line[len("worktree ") :]) for line in out.splitlines() if line.startswith("worktree ")
    ]


def listed(repo: Path) -> tuple[Path, set[Path]]:
    """(main worktree, set of linked worktrees) as ``git worktree list`` shows them."""
    paths = worktree_paths(repo)
    return paths[0], set(paths[1:])


def git_ok(folder: Path) -> bool:
    """Whether plain ``git status`` works in ``folder``."""
    proc = subprocess.run(["git", "status"], cwd=folder, capture_output=True, check=False)
    return proc.returncode == 0


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path → bytes), to prove nothing was touched."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_intact_repository_has_no_breakage(setup: tuple[Path, Path, Path]) -> None:
    main, wipe, remaining = setup
    assert diagnose(main) == []
    assert diagnose(wipe / "cli.py") == []
    result = repair(main, apply=False)
    assert result.verified and not result.breakages and not result.commands
    assert result.fix is None
    assert check_link(wipe) is None and check_link(remaining) is None
    assert describe([]) == "All worktree links are intact."


def test_main_worktree_moved_then_repaired_from_new_place(
    setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    main, wipe, remaining = setup
    moved = tmp_path / "elsewhere" / "tasks app moved"
    moved.parent.mkdir()
    shutil.move(main, moved)
    assert not git_ok(wipe) and not git_ok(remaining)

    # Seen from a linked worktree: the new place is found among the candidates.
    [b] = [x for x in diagnose(wipe, [moved]) if x.worktree == wipe]
    assert b.kind == "gitdir-missing" and b.repairable
    assert b.repository == moved / ".git"
    assert "moved" in b.message and str(moved) in b.message
    assert b.gitdir == main / ".git" / "worktrees" / WIPE

    # Seen from the moved main worktree: both linked worktrees point at the old place.
    found = {x.worktree: x for x in diagnose(moved)}
    assert set(found) == {wipe, remaining}
    assert all(x.kind == "gitdir-missing" and x.repairable for x in found.values())

    # Dry run: a plan, nothing changed.
    before = (wipe / ".git").read_text()
    plan = repair(moved, apply=False)
    assert not plan.applied and not plan.verified and len(plan.breakages) == 2
    assert plan.commands and "worktree repair" in plan.commands[0]
    assert (wipe / ".git").read_text() == before
    # What gets past the dry run is an action, not a CLI flag in the editor's messages.
    repair_fix = {"action": "repair", "option": "apply", "label": "Repair worktree links"}
    assert wire_object(plan)["fix"] == repair_fix
    assert [b["action"] for b in wire_object(plan)["broken"]] == [repair_fix, repair_fix]
    assert not any("Run with --apply" in m for m in plan.messages)

    result = repair(moved, apply=True)
    assert result.verified, result.messages
    assert not result.remaining
    changed = {c.file: c for c in result.changed}
    assert changed[wipe / ".git"].before == f"gitdir: {main}/.git/worktrees/{WIPE}"
    assert changed[wipe / ".git"].after == f"gitdir: {moved}/.git/worktrees/{WIPE}"
    assert remaining / ".git" in changed
    assert git_ok(wipe) and git_ok(remaining)
    assert listed(moved) == (moved, {wipe, remaining})
    assert git(wipe, "branch", "--show-current") == "feature/wipe"
    assert any(m.startswith("repaired: ") for m in result.messages)
    assert wire_object(result)["verified"] is True


def test_main_worktree_moved_repaired_from_linked_side_and_found_as_sibling(
    setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    main, wipe, remaining = setup
    moved = tmp_path / "tasks-app-renamed"
    shutil.move(main, moved)
    # No candidates: the old main's siblings are searched.
    [b, *_] = diagnose(wipe)
    assert b.kind == "gitdir-missing" and b.repository == moved / ".git"
    assert b.fix == f"wtls repair --apply -- {moved} {wipe}"

    result = repair(wipe, apply=True)
    assert result.verified, result.messages
    assert git_ok(wipe) and git_ok(remaining)
    assert listed(moved) == (moved, {wipe, remaining})


def test_linked_folder_moved_by_hand_repaired_from_linked_side(
    setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    main, wipe, _ = setup
    new = tmp_path / "moved wïpe"
    shutil.move(wipe, new)
    # From the moved folder itself.
    [b] = diagnose(new)
    assert b.kind == "folder-moved" and b.worktree == new and b.registered == wipe
    assert b.repairable and "moved by hand" in b.message
    # From the main side, the moved folder is found next to the old one.
    from_main = {x.worktree: x for x in diagnose(main)}
    assert from_main[new].kind == "folder-moved"

    result = repair(new, apply=True)
    assert result.verified, result.messages
    admin = main / ".git" / "worktrees" / WIPE / "gitdir"
    assert {c.file for c in result.changed} == {admin}
    assert admin.read_text().strip() == str(new / ".git")
    assert new in worktree_paths(main) and wipe not in worktree_paths(main)
    assert "prunable" not in git(main, "worktree", "list", "--porcelain")


def test_linked_folder_moved_far_away_repaired_from_main_side(
    setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    main, _wipe, remaining = setup
    far = tmp_path / "deep" / "er"
    far.mkdir(parents=True)
    new = far / "remaining"
    shutil.move(remaining, new)
    # Not among the siblings and not a candidate: git only knows the folder is gone.
    missing = {x.worktree: x for x in diagnose(main)}[remaining]
    assert missing.kind == "folder-missing" and not missing.repairable
    assert "wtls prune" in missing.message and "NEW_PATH" in missing.fix
    # Named by the user: found, and repaired from the main side.
    assert {x.worktree: x for x in diagnose(main, [new])}[new].kind == "folder-moved"
    plan = repair(main, [new], apply=False)
    assert [b.kind for b in plan.breakages] == ["folder-moved"]
    result = repair(main, [new], apply=True)
    assert result.verified, result.messages
    assert git_ok(new)
    assert listed(main)[1] == {tmp_path / WIPE, new}


def test_main_and_linked_moved_repaired_in_one_command(
    setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    main, wipe, remaining = setup
    box = tmp_path / "box"
    box.mkdir()
    shutil.move(main, box / "main")
    shutil.move(wipe, box / "wipe")
    result = repair(box / "main", [box / "wipe"], apply=True)
    assert result.verified, result.messages
    assert listed(box / "main") == (box / "main", {box / "wipe", remaining})
    assert git_ok(box / "wipe") and git_ok(remaining)


def test_admin_dir_deleted_is_explained_and_reattached_with_branch(
    setup: tuple[Path, Path, Path],
) -> None:
    main, wipe, _ = setup
    (wipe / "cli.py").write_text("# changed\n")
    (wipe / "notes.txt").write_text("untracked work\n")
    files_before = {k: v for k, v in snapshot(wipe).items() if k != ".git"}
    shutil.rmtree(main / ".git" / "worktrees" / WIPE)

    # git itself cannot repair this from either side.
    assert (
        subprocess.run(
            ["git", "worktree", "repair"], cwd=wipe, capture_output=True, check=False
        ).returncode
        != 0
    )
    assert (
        subprocess.run(
            ["git", "worktree", "repair", str(wipe)], cwd=main, capture_output=True, check=False
        ).returncode
        != 0
    )

    [b] = [x for x in diagnose(wipe) if x.worktree == wipe]
    assert b.kind == "gitdir-missing" and not b.repairable
    assert "git cannot repair this" in b.message and "intact" in b.message
    assert "feature/wipe" in b.message  # listed as a branch checked out nowhere
    assert b.fix == f"wtls repair --apply --branch BRANCH -- {wipe}"

    # Without a branch: nothing changed, clearly not verified.
    result = repair(wipe, apply=True)
    assert not result.verified and result.remaining and not result.changed
    assert {k: v for k, v in snapshot(wipe).items() if k != ".git"} == files_before

    result = repair(wipe, apply=True, branch="feature/wipe")
    assert result.verified, result.messages
    assert check_link(wipe) is None
    assert git(wipe, "branch", "--show-current") == "feature/wipe"
    # The user's work is intact and shows as what it is: a change and an untracked file.
    assert {k: v for k, v in snapshot(wipe).items() if k != ".git"} == files_before
    assert git(wipe, "diff", "--name-only") == "cli.py"
    assert git(wipe, "diff", "--cached", "--name-only") == ""
    assert git(wipe, "ls-files", "--others", "--exclude-standard") == "notes.txt"
    assert wipe in worktree_paths(main)
    # The new git data got the old id back, so the .git file reads as before; the admin dir's
    # back-link is new.
    assert (wipe / ".git").read_text().strip() == f"gitdir: {main}/.git/worktrees/{WIPE}"
    changed = {c.file: c for c in result.changed}
    admin_link = changed[main / ".git" / "worktrees" / WIPE / "gitdir"]
    assert admin_link.before is None and admin_link.after == str(wipe / ".git")
    # The temporary folder used to create the git data is gone, nothing else is registered.
    assert len(worktree_paths(main)) == 3


def test_admin_dir_deleted_names_exactly_the_branches_checked_out_nowhere(
    setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """The branch list comes from git's worktree listing: a worktree whose folder is gone
    (still registered) keeps its branch taken, and a branch of no worktree is free."""
    main, wipe, _ = setup
    gone = add_worktree(main, tmp_path / "gone", "feature/gone")
    shutil.rmtree(gone)
    git(main, "branch", "spare")
    shutil.rmtree(main / ".git" / "worktrees" / WIPE)
    [b] = [x for x in diagnose(wipe) if x.worktree == wipe]
    assert b.message.endswith(" Branches not checked out anywhere: feature/wipe, spare.")


def test_reattach_refuses_a_branch_checked_out_elsewhere(setup: tuple[Path, Path, Path]) -> None:
    main, wipe, _ = setup
    shutil.rmtree(main / ".git" / "worktrees" / WIPE)
    with pytest.raises(Refused, match="feature/remaining"):
        repair(wipe, apply=True, branch="feature/remaining")
    assert len(worktree_paths(main)) == 2
    assert (wipe / ".git").read_text().strip() == f"gitdir: {main}/.git/worktrees/{WIPE}"


def test_main_repository_deleted_is_explained_without_touching_files(
    setup: tuple[Path, Path, Path],
) -> None:
    main, wipe, _ = setup
    (wipe / "cli.py").write_text("# precious\n")
    before = snapshot(wipe)
    shutil.rmtree(main)
    first = diagnose(wipe)
    assert [b.kind for b in first] == ["main-deleted"]
    b = first[0]
    assert not b.repairable
    assert "history" in b.message and "intact" in b.message and str(main) in b.message
    assert "git -C" in b.fix and "init" in b.fix and ".git.broken" in b.fix
    # Stable: asking again (a refresh) gives the same answer, no exception.
    assert diagnose(wipe) == first
    result = repair(wipe, apply=True)
    assert not result.verified and not result.changed and not result.commands
    assert snapshot(wipe) == before


def test_copied_worktree_is_reported(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, wipe, _ = setup
    copy = tmp_path / "wipe-copy"
    shutil.copytree(wipe, copy)
    [b] = [x for x in diagnose(copy) if x.worktree == copy]
    assert b.kind == "folder-copied" and not b.repairable and b.registered == wipe
    assert "same git data" in b.message


def test_repair_refuses_paths_that_do_not_exist_or_are_not_repositories(tmp_path: Path) -> None:
    with pytest.raises(Refused, match="does not exist"):
        repair(tmp_path, [tmp_path / "nope"], apply=False)
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(Refused, match="git repository"):
        repair(plain, apply=False)


def test_second_repository_with_own_worktree_is_not_confused(tmp_path: Path) -> None:
    """Two repositories side by side: a moved main is matched by its own back-links only."""
    a = make_repo(tmp_path / "a")
    b = make_repo(tmp_path / "b")
    wa = add_worktree(a, tmp_path / "a" / "wt", "x")
    add_worktree(b, tmp_path / "b" / "wt", "x")
    shutil.move(a, tmp_path / "a" / "moved")
    [found] = diagnose(wa)
    assert found.repository == tmp_path / "a" / "moved" / ".git"


def test_cli_repair_dry_run_then_apply(
    setup: tuple[Path, Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from wtls.cli import main as cli

    main, wipe, remaining = setup
    moved = tmp_path / "moved main"
    shutil.move(main, moved)
    monkeypatch.chdir(wipe)
    assert cli(["repair"]) == 1  # dry run, something to repair
    out = capsys.readouterr().out
    assert "broken (gitdir-missing)" in out and "worktree repair" in out
    assert not git_ok(wipe)  # the dry run changed nothing
    assert cli(["repair", "--apply", "--json", str(moved)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["verified"] is True and result["applied"] is True
    assert {c["file"] for c in result["changed"]} >= {str(wipe / ".git"), str(remaining / ".git")}
    assert cli(["repair"]) == 0
    assert "intact" in capsys.readouterr().out


def test_cli_repair_apply_exits_1_when_not_repairable(
    setup: tuple[Path, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from wtls.cli import main as cli

    main, wipe, _ = setup
    shutil.rmtree(main)
    monkeypatch.chdir(wipe)
    assert cli(["repair", "--apply"]) == 1
    out = capsys.readouterr().out
    assert "still broken" in out and "NOT verified" in out


def test_deleted_dotgit_file_is_rewritten_from_main_side(setup: tuple[Path, Path, Path]) -> None:
    main, wipe, _ = setup
    (wipe / ".git").unlink()
    [b] = diagnose(main)
    assert b.kind == "dotgit-missing" and b.worktree == wipe and b.repairable
    result = repair(main, apply=True)
    assert result.verified, result.messages
    assert result.commands == (f"git -C {main} worktree repair",)
    [change] = result.changed
    assert change.file == wipe / ".git" and change.before is None
    assert change.after == f"gitdir: {main}/.git/worktrees/{WIPE}"
    assert git_ok(wipe)


def test_missing_admin_gitdir_file_is_named_and_repaired(setup: tuple[Path, Path, Path]) -> None:
    # `git worktree list` silently leaves out a worktree whose record lost its `gitdir` file,
    # and `git worktree prune` would delete the record: wtls names it and git repairs it.
    main, wipe, remaining = setup
    before = snapshot(wipe)
    admin = main / ".git" / "worktrees" / WIPE
    (admin / "gitdir").unlink()
    assert wipe not in listed(main)[1]
    [b] = diagnose(wipe)
    assert b.kind == "backlink-missing" and b.worktree == wipe and b.repairable
    assert b.gitdir == admin and b.repository == main / ".git"
    assert "missing from `git worktree list`" in b.message
    assert b.fix == f"wtls repair --apply -- {wipe}"
    problem = b.to_problem()
    assert problem.path == wipe / ".git" and problem.code == "backlink-missing"
    assert problem.message.endswith(f"Fix: {b.fix}")
    # The main side cannot know where the worktree is: nothing to report from there.
    assert diagnose(remaining) == []

    result = repair(wipe, apply=True)
    assert result.verified, result.messages
    assert result.commands == (f"git -C {main} worktree repair -- {wipe}",)
    [change] = result.changed
    assert change.file == admin / "gitdir" and change.before is None
    assert change.after == f"{wipe}/.git"
    assert listed(main)[1] == {wipe, remaining}
    assert diagnose(wipe) == [] and snapshot(wipe) == before


def test_status_in_a_worktree_git_no_longer_lists(
    setup: tuple[Path, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from wtls.cli import main as cli

    main, wipe, _ = setup
    (main / ".git" / "worktrees" / WIPE / "gitdir").unlink()
    monkeypatch.chdir(wipe)
    assert cli(["status"]) == 1
    out = capsys.readouterr().out
    assert "backlink-missing" in out and f"wtls repair --apply -- {wipe}" in out
    assert cli(["status", "--json"]) == 1
    [broken] = json.loads(capsys.readouterr().out)["broken"]
    assert broken["kind"] == "backlink-missing" and broken["worktree"] == str(wipe)
    assert cli(["repair", "--apply"]) == 0
    capsys.readouterr()
    assert cli(["status"]) == 0
    assert "feature/wipe" in capsys.readouterr().out


def test_main_worktrees_with_a_git_file_are_not_broken(tmp_path: Path) -> None:
    # A main worktree whose .git is a file (a submodule, `git init --separate-git-dir`, the
    # "bare repository + .git file" layout) has no back-link record: nothing is broken.
    from wtls.repair import unlisted
    from wtls.worktrees import discover

    separate = tmp_path / "separate"
    git(
        tmp_path,
        "init",
        "-q",
        "-b",
        "main",
        "--separate-git-dir",
        str(tmp_path / "sep.git"),
        str(separate),
    )
    git(separate, "commit", "-q", "--allow-empty", "-m", "init")

    layout = tmp_path / "layout"
    source = make_repo(tmp_path / "src")
    git(tmp_path, "clone", "-q", "--bare", str(source), str(layout / ".bare"))
    (layout / ".git").write_text("gitdir: ./.bare\n")
    add_worktree(layout, layout / "feat", "feat", "main")

    sub_source = make_repo(tmp_path / "subsrc")
    outer = make_repo(tmp_path / "outer")
    git(outer, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub_source), "sub")
    submodule = outer / "sub"

    for folder in (separate, layout, layout / "feat", submodule):
        repo = discover(folder)
        assert unlisted(repo, folder) is None, folder
        assert diagnose(folder) == [], folder
    # Inside the bare git dir itself: no worktree to look for.
    assert unlisted(discover(layout / ".bare"), layout / ".bare") is None
