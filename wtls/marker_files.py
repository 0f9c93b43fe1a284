"""Conflict markers in a worktree's files, as problems: which files to look at, and what is there.

:func:`grep_markers` asks ``git grep`` which tracked files have a line that opens a conflict
block; :func:`status_candidates` adds the changed, untracked and unmerged files ``git status``
reported; :func:`scan_files` reads each (or takes the editor's text) and :func:`marker_problems`
turns its blocks into problems. No LSP here: the server publishes them as diagnostics.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from wtls.git import GitError, run_git
from wtls.markers import (
    EMPTY_SCAN,
    MAX_SCAN_BYTES,
    MarkerScan,
    block_span,
    has_markers_quick,
    is_binary,
    read_for_scan,
    scan_text,
    split_lines,
    utf16_length,
)
from wtls.problems import Problem
from wtls.worktrees import WorktreeState

#: Conflict blocks reported per file; one Information diagnostic counts the rest. A generated
#: file with 300,000 blocks would otherwise make a 100 MB message the editor chokes on.
MAX_BLOCKS_PER_FILE = 1000


def marker_problems(
    path: Path,
    text: str | None,
    scan: MarkerScan,
    unmerged: bool,
    units: Callable[[str], int] = utf16_length,
) -> list[Problem]:
    """Problems for one file's conflict blocks (``text`` gives exact columns when known, counted
    by ``units`` in the editor's position encoding)."""
    lines = split_lines(text) if text is not None and scan.blocks else None
    found: list[Problem] = []
    for block in scan.blocks:
        ours = block.ours_label or "current"
        theirs = block.theirs_label or "incoming"
        nested = " (nested)" if block.depth else ""
        if lines is not None:
            span = block_span(lines, block, units)
            end_line, end_char = span.end_line, span.end_character
        else:
            end_line, end_char = block.end_line, None
        found.append(
            Problem(
                path=path,
                severity="error",
                code="conflict-marker",
                message=f"Merge conflict{nested}: {ours} vs {theirs}, lines "
                f"{block.start_line + 1}–{block.end_line + 1}. Choose a side (code action) and "
                "remove the markers.",
                line=block.start_line,
                end_line=end_line,
                end_character=end_char,
                data={
                    "startLine": block.start_line,
                    "endLine": block.end_line,
                    "markerSize": block.marker_size,
                },
            )
        )
    for item in scan.unterminated:
        found.append(
            Problem(
                path=path,
                severity="error",
                code="conflict-marker-unterminated",
                message=item.message,
                line=item.line,
            )
        )
    if scan.more:
        found.append(
            Problem(
                path=path,
                severity="information",
                code="conflict-marker-limit",
                message=f"{scan.more} more conflict blocks not shown (wtls reports the first "
                f"{MAX_BLOCKS_PER_FILE} of a file)",
                line=scan.more_line or 0,
            )
        )
    if unmerged and not scan.blocks:
        found.append(
            Problem(
                path=path,
                severity="error",
                code="unmerged",
                message="git records an unresolved conflict on this file (e.g. modified on "
                "one side, deleted on the other, or binary): resolve it, then `git add` or "
                "`git rm` it.",
            )
        )
    return found


def scan_files(
    texts: dict[Path, str | None], unmerged: set[Path], units: Callable[[str], int]
) -> dict[Path, list[Problem]]:
    """Problems per file; ``texts`` gives the editor's text of a file (None: read the disk)."""
    out: dict[Path, list[Problem]] = {}
    for path, text in texts.items():
        if text is None:
            text = disk_text(path)
        if text is None or len(text) > MAX_SCAN_BYTES:
            scan = EMPTY_SCAN
        else:
            scan = scan_text(text, max_blocks=MAX_BLOCKS_PER_FILE)
        out[path] = marker_problems(path, text, scan, path in unmerged, units)
    return out


def disk_text(path: Path) -> str | None:
    """A file's text for a scan: None when missing, too large, binary or without markers."""
    data = read_for_scan(path)
    if data is None or not has_markers_quick(data) or is_binary(data):
        return None
    return data.decode("utf-8", "surrogateescape")


def status_candidates(wt: WorktreeState) -> set[Path]:
    """The changed, untracked and unmerged files of ``wt`` (absolute)."""
    return {wt.path / rel for rel in (*wt.status.changed_paths, *wt.status.conflicted_paths)}


def grep_markers(worktree: Path) -> set[Path]:
    """Tracked files whose working copy has a line that opens a conflict block."""
    try:
        # One thread: the reads dominate, and git's default of a thread per core cost 60% more
        # CPU (and more wall time) on 10,000 files here; this runs in the background.
        result = run_git(
            ["grep", "--threads=1", "-l", "-z", "-I", "-E", "-e", "^<{7,}( |$)", "--", "."],
            worktree,
            ok_codes=(0, 1),
        )
    except GitError:
        return set()
    return {
        worktree / rel.decode("utf-8", "surrogateescape")
        for rel in result.stdout.split(b"\0")
        if rel
    }
