"""``wtls demo``: the course's two-agent lab on a throwaway repository, as each editor sees it.

It builds the seed's ``tasks-app`` in a temporary folder, adds the lab's two agent worktrees
(``feature/wipe``, ``feature/remaining``), lets each "agent" edit the same usage line (one
commits, one does not), runs the real engine and conflict prediction, prints what each window
would show, and removes everything. No network, no editor, no global git identity needed.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from wtls.engine import Engine
from wtls.git import run_git
from wtls.predict import ConflictPredictor, Prediction, notices_for
from wtls.problems import stale_problems, worktree_problems
from wtls.worktrees import RepositoryState, WorktreeState, discover

TASKS_APP = '''\
"""tasks-app: a tiny task list kept in tasks.json."""
import json
import sys
from pathlib import Path

STORE = Path("tasks.json")
USAGE = "usage: python cli.py add <text> | list | done <index>"


def load():
    return json.loads(STORE.read_text()) if STORE.exists() else []


def save(tasks):
    STORE.write_text(json.dumps(tasks, indent=2))


def main(argv):
    tasks = load()
    if argv[:1] == ["add"] and len(argv) > 1:
        tasks.append({"text": " ".join(argv[1:]), "done": False})
    elif argv[:1] == ["list"]:
        for i, task in enumerate(tasks):
            print(f"{i}. [{'x' if task['done'] else ' '}] {task['text']}")
    elif argv[:1] == ["done"] and len(argv) == 2:
        tasks[int(argv[1])]["done"] = True
    else:
        print(USAGE)
        return 1
    save(tasks)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''

#: An identity for the demo's own commits, so it runs for a user with no git identity.
_IDENTITY = ["-c", "user.name=wtls demo", "-c", "user.email=demo@wtls.invalid"]


def _git(cwd: Path, *args: str) -> None:
    run_git([*_IDENTITY, *args], cwd)


def build_lab(root: Path) -> tuple[Path, Path, Path]:
    """The seed's tasks-app with its two agent worktrees; returns (main, wipe, remaining)."""
    app = root / "tasks-app"
    app.mkdir()
    _git(app, "init", "-q", "-b", "main")
    (app / "cli.py").write_text(TASKS_APP)
    (app / ".gitignore").write_text("tasks.json\n")
    _git(app, "add", "-A")
    _git(app, "commit", "-q", "-m", "tasks-app: add, list, done")
    wipe = root / "tasks-app-wipe"
    remaining = root / "tasks-app-remaining"
    _git(app, "worktree", "add", "-q", "-b", "feature/wipe", "--", str(wipe), "main")
    _git(app, "worktree", "add", "-q", "-b", "feature/remaining", "--", str(remaining), "main")
    # Agent A adds `wipe` to the usage line and commits.
    text = (wipe / "cli.py").read_text().replace("done <index>", "done <index> | wipe")
    (wipe / "cli.py").write_text(text)
    _git(wipe, "commit", "-q", "-am", "Add wipe command")
    # Agent B adds `remaining` to the same line and has not committed yet.
    text = (remaining / "cli.py").read_text().replace("done <index>", "done <index> | remaining")
    (remaining / "cli.py").write_text(text)
    return app, wipe, remaining


def status_bar(wt: WorktreeState) -> str:
    """The VS Code status-bar text for a window on ``wt`` (as the extension shows it)."""
    parts = [f"⎇ {wt.branch or 'detached ' + (wt.head or '')[:7]}"]
    if wt.base is not None:
        if wt.base.ahead:
            parts.append(f"↑{wt.base.ahead}")
        if wt.base.behind:
            parts.append(f"↓{wt.base.behind}")
    dirty = wt.status.staged + wt.status.unstaged + wt.status.untracked + wt.status.conflicted
    if dirty:
        parts.append(f"●{dirty}")
    conflicts = sum(len(c.files) for c in wt.conflicts)
    if conflicts:
        parts.append(f"⚠{conflicts}")
    return " ".join(parts)


def window_report(
    state: RepositoryState, wt: WorktreeState, prediction: Prediction, root: Path
) -> str:
    """Everything the editor window opened on ``wt`` would show."""
    rel = wt.path.relative_to(root)
    lines = [
        f"── window on {rel}/ " + "─" * max(0, 50 - len(str(rel))),
        f"status bar:  {status_bar(wt)}",
    ]
    others = [o for o in state.worktrees if o.path != wt.path]
    for other in others:
        lines.append(
            f"  other worktree: {other.path.relative_to(root)}/ on {other.branch}"
            f" ({'dirty' if other.dirty else 'clean'})"
        )
    problems = [
        f"  {p.severity}: {p.message}" for p in worktree_problems(state, wt) + stale_problems(state)
    ]
    for notice in notices_for(prediction, wt.path):
        problems.append(f"  {notice.severity}: {notice.message}")
    lines.append("problems:" if problems else "problems:    none")
    lines.extend(problems)
    return "\n".join(lines)


def run_demo(*, keep: bool = False) -> int:
    """Run the demo; print each window's view; remove everything unless ``keep``."""
    root = Path(tempfile.mkdtemp(prefix="wtls-demo-")).resolve()
    try:
        print(f"Building the course's tasks-app lab in {root} ...")
        app, _wipe, _remaining = build_lab(root)
        print("  agent A (feature/wipe) added `wipe` to the usage line and committed")
        print("  agent B (feature/remaining) added `remaining` to the same line, not committed\n")
        engine = Engine(discover(app))
        state = engine.refresh().state
        prediction = ConflictPredictor(engine.repository).update(state)
        engine.set_conflicts(
            {w.path: tuple(prediction.conflicts_for(w.path)) for w in state.worktrees},
            prediction.merge_order,
        )
        state = engine.state or state
        for wt in state.worktrees:
            print(window_report(state, wt, prediction, root))
            print()
        if prediction.merge_order_text:
            print(f"merge order: {prediction.merge_order_text}")
        print(
            "\nBoth agents see the collision on the usage line now, before anyone merges."
            "\nIn an editor, the same appears live as diagnostics (see README: Editors)."
        )
        if keep:
            print(f"\nKept the demo repository: {app}")
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0
