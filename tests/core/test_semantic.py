"""Semantic foresight (`wtls check --test`) and the merge queue (`wtls land`) on real repositories.

Each test builds a small Python project with its own unittest tests, agent worktrees that change
it (committed or not), and runs the real CLI: the test command really runs, in wtls's scratch
worktrees, never in the agents' folders.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import pytest

from tests.core.lifecycle_util import run_wtls
from tests.gitutil import TASKS_CLI, add_worktree, commit_all, git, make_repo
from wtls import semantic
from wtls.scratch import LOCK_REASON
from wtls.testrun import parse_failures, run_command
from wtls.worktrees import discover, repository_state

PY = shlex.quote(sys.executable)
TEST_CMD = f"{PY} -m unittest discover -q"

CALC = '''\
"""calc: the project's one module."""
LIMIT = 10


def total(items):
    return sum(items)
'''

TEST_CALC = """\
import unittest

import calc


class CalcTest(unittest.TestCase):
    def test_total(self):
        self.assertEqual(calc.total([1, 2]), 3)


if __name__ == "__main__":
    unittest.main()
"""


def project(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path,
        "proj",
        {"calc.py": CALC, "test_calc.py": TEST_CALC, ".gitignore": "__pycache__/\n"},
    )


def agent(repo: Path, name: str, files: dict[str, str], *, commit: bool = True) -> Path:
    """A worktree on branch ``name`` whose agent wrote ``files`` (committed or left as is)."""
    wt = add_worktree(repo, repo.parent / name.replace("/", "-"), name)
    for rel, text in files.items():
        (wt / rel).write_text(text)
    if commit:
        commit_all(wt, f"{name}: work")
    return wt


def rename_total(repo: Path, *, commit: bool = True) -> Path:
    return agent(
        repo,
        "feature/rename",
        {
            "calc.py": CALC.replace("def total(", "def sum_all("),
            "test_calc.py": TEST_CALC.replace("calc.total(", "calc.sum_all("),
        },
        commit=commit,
    )


def call_total(repo: Path, *, commit: bool = True) -> Path:
    return agent(
        repo,
        "feature/report",
        {
            "report.py": (
                "import calc\n\n\ndef report(items):\n    return f'total {calc.total(items)}'\n"
            ),
            "test_report.py": (
                "import unittest\n\nimport report\n\n\nclass ReportTest(unittest.TestCase):\n"
                "    def test_report(self):\n"
                "        self.assertEqual(report.report([2]), 'total 2')\n"
            ),
        },
        commit=commit,
    )


def check(repo: Path, *extra: str) -> tuple[int, dict]:
    proc = run_wtls(repo, "check", "--json", "--test", TEST_CMD, *extra)
    assert proc.returncode in (0, 1), (proc.stdout, proc.stderr)
    return proc.returncode, json.loads(proc.stdout)


def test_rename_vs_new_caller_is_a_semantic_conflict(tmp_path: Path) -> None:
    repo = project(tmp_path)
    a = rename_total(repo)
    b = call_total(repo, commit=False)  # untracked files: the working state counts
    before = {p: git(p, "status", "--porcelain") for p in (repo, a, b)}
    code, data = check(repo)
    assert code == 1
    assert data["conflicts"] == []  # clean as text
    tests = data["tests"]
    assert tests["command"].endswith("-m unittest discover -q")
    (conflict,) = tests["semanticConflicts"]
    assert set(conflict["worktrees"]) == {str(a), str(b)}
    assert set(conflict["branches"]) == {"feature/rename", "feature/report"}
    assert conflict["failures"] == [
        {"name": "test_report.ReportTest.test_report", "path": "test_report.py", "line": 8}
    ]
    alone = [r for r in tests["runs"] if len(r["worktrees"]) == 1]
    assert {r["status"] for r in alone} == {"pass"}
    assert all(set(r) >= {"tree", "exitCode", "seconds", "cached", "output"} for r in alone)
    # Nothing of the agents' (or the main worktree's) changed: the tests ran elsewhere.
    assert {p: git(p, "status", "--porcelain") for p in (repo, a, b)} == before
    # Scratch worktrees are wtls's own: locked, and absent from wtls list.
    listing = git(repo, "worktree", "list", "--porcelain")
    assert LOCK_REASON in listing
    paths = [w["path"] for w in json.loads(run_wtls(repo, "list", "--json").stdout)["worktrees"]]
    assert sorted(paths) == sorted(map(str, (repo, a, b)))
    # Human output names the pair.
    text = run_wtls(repo, "check", "--test", TEST_CMD)
    assert text.returncode == 1
    assert "SEMANTIC CONFLICT" in text.stdout and "feature/rename" in text.stdout


@pytest.mark.parametrize(
    ("mine", "theirs"),
    [
        # changed signature vs a new call with the old one
        (
            {
                "calc.py": CALC.replace(
                    "def total(items):\n    return sum(items)",
                    "def total(items, start):\n    return sum(items, start)",
                ),
                "test_calc.py": TEST_CALC.replace("calc.total([1, 2])", "calc.total([1, 2], 0)"),
            },
            {
                "test_twice.py": "import unittest\nimport calc\n\n\nclass T(unittest.TestCase):\n"
                "    def test_twice(self):\n        self.assertEqual(calc.total([1]) * 2, 2)\n"
            },
        ),
        # removed constant vs a new use of it
        (
            {"calc.py": CALC.replace("LIMIT = 10\n", "")},
            {
                "test_limit.py": "import unittest\nimport calc\n\n\nclass T(unittest.TestCase):\n"
                "    def test_limit(self):\n        self.assertEqual(calc.LIMIT, 10)\n"
            },
        ),
        # duplicate definition: both add `helper`, far apart; the later one wins
        (
            {
                "calc.py": CALC.replace(
                    "LIMIT = 10\n", "LIMIT = 10\n\n\ndef helper():\n    return 1\n"
                ),
                "test_helper.py": "import unittest\nimport calc\n\n\nclass T(unittest.TestCase):\n"
                "    def test_helper(self):\n        self.assertEqual(calc.helper(), 1)\n",
            },
            {
                "calc.py": CALC + '\n\ndef helper():\n    return "two"\n',
                "test_helper2.py": "import unittest\nimport calc\n\n\n"
                "class T2(unittest.TestCase):\n"
                "    def test_helper2(self):\n        self.assertEqual(calc.helper(), 'two')\n",
            },
        ),
    ],
    ids=["changed-signature", "removed-constant", "duplicate-definition"],
)
def test_semantic_conflicts_found_in_core(
    tmp_path: Path, mine: dict[str, str], theirs: dict[str, str]
) -> None:
    repo = project(tmp_path)
    a = agent(repo, "feature/a", mine)
    b = agent(repo, "feature/b", theirs, commit=False)
    report = _core(repo)
    assert [set(c.worktrees) for c in report.semantic_conflicts] == [{a, b}]
    assert report.failing_alone == ()


def _core(repo: Path, command: str = TEST_CMD, timeout: float = 60.0, jobs: int = 1):
    from wtls.predict.commits import commit_info

    state = repository_state(discover(repo))
    tip = commit_info(repo, "refs/heads/main")
    assert tip is not None
    tester = semantic.Tester(
        repo=state.repository, commands=(tuple(shlex.split(command)),), timeout=timeout
    )
    return semantic.test_merges(state, tester, base_tip=tip, jobs=jobs)


def test_compatible_changes_pass_and_a_recheck_runs_nothing(tmp_path: Path) -> None:
    repo = project(tmp_path)
    agent(repo, "feature/one", {"one.py": "ONE = 1\n"})
    agent(repo, "feature/two", {"two.py": "TWO = 2\n"}, commit=False)
    agent(
        repo, "feature/three", {"calc.py": CALC + "\n\ndef avg(x):\n    return sum(x) / len(x)\n"}
    )
    code, data = check(repo, "--jobs", "2")
    assert code == 0
    runs = data["tests"]["runs"]
    # Three alone, then one run of all three together: one run when all is well.
    assert sorted(len(r["worktrees"]) for r in runs) == [1, 1, 1, 3]
    assert all(r["status"] == "pass" and not r["cached"] for r in runs)
    assert data["tests"]["semanticConflicts"] == []
    code, again = check(repo)
    assert code == 0
    assert all(r["cached"] for r in again["tests"]["runs"])
    assert [r["tree"] for r in again["tests"]["runs"]] == [r["tree"] for r in runs]


def test_a_worktree_failing_alone_is_not_blamed_on_a_pair(tmp_path: Path) -> None:
    repo = project(tmp_path)
    broken = agent(repo, "feature/broken", {"calc.py": CALC.replace("sum(items)", "0")})
    agent(repo, "feature/fine", {"fine.py": "X = 1\n"})
    code, data = check(repo)
    assert code == 1
    tests = data["tests"]
    assert tests["failingAlone"] == [str(broken)]
    assert tests["semanticConflicts"] == []
    failing = next(r for r in tests["runs"] if r["worktrees"] == [str(broken)])
    assert failing["status"] == "fail"
    assert failing["failures"][0]["name"].endswith("test_total")
    assert failing["failures"][0]["path"] == "test_calc.py"
    base = next(r for r in tests["runs"] if r["worktrees"] == [])
    assert base["status"] == "pass" and tests["baseFails"] is False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie nobody reaped yet is dead
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4]
    except OSError:
        return False


def test_a_hanging_command_is_killed_with_its_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(120)\n"
    )
    outcome = run_command([sys.executable, "-c", script], tmp_path, timeout=1.5)
    assert outcome.status == "timeout"
    pid = int(pidfile.read_text())
    assert not _alive(pid)


def test_a_background_process_left_behind_is_killed(tmp_path: Path) -> None:
    pidfile = tmp_path / "bg.pid"
    script = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(child.pid))\n"
    )
    outcome = run_command([sys.executable, "-c", script], tmp_path, timeout=30)
    assert outcome.status == "pass"
    assert not _alive(int(pidfile.read_text()))


def test_check_timeout_reports_timeout(tmp_path: Path) -> None:
    repo = project(tmp_path)
    agent(repo, "feature/slow", {"slow.py": "X = 1\n"})
    proc = run_wtls(
        repo,
        "check",
        "--json",
        "--timeout",
        "1",
        "--test",
        f"{PY} -c 'import time; time.sleep(60)'",
    )
    assert proc.returncode == 1, proc.stderr
    (run,) = [r for r in json.loads(proc.stdout)["tests"]["runs"] if r["worktrees"]]
    assert run["status"] == "timeout"


def test_a_command_that_writes_files_writes_only_in_the_scratch_worktree(tmp_path: Path) -> None:
    repo = project(tmp_path)
    a = agent(repo, "feature/a", {"a.py": "A = 1\n"})
    # It writes an untracked file and overwrites a tracked one; it fails if it sees either.
    script = (
        "import os, sys\n"
        "if os.path.exists('out.txt') or open('calc.py').read().startswith('junk'):\n"
        "    sys.exit('left over from a previous run')\n"
        "open('out.txt', 'w').write('x')\n"
        "open('calc.py', 'w').write('junk')\n"
    )
    cmd = f"{PY} -c {shlex.quote(script)}"
    before = {p: git(p, "status", "--porcelain") for p in (repo, a)}
    code, data = check(repo, "--test", cmd)
    assert code == 0, data
    # Another tree in the same scratch worktree sees none of that run's writes.
    (a / "b.py").write_text("B = 2\n")
    code, data = check(repo, "--test", cmd)
    assert code == 0, data
    assert not (repo / "out.txt").exists() and not (a / "out.txt").exists()
    assert {p: git(p, "status", "--porcelain") for p in (repo, a)} == {
        repo: before[repo],
        a: "?? b.py",
    }


def test_untrusted_test_in_config_is_not_run_and_said_so(tmp_path: Path) -> None:
    repo = project(tmp_path)
    marker = tmp_path / "ran"
    argv = [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]
    (repo / ".wtls.toml").write_text(f"test = [{json.dumps(argv)}]\n")
    commit_all(repo, "config")
    agent(repo, "feature/a", {"a.py": "A = 1\n"})
    proc = run_wtls(repo, "check", "--json")
    assert proc.returncode == 0, proc.stderr
    tests = json.loads(proc.stdout)["tests"]
    assert "not trusted" in tests["notRun"] and tests["runs"] == []
    assert "not trusted" in proc.stderr
    assert not marker.exists()
    proc = run_wtls(repo, "check", "--json", "--trust")
    assert proc.returncode == 0, proc.stderr
    assert marker.exists()


def test_land_stops_at_a_failing_merge_with_base_at_the_last_green(tmp_path: Path) -> None:
    repo = project(tmp_path)
    a = rename_total(repo)  # lands first (path order: feature-rename < feature-report)
    b = call_total(repo)  # passes alone, fails on top of the rename
    a_head, b_head = git(a, "rev-parse", "HEAD"), git(b, "rev-parse", "HEAD")
    proc = run_wtls(repo, "land", "--json", "--test", TEST_CMD)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    result = json.loads(proc.stdout)
    statuses = {s["branch"]: s["status"] for s in result["steps"]}
    assert statuses == {"feature/rename": "landed", "feature/report": "fail"}
    landed = next(s for s in result["steps"] if s["status"] == "landed")
    main = git(repo, "rev-parse", "main")
    assert main == landed["commit"] == result["baseAfter"]
    # The base worktree came along and is clean; the agents' worktrees are untouched.
    assert git(repo, "status", "--porcelain") == ""
    assert "sum_all" in (repo / "calc.py").read_text()
    assert (git(a, "rev-parse", "HEAD"), git(b, "rev-parse", "HEAD")) == (a_head, b_head)
    assert "stays at" in result["message"]


def test_land_refuses_when_the_base_worktree_has_uncommitted_changes(tmp_path: Path) -> None:
    repo = project(tmp_path)
    agent(repo, "feature/a", {"a.py": "A = 1\n"})
    (repo / "calc.py").write_text(CALC + "# local edit\n")
    main = git(repo, "rev-parse", "main")
    proc = run_wtls(repo, "land", "--test", TEST_CMD)
    assert proc.returncode == 1
    assert "uncommitted changes" in proc.stderr
    assert git(repo, "rev-parse", "main") == main


def test_land_everything_and_remove(tmp_path: Path) -> None:
    repo = project(tmp_path)
    a = agent(repo, "feature/a", {"a.py": "A = 1\n"})
    b = agent(repo, "feature/b", {"b.py": "B = 1\n"})
    proc = run_wtls(repo, "land", "--remove", "--test", TEST_CMD)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert not a.exists() and not b.exists()
    assert (repo / "a.py").exists() and (repo / "b.py").exists()
    assert git(repo, "status", "--porcelain") == ""


def test_land_without_a_test_command_is_refused(tmp_path: Path) -> None:
    repo = project(tmp_path)
    agent(repo, "feature/a", {"a.py": "A = 1\n"})
    proc = run_wtls(repo, "land")
    assert proc.returncode == 1 and "needs a test command" in proc.stderr


def test_failure_parsers() -> None:
    root = Path("/w")
    pytest_out = (
        "test_x.py:12: AssertionError\n"
        "=========================== short test summary info ============================\n"
        "FAILED test_x.py::test_total - assert 0 == 3\n"
    )
    (f,) = parse_failures(pytest_out, root)
    assert (f.name, f.path, f.line) == ("test_x.py::test_total", "test_x.py", 12)
    go_out = (
        "--- FAIL: TestTotal (0.00s)\n"
        if False
        else ("    calc_test.go:9: got 0, want 3\n--- FAIL: TestTotal (0.00s)\nFAIL\n")
    )
    (g,) = parse_failures(go_out, root)
    assert (g.name, g.path, g.line) == ("TestTotal", "calc_test.go", 9)
    jest_out = (
        "  ● calc › adds numbers\n\n    expect(received).toBe(expected)\n\n"
        "      at Object.<anonymous> (/w/src/calc.test.js:5:20)\n"
    )
    (j,) = parse_failures(jest_out, root)
    assert (j.name, j.path, j.line) == ("calc › adds numbers", "src/calc.test.js", 5)
    tb = (
        'Traceback (most recent call last):\n  File "/w/check.py", line 3, in <module>\n'
        "    import calc\nImportError: cannot import name 'total'\n"
    )
    (t,) = parse_failures(tb, root)
    assert (t.path, t.line) == ("check.py", 3) and t.name.startswith("ImportError")


def test_the_watcher_ignores_test_runs_in_scratch_worktrees(tmp_path: Path) -> None:
    from wtls.engine import Engine
    from wtls.watch import classify

    repo = project(tmp_path)
    agent(repo, "feature/a", {"a.py": "A = 1\n"})
    code, _ = check(repo)
    assert code == 0
    engine = Engine(discover(repo))
    engine.refresh()
    common = (repo / ".git").resolve()
    scratch = common / "wtls" / "scratch" / "scratch-0"
    assert (scratch / "calc.py").is_file()
    events = [
        scratch / "calc.py",
        scratch / "out.txt",
        common / "worktrees" / "scratch-0" / "index",
    ]
    assert not classify(events, engine.watch_targets())


def test_seed_tasks_app_rename_and_call_are_named_before_either_merges(tmp_path: Path) -> None:
    """The issue's "done when": the course's tasks-app, one agent renames a function, the other
    calls it by its old name in a new command; `wtls check --test` names the pair."""
    tasks = "def add_task(tasks, text):\n    tasks.append({'text': text, 'done': False})\n"
    cli = TASKS_CLI.replace("import sys\n", "import sys\n\nimport tasks\n").replace(
        "    if not argv:\n",
        "    if argv and argv[0] == 'add':\n        tasks.add_task([], argv[1])\n        return 0\n"
        "    if not argv:\n",
    )
    smoke = "import cli\n\nassert cli.main(['add', 'x']) == 0\nassert cli.main([]) == 1\n"
    repo = make_repo(tmp_path, "tasks-app", {"cli.py": cli, "tasks.py": tasks, "check.py": smoke})
    rename = agent(
        repo,
        "feature/rename",
        {
            "tasks.py": tasks.replace("add_task", "create_task"),
            "cli.py": cli.replace("tasks.add_task(", "tasks.create_task("),
        },
    )
    wipe = agent(
        repo,
        "feature/wipe",
        {
            "wipe.py": "import tasks\n\n\ndef refill(items):\n    for text in items:\n"
            "        tasks.add_task([], text)\n",
            "check.py": smoke + "import wipe\n\nwipe.refill(['a'])\n",
        },
        commit=False,
    )
    proc = run_wtls(repo, "check", "--test", f"{PY} check.py")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "SEMANTIC CONFLICT: feature/rename" in proc.stdout and "feature/wipe" in proc.stdout
    assert "AttributeError" in proc.stdout and "wipe.py" in proc.stdout
    assert git(repo, "log", "--oneline", "main").count("\n") == 0  # nothing merged
    del rename, wipe


def test_a_scratch_worktree_git_forgot_is_made_again(tmp_path: Path) -> None:
    repo = project(tmp_path)
    agent(repo, "feature/a", {"a.py": "A = 1\n"})
    assert check(repo)[0] == 0
    scratch = repo / ".git" / "wtls" / "scratch" / "scratch-0"
    git(repo, "worktree", "unlock", str(scratch))
    import shutil

    shutil.rmtree(repo / ".git" / "worktrees" / "scratch-0")  # its record, gone by hand
    (repo / "calc.py").write_text(CALC + "\n# changed base\n")
    commit_all(repo, "base moves: nothing cached")
    code, data = check(repo)
    assert code == 0, data
    assert all(r["status"] == "pass" for r in data["tests"]["runs"])
    assert LOCK_REASON in git(repo, "worktree", "list", "--porcelain")


def test_cancel_kills_the_running_command(tmp_path: Path) -> None:
    import threading

    pidfile = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(pidfile)!r} + '.tmp', 'w').write(str(child.pid))\n"
        f"import os; os.replace({str(pidfile)!r} + '.tmp', {str(pidfile)!r})\n"
        "time.sleep(120)\n"
    )
    cancel = threading.Event()

    def press_cancel() -> None:
        for _ in range(600):  # bounded: at most 60 s for the child to start
            if pidfile.exists():
                break
            threading.Event().wait(0.1)
        cancel.set()

    presser = threading.Thread(target=press_cancel)
    presser.start()
    outcome = run_command([sys.executable, "-c", script], tmp_path, timeout=120, cancel=cancel)
    presser.join()
    assert outcome.status == "error" and "cancelled" in outcome.output
    assert not _alive(int(pidfile.read_text()))


def test_trusted_setup_and_copy_run_once_per_scratch_worktree(tmp_path: Path) -> None:
    repo = project(tmp_path)
    counter = tmp_path / "setups"
    setup = [
        sys.executable,
        "-c",
        f"open('built.txt', 'w').write('ok'); open({str(counter)!r}, 'a').write('x')",
    ]
    (repo / ".wtls.toml").write_text(f"copy = ['.env']\nsetup = [{json.dumps(setup)}]\n")
    (repo / ".gitignore").write_text("__pycache__/\n.env\nbuilt.txt\n")
    commit_all(repo, "recipe")
    (repo / ".env").write_text("SECRET=1\n")
    a = agent(repo, "feature/a", {"a.py": "A = 1\n"})
    script = "import os, sys; sys.exit(not all(map(os.path.isfile, ['built.txt', '.env'])))"
    needs = f"{PY} -c {shlex.quote(script)}"
    # Untrusted: neither the setup nor the copy runs (and it is said), so the command fails.
    proc = run_wtls(repo, "check", "--json", "--test", needs)
    assert proc.returncode == 1, proc.stderr
    tests = json.loads(proc.stdout)["tests"]
    assert tests["failingAlone"] == [str(a)]
    assert any("not set up" in n for n in tests["notes"])
    assert not counter.exists()
    # Trusted: set up once, and what it made stays for the next runs (another tree).
    proc = run_wtls(repo, "check", "--json", "--trust", "--test", needs)
    assert proc.returncode == 0, proc.stdout
    (a / "b.py").write_text("B = 1\n")
    proc = run_wtls(repo, "check", "--json", "--trust", "--test", needs)
    assert proc.returncode == 0, proc.stdout
    assert not json.loads(proc.stdout)["tests"]["runs"][0]["cached"]
    assert counter.read_text() == "x"


def test_land_stops_at_a_text_conflict_and_lands_given_worktrees_only(tmp_path: Path) -> None:
    repo = project(tmp_path)
    agent(repo, "feature/a", {"calc.py": CALC.replace("LIMIT = 10", "LIMIT = 11")})
    agent(repo, "feature/b", {"calc.py": CALC.replace("LIMIT = 10", "LIMIT = 12")})
    other = agent(repo, "feature/c", {"c.py": "C = 1\n"})
    proc = run_wtls(repo, "land", "--json", "--test", TEST_CMD, "feature/a", "feature/b")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    result = json.loads(proc.stdout)
    assert [s["status"] for s in result["steps"]] == ["landed", "conflict"]
    assert result["steps"][1]["conflicts"] == ["calc.py"]
    assert git(repo, "rev-parse", "main") == result["steps"][0]["commit"]
    assert "LIMIT = 11" in (repo / "calc.py").read_text()
    assert not (repo / "c.py").exists() and other.exists()  # feature/c was not given


def test_remove_and_prune_never_touch_scratch_worktrees(tmp_path: Path) -> None:
    repo = project(tmp_path)
    agent(repo, "feature/a", {"a.py": "A = 1\n"})
    assert check(repo)[0] == 0
    scratch = repo / ".git" / "wtls" / "scratch" / "scratch-0"
    proc = run_wtls(repo, "remove", "--force", str(scratch))
    # Not a worktree of the person's: the path resolves to the main worktree, never removable.
    assert proc.returncode == 1 and "main worktree" in proc.stderr
    assert run_wtls(repo, "prune").returncode == 0
    git(repo, "worktree", "prune")
    assert scratch.is_dir() and str(scratch) in git(repo, "worktree", "list")
