"""The watcher on real folders: what reaches the engine and what is dropped before any git runs."""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path

from tests.gitutil import add_worktree, commit_all, git
from wtls.engine import GIT_WRITE_GRACE, Engine, git_writing_until
from wtls.watch import ChangeSet, RepoWatcher, WatchTargets, classify
from wtls.worktrees import discover


def targets_for(repo: Path) -> tuple[Engine, WatchTargets]:
    engine = Engine(discover(repo))
    engine.refresh()
    return engine, engine.watch_targets()


def test_classify_git_dir_events(repo: Path, tmp_path: Path) -> None:
    linked = add_worktree(repo, tmp_path / "linked", "feature/x")
    _, t = targets_for(repo)
    common = (repo / ".git").resolve()
    admin = Path(git(linked, "rev-parse", "--absolute-git-dir"))
    main = repo.resolve()

    c = classify([common / "refs" / "heads" / "main"], t)
    assert c.refs and not c.worktrees
    c = classify([common / "objects" / "ab" / "cdef", common / "logs" / "HEAD"], t)
    assert not c
    c = classify([common / "index.lock"], t)
    assert not c
    c = classify([common / "index"], t)
    assert c.worktrees == {main}
    c = classify([admin / "HEAD"], t)
    assert c.worktrees == {linked.resolve()} and not c.listing
    c = classify([common / "worktrees" / "new-one"], t)
    assert c.listing
    c = classify([admin / "locked"], t)
    assert c.listing
    c = classify([common / "MERGE_HEAD"], t)
    assert c.worktrees == {main}


def test_classify_worktree_files(repo: Path, tmp_path: Path) -> None:
    linked = add_worktree(repo, tmp_path / "linked", "feature/x")
    (linked / "build").mkdir()
    (linked / ".gitignore").write_text("build/\n")
    _engine, t = targets_for(repo)
    lroot = linked.resolve()
    c = classify([lroot / "src" / "a.py"], t)
    assert c.worktrees == {lroot} and c.files == {lroot: {lroot / "src" / "a.py"}}
    assert not classify([lroot / "node_modules" / "x" / "index.js"], t)
    # Folders git ignores are dropped once known.
    assert (lroot / "build") in t.ignored_dirs[lroot]
    assert not classify([lroot / "build" / "out.o"], t)
    # The linked worktree's .git file is its link: a listing change.
    assert classify([lroot / ".git"], t).listing
    # A .gitignore change means everything may differ.
    assert classify([lroot / ".gitignore"], t).everything
    # Deleting a worktree root is a listing change.
    assert classify([lroot], t).listing
    # Globs from settings.
    t2 = WatchTargets(common_dir=t.common_dir, worktrees=t.worktrees, ignore_globs=("*.log",))
    assert not classify([lroot / "debug.log"], t2)


def test_watcher_sees_real_writes_and_drops_ignored_floods(repo: Path, tmp_path: Path) -> None:
    (repo / ".gitignore").write_text("node_modules/\n")
    commit_all(repo, "ignore")
    (repo / "node_modules").mkdir()
    _engine, t = targets_for(repo)
    got: queue.Queue[ChangeSet] = queue.Queue()
    watcher = RepoWatcher(t, got.put)
    watcher.start()
    try:
        # A flood in an ignored folder: nothing comes through.
        for i in range(300):
            (repo / "node_modules" / f"f{i}.js").write_text("x")
        # Then one real edit: exactly that comes through (no flood events mixed in).
        (repo / "cli.py").write_text("edited\n")
        change = got.get(timeout=10)
        while not change.files:
            change = got.get(timeout=10)
        assert change.files == {repo.resolve(): {repo.resolve() / "cli.py"}}
    finally:
        watcher.stop()


def test_retarget_watches_a_new_worktree_before_returning(repo: Path, tmp_path: Path) -> None:
    engine, t = targets_for(repo)
    got: queue.Queue[ChangeSet] = queue.Queue()
    watcher = RepoWatcher(t, got.put)
    watcher.start()
    try:
        new = add_worktree(repo, tmp_path / "new", "feature/new")
        engine.refresh()
        watcher.retarget(engine.watch_targets())
        assert new.resolve() in watcher.watched
        # The very next write there is seen.
        (new / "first.txt").write_text("x\n")
        seen = threading.Event()
        for _ in range(20):
            change = got.get(timeout=10)
            if new.resolve() in change.worktrees and change.files.get(new.resolve()):
                seen.set()
                break
        assert seen.is_set()
    finally:
        watcher.stop()


