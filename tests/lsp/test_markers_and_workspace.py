"""Conflict-marker diagnostics, multi-root workspaces and settings, through a real LSP client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.gitutil import add_worktree, commit_all, git, make_repo
from tests.lsp.harness import open_session
from wtls.errors import REFUSED_CODE


def wt(state: dict[str, Any], path: Path) -> dict[str, Any] | None:
    return next((w for w in state["worktrees"] if w["path"] == str(path.resolve())), None)


def markers(diags: Any) -> list[types.Diagnostic]:
    return [d for d in diags if d.code == "conflict-marker"]


def make_conflict(repo: Path, tmp_path: Path) -> Path:
    other = add_worktree(repo, tmp_path / "other", "feature/other")
    (other / "cli.py").write_text("line 1\ntheirs\nline 3\n")
    commit_all(other, "theirs")
    (repo / "cli.py").write_text("line 1\nours\nline 3\n")
    commit_all(repo, "ours")
    return other


async def test_merge_conflict_from_a_terminal_then_resolved(repo: Path, tmp_path: Path) -> None:
    make_conflict(repo, tmp_path)
    cli = repo / "cli.py"
    async with open_session([repo]) as s:
        await s.wait_for_state(lambda st: len(st["worktrees"]) == 2, "initial state")
        n = len(s.states)
        git(repo, "merge", "feature/other", check=False)
        st = await s.wait_for_state(
            lambda st: wt(st, repo)["operation"] == "merge",
            "merge in progress",
            since=n,  # type: ignore[index]
        )
        assert wt(st, repo)["conflicted"] == 1  # type: ignore[index]
        diags = await s.wait_for_diagnostics(cli, lambda d: len(markers(d)) == 1, "marker error")
        block = markers(diags)[0]
        assert block.severity == types.DiagnosticSeverity.Error
        assert block.range.start.line == 1  # the <<<<<<< line
        assert block.range.end.line == 5  # the >>>>>>> line
        assert "HEAD" in block.message and "feature/other" in block.message
        # The merge-in-progress problem sits on the main worktree's HEAD file.
        head_diags = await s.wait_for_diagnostics(
            repo / ".git" / "HEAD",
            lambda d: any(x.code == "merge-in-progress" for x in d),
            "merge in progress diagnostic",
        )
        assert "git merge --abort" in head_diags[0].message

        # Fixed on disk: the marker error clears at once, before any commit.
        cli.write_text("line 1\nours and theirs\nline 3\n")
        await s.wait_for_diagnostics(cli, lambda d: not markers(d), "markers cleared")
        n = len(s.states)
        git(repo, "commit", "-qam", "merged")
        await s.wait_for_state(
            lambda st: wt(st, repo)["operation"] is None,
            "merge finished",
            since=n,  # type: ignore[index]
        )
        await s.wait_for_diagnostics(
            repo / ".git" / "HEAD", lambda d: not d, "merge diagnostic cleared"
        )


async def test_a_window_joining_at_a_head_already_scanned_finds_its_committed_markers(
    tmp_path: Path,
) -> None:
    """The second window's worktree is at the HEAD the first one grepped: the engine scans the
    files found there instead of grepping again, and a file the first worktree changed (its copy
    no longer has the markers, the commit still has) is scanned in the second one too."""
    text = "a\n<<<<<<< mine\nb\n=======\nc\n>>>>>>> theirs\n"
    repo = make_repo(tmp_path, files={"committed.txt": text, "fixed.txt": text, "x.py": "x\n"})
    other = add_worktree(repo, tmp_path / "other", "feature/other").resolve()
    late = add_worktree(repo, tmp_path / "late", "feature/late").resolve()
    (repo / "fixed.txt").write_text("fixed before the first scan\n")
    async with open_session([repo]) as first:
        await first.wait_for_diagnostics(
            repo / "committed.txt", lambda d: len(markers(d)) == 1, "committed markers in A"
        )
        assert markers(first.diagnostics(repo / "fixed.txt")) == []
        async with open_session([other]) as second:
            for name in ("committed.txt", "fixed.txt"):
                await second.wait_for_diagnostics(
                    other / name, lambda d: len(markers(d)) == 1, f"{name}'s markers in B"
                )
            # A's committed.txt fixed after A's scan: a window joining later still sees the
            # commit's markers in its own copy.
            (repo / "committed.txt").write_text("fixed after the scan\n")
            await first.wait_for_diagnostics(
                repo / "committed.txt", lambda d: not markers(d), "A's fix"
            )
            async with open_session([late]) as third:
                for name in ("committed.txt", "fixed.txt"):
                    await third.wait_for_diagnostics(
                        late / name, lambda d: len(markers(d)) == 1, f"{name}'s markers in C"
                    )


async def test_markers_in_an_unsaved_buffer_and_a_committed_file(tmp_path: Path) -> None:
    text = "a\n<<<<<<< mine\nb\n=======\nc\n>>>>>>> theirs\n"
    repo = make_repo(tmp_path, files={"committed.txt": text, "clean.py": "x = 1\n"})
    clean = repo / "clean.py"
    async with open_session([repo]) as s:
        # A committed file with markers is found without being opened.
        await s.wait_for_diagnostics(
            repo / "committed.txt", lambda d: len(markers(d)) == 1, "committed markers"
        )
        s.open_document(clean)
        s.change_document(clean, "x = 1\n<<<<<<< HEAD\ny = 2\n=======\ny = 3\n>>>>>>> b\n")
        diags = await s.wait_for_diagnostics(
            clean, lambda d: len(markers(d)) == 1, "buffer markers"
        )
        assert diags[0].range.start.line == 1
        s.change_document(clean, "x = 1\ny = 2\n", version=3)
        await s.wait_for_diagnostics(clean, lambda d: not markers(d), "buffer fixed")
        # Stray separators (markdown) are not conflicts.
        s.change_document(clean, "Title\n=======\n", version=4)
        assert not markers(s.diagnostics(clean))


@pytest.mark.parametrize(
    ("client_name", "units"),
    [
        ("visual-studio-code", lambda t: len(t.encode("utf-16-le")) // 2),
        # Neovim offers UTF-8 first, and the server takes it: columns count bytes.
        ("neovim", lambda t: len(t.encode("utf-8"))),
    ],
)
async def test_marker_columns_in_the_negotiated_encoding(
    tmp_path: Path, client_name: str, units: Any
) -> None:
    closer = ">>>>>>> feature/ünïcode-🎉"
    text = f"a\n<<<<<<< HEAD\nb\n=======\nc\n{closer}\n"
    repo = make_repo(tmp_path, files={"notes.txt": text})
    async with open_session([repo], client_name=client_name) as s:
        [diagnostic] = markers(
            await s.wait_for_diagnostics(
                repo / "notes.txt", lambda d: len(markers(d)) == 1, "markers"
            )
        )
        assert diagnostic.range.end.line == 5
        assert diagnostic.range.end.character == units(closer)


async def test_two_repositories_in_one_multi_root_workspace(tmp_path: Path) -> None:
    first = make_repo(tmp_path / "one")
    second = make_repo(tmp_path / "two")
    linked = add_worktree(second, tmp_path / "two-linked", "feature/x")
    async with open_session([first, linked]) as s:
        await s.wait_for_state(
            lambda st: st["repository"] == str((first / ".git").resolve()), "first repository"
        )
        st2 = await s.wait_for_state(
            lambda st: st["repository"] == str((second / ".git").resolve()), "second repository"
        )
        assert st2["this"] == str(linked.resolve())
        assert {w["branch"] for w in st2["worktrees"]} == {"main", "feature/x"}
        # Requests pick the repository by URI.
        pulled = await s.request_worktrees(linked / "cli.py")
        assert pulled["repository"] == str((second / ".git").resolve())
        pulled = await s.request_worktrees(first)
        assert pulled["repository"] == str((first / ".git").resolve())
        # A change in one repository announces only that one.
        n = len(s.states)
        (first / "new.txt").write_text("x\n")
        st = await s.wait_for_state(
            lambda st: wt(st, first) is not None and wt(st, first)["untracked"] == 1,  # type: ignore[index]
            "first changed",
            since=n,
        )
        assert st["repository"] == str((first / ".git").resolve())


async def test_settings_base_branch_and_bad_values(repo: Path, tmp_path: Path) -> None:
    git(repo, "branch", "develop")
    work = add_worktree(repo, tmp_path / "work", "feature/w")
    (work / "a.txt").write_text("a\n")
    commit_all(work, "a")
    async with open_session([work], settings={"baseBranch": 42, "farBehind": -1}) as s:
        st = await s.wait_for_state(lambda st: st["baseBranch"] == "main", "default base")
        assert wt(st, work)["base"]["ahead"] == 1  # type: ignore[index]
        await s.wait_until(lambda: len(s.client.messages) >= 2, "bad settings reported")
        assert any("baseBranch" in m.message for m in s.client.messages)
        # Changed without a restart.
        n = len(s.states)
        s.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"wtls": {"baseBranch": "develop"}})
        )
        st = await s.wait_for_state(lambda st: st["baseBranch"] == "develop", "new base", since=n)
        assert wt(st, work)["base"]["branch"] == "develop"  # type: ignore[index]
        assert wt(st, repo)["base"]["branch"] == "develop"  # type: ignore[index]


async def test_not_a_repository_is_reported_once(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    async with open_session([plain]) as s:
        await s.wait_until(
            lambda: any("not inside a git repository" in m.message for m in s.client.log_messages),
            "log message",
        )
        with pytest.raises(JsonRpcException) as err:
            await s.client.protocol.send_request_async("wtls/worktrees", None)
        assert err.value.code == REFUSED_CODE
        assert "no repository" in str(err.value)
        # Said once, not on every refresh.
        await s.command("wtls.refresh")
        said = [m for m in s.client.log_messages if "not inside a git repository" in m.message]
        assert len(said) == 1
