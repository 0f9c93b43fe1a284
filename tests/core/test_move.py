"""Moving linked worktrees safely (wtls.repair.move) on real repositories."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.gitutil import add_worktree, commit_all, git, make_repo
from wtls.cli.render import fix_words
from wtls.errors import Fix, Refused
from wtls.repair import check_link, move
from wtls.wire import wire_object


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    """tasks-app and one linked worktree on feature/wipe."""
    main = make_repo(tmp_path)
    wipe = add_worktree(main, tmp_path / "tasks-app-wipe", "feature/wipe")
    return main, wipe


def listing(repo: Path) -> str:
    """``git worktree list --porcelain``: compared before and after a refusal."""
    return git(repo, "worktree", "list", "--porcelain")


def test_move_clean_worktree_by_path(setup: tuple[Path, Path], tmp_path: Path) -> None:
    main, wipe = setup
    dest = tmp_path / "agents" / "wïpe with space"
    dest.parent.mkdir()
    result = move(main, wipe, dest)
    assert result.source == wipe and result.destination == dest
    assert result.branch == "feature/wipe"
    assert wire_object(result) == {"from": str(wipe), "to": str(dest), "branch": "feature/wipe"}
    assert not wipe.exists() and (dest / "cli.py").is_file()
    assert check_link(dest) is None
    assert f"worktree {dest}" in listing(main)
    assert git(dest, "branch", "--show-current") == "feature/wipe"


def test_move_by_branch_name_from_the_worktree_itself(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    main, wipe = setup
    dest = tmp_path / "wipe2"
    result = move(wipe, "feature/wipe", dest)
    assert result.destination == dest and check_link(dest) is None
    assert f"worktree {dest}" in listing(main)


def test_move_relative_destination_is_relative_to_start(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    main, wipe = setup
    result = move(main, wipe, Path("../rel-dest"))
    assert result.destination == tmp_path / "rel-dest"
    assert check_link(tmp_path / "rel-dest") is None


def test_main_worktree_refused(setup: tuple[Path, Path], tmp_path: Path) -> None:
    main, _ = setup
    before = listing(main)
    with pytest.raises(Refused, match="main worktree"):
        move(main, main, tmp_path / "x")
    assert listing(main) == before and not (tmp_path / "x").exists()


def test_locked_worktree_refused(setup: tuple[Path, Path], tmp_path: Path) -> None:
    main, wipe = setup
    git(main, "worktree", "lock", "--reason", "agent running", str(wipe))
    before = listing(main)
    with pytest.raises(Refused, match=r"locked \(agent running\)"):
        move(main, wipe, tmp_path / "x")
    assert listing(main) == before and wipe.is_dir() and not (tmp_path / "x").exists()


def test_dirty_worktree_refused_unless_forced(setup: tuple[Path, Path], tmp_path: Path) -> None:
    main, wipe = setup
    (wipe / "cli.py").write_text("# work in progress\n")
    before = listing(main)
    with pytest.raises(Refused, match=r"uncommitted changes \(1 paths\)") as refused:
        move(main, wipe, tmp_path / "x")
    assert listing(main) == before and not (tmp_path / "x").exists()
    assert refused.value.fixes == (Fix(action="move", option="force", label="Move anyway"),)
    assert "or pass --force to move it anyway" in refused.value.worded(fix_words)
    assert "--force" not in str(refused.value)
    assert (wipe / "cli.py").read_text() == "# work in progress\n"
    # Forced: the change moves with the folder.
    move(main, wipe, tmp_path / "x", force=True)
    assert (tmp_path / "x" / "cli.py").read_text() == "# work in progress\n"
    assert git(tmp_path / "x", "diff", "--name-only") == "cli.py"


def test_worktree_with_submodule_refused_as_git_does(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    main, wipe = setup
    lib = make_repo(tmp_path / "libs", "lib", {"lib.py": "X = 1\n"})
    git(wipe, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "lib")
    commit_all(wipe, "add lib")
    before = listing(main)
    with pytest.raises(Refused, match="submodules"):
        move(main, wipe, tmp_path / "x", force=True)
    assert listing(main) == before and not (tmp_path / "x").exists()
    # git itself agrees.
    proc = subprocess.run(
        ["git", "worktree", "move", str(wipe), str(tmp_path / "y")],
        cwd=main,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0 and "submodules cannot be moved" in proc.stderr
    assert not (tmp_path / "y").exists()


def test_existing_destination_and_missing_parent_refused(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    main, wipe = setup
    taken = tmp_path / "taken"
    taken.mkdir()
    before = listing(main)
    with pytest.raises(Refused, match="already exists"):
        move(main, wipe, taken)
    with pytest.raises(Refused, match="does not exist: create it first"):
        move(main, wipe, tmp_path / "no" / "such" / "dir")
    with pytest.raises(Refused, match="inside the worktree"):
        move(main, wipe, wipe / "sub")
    with pytest.raises(Refused, match="neither the path nor the branch"):
        move(main, "feature/nope", tmp_path / "z")
    assert listing(main) == before and wipe.is_dir()


def test_missing_folder_refused(setup: tuple[Path, Path], tmp_path: Path) -> None:
    main, wipe = setup
    wipe.rename(tmp_path / "hand-moved")
    with pytest.raises(Refused, match="wtls repair"):
        move(main, wipe, tmp_path / "x")


def test_cli_move(
    setup: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from wtls.cli import main as cli

    main, wipe = setup
    monkeypatch.chdir(main)
    assert cli(["move", ".", str(tmp_path / "x")]) == 1
    assert "main worktree" in capsys.readouterr().err
    assert cli(["move", "--json", "feature/wipe", "../moved"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "from": str(wipe),
        "to": str(tmp_path / "moved"),
        "branch": "feature/wipe",
    }


@pytest.mark.parametrize(
    ("where", "match"),
    [
        ("other/nested", r"inside the worktree .*other"),
        ("main/sub/x", r"inside the worktree .*tasks-app"),
        ("main/.git/wt", r"inside the git folder"),
        ("main/.git/worktrees/tasks-app-wipe/x", r"inside the git folder"),
        ("link-to-other/nested", r"inside the worktree .*other"),
        ("elsewhere/.git/wt", r"inside a \.git folder"),
        ("wipe/deeper/x", r"inside the worktree .*tasks-app-wipe"),
    ],
)
def test_destination_inside_a_worktree_or_git_dir_refused(
    setup: tuple[Path, Path], tmp_path: Path, where: str, match: str
) -> None:
    main, wipe = setup
    other = add_worktree(main, tmp_path / "other", "feature/other")
    (tmp_path / "link-to-other").symlink_to(other)
    (tmp_path / "elsewhere" / ".git").mkdir(parents=True)
    (wipe / "deeper").mkdir()
    (main / "sub").mkdir()
    roots = {"main": main, "wipe": wipe}
    head, _, rest = where.partition("/")
    dest = roots.get(head, tmp_path / head) / rest
    before = (listing(main), sorted(p.name for p in tmp_path.iterdir()))
    with pytest.raises(Refused, match=match):
        move(main, wipe, dest)
    assert (listing(main), sorted(p.name for p in tmp_path.iterdir())) == before
    assert check_link(wipe) is None and not dest.exists()


def test_destination_inside_a_bare_repository_refused(tmp_path: Path) -> None:
    main = make_repo(tmp_path)
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(main), str(bare))
    linked = tmp_path / "linked"
    git(bare, "worktree", "add", "-q", "-b", "feature/l", str(linked), "main")
    (bare / "refs" / "inner").mkdir(exist_ok=True)
    before = listing(bare)
    with pytest.raises(Refused, match=r"inside the git folder"):
        move(bare, linked, bare / "refs" / "inner" / "x")
    assert listing(bare) == before and check_link(linked) is None


def test_a_worktree_with_another_worktree_inside_is_not_moved(tmp_path: Path) -> None:
    """git would keep the inner worktree's record at the old place; prune would then forget it."""
    repo = make_repo(tmp_path, files={".gitignore": "build/\n", "a": "a\n"})
    outer = add_worktree(repo, tmp_path / "outer", "feature/outer")
    inner = add_worktree(repo, outer / "build" / "inner", "feature/inner")
    with pytest.raises(Refused, match="another worktree lies inside"):
        move(repo, str(outer), tmp_path / "elsewhere")
    assert inner.is_dir() and not (tmp_path / "elsewhere").exists()