def test_engine_refresh_reports_only_real_changes(repo: Path) -> None:
    engine = Engine(discover(repo))
    first = engine.refresh()
    assert first.changed and first.listing_changed
    again = engine.refresh(ChangeSet(worktrees={repo.resolve()}))
    assert not again.changed and not again.listing_changed
    (repo / "x.txt").write_text("x\n")
    third = engine.refresh(ChangeSet(worktrees={repo.resolve()}))
    assert third.changed and third.state.worktrees[0].status.untracked == 1


def test_refs_change_rereads_worktrees_with_an_upstream(repo: Path, tmp_path: Path) -> None:
    work = add_worktree(repo, tmp_path / "work", "feature/w")
    git(work, "branch", "--set-upstream-to=main")
    engine = Engine(discover(repo))
    engine.refresh()
    (repo / "m.txt").write_text("m\n")
    commit_all(repo, "m")  # moves main, the upstream of feature/w
    refreshed = engine.refresh(ChangeSet(refs=True))
    wt = refreshed.state.find(work)
    assert wt is not None and wt.status.behind == 1


def test_git_writing_until_waits_only_for_young_locks(tmp_path: Path) -> None:
    lock = tmp_path / "index.lock"
    now = time.time()
    assert git_writing_until([lock], now) is None  # no lock
    lock.write_bytes(b"")
    os.utime(lock, (now - 0.5, now - 0.5))
    assert git_writing_until([lock], now) == now - 0.5 + GIT_WRITE_GRACE
    # A lock older than the grace (a long operation, a crashed git) is not waited for.
    os.utime(lock, (now - GIT_WRITE_GRACE - 1, now - GIT_WRITE_GRACE - 1))
    assert git_writing_until([lock], now) is None
    # A lock from the future (clock skew) is waited for no longer than the grace.
    os.utime(lock, (now + 3600, now + 3600))
    assert git_writing_until([lock], now) == now + GIT_WRITE_GRACE
    # The youngest of several decides.
    other = tmp_path / "other.lock"
    other.write_bytes(b"")
    os.utime(lock, (now - 1.5, now - 1.5))
    os.utime(other, (now - 0.2, now - 0.2))
    assert git_writing_until([lock, other], now) == now - 0.2 + GIT_WRITE_GRACE


def test_index_locks_of_a_change(repo: Path, tmp_path: Path) -> None:
    wipe = add_worktree(repo, tmp_path / "wipe", "feature/wipe")
    engine = Engine(discover(repo))
    engine.refresh()
    common = repo / ".git"
    wipe_admin = common / "worktrees" / "wipe"
    assert engine.index_locks(ChangeSet(worktrees={wipe})) == [wipe_admin / "index.lock"]
    assert engine.index_locks(ChangeSet(worktrees={repo})) == [common / "index.lock"]
    assert engine.index_locks(ChangeSet(refs=True)) == []
    # A listing change (a worktree being added) also looks at every admin dir, listed or not.
    (common / "worktrees" / "new").mkdir()
    locks = set(engine.index_locks(ChangeSet(listing=True)))
    assert locks == {
        common / "index.lock",
        wipe_admin / "index.lock",
        common / "worktrees" / "new" / "index.lock",
    }


def test_private_watchfiles_api_is_what_wtls_uses(tmp_path: Path) -> None:
    """wtls.watch uses watchfiles' private ``_rust_notify`` (see the comment there): pin the
    exact calls, so a watchfiles release that changes them fails here, not in the field."""
    from watchfiles._rust_notify import RustNotify, WatchfilesRustInternalError

    assert issubclass(WatchfilesRustInternalError, Exception)
    notify = RustNotify([str(tmp_path)], False, False, 300, True, True)
    try:
        # Nothing happened: a timeout, reported as the string "timeout".
        assert notify.watch(50, 10, 100, None) == "timeout"
        (tmp_path / "new.txt").write_text("x")
        changes: set[tuple[int, str]] = set()
        deadline = time.monotonic() + 10
        while not changes and time.monotonic() < deadline:
            result = notify.watch(50, 10, 1000, None)
            if not isinstance(result, str):
                changes = result
        assert changes, "no event for a new file"
        kind, path = next(iter(changes))
        assert isinstance(kind, int) and kind in (1, 2, 3)  # added, modified, deleted
        assert Path(path).name == "new.txt"

        # A stop event that is set ends the wait with "stop" (how a retarget interrupts it).
        class Stopped:
            def is_set(self) -> bool:
                return True

        assert notify.watch(50, 10, 5000, Stopped()) == "stop"
    finally:
        notify.close()
