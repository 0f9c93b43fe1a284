"""The README and docs/ hold together: every relative link and #anchor resolves, the README
stays a short front page with the two set-up commands at its top, and the CLI's help agrees
with docs/commands.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]

#: The two set-up commands, byte for byte (`.ci/run` and users copy them from the README).
DEMO_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/wtls demo"
TEST_COMMAND = "bash .ci/run"

_FENCE = re.compile(r"^(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (links and headings there are not markdown)."""
    out: list[str] = []
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            out.append(line)
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lowercased, punctuation dropped, spaces → -."""
    text = _CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text only
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of ``page`` (repeated headings get -1, -2, … as on GitHub)."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for line in prose_lines(page.read_text(encoding="utf-8")):
        match = _HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def links(page: Path) -> list[str]:
    """The link targets of ``page`` (code spans cannot hide or fake a link)."""
    found: list[str] = []
    for line in prose_lines(page.read_text(encoding="utf-8")):
        plain = _CODE_SPAN.sub("code", line)
        found.extend(m.group(2) for m in _LINK.finditer(plain))
    return found


def broken_links(page: Path) -> list[str]:
    """Relative links of ``page`` whose file or ``#anchor`` does not exist."""
    problems: list[str] = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, …
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            problems.append(f"{target}: no such file {dest}")
            continue
        if anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            problems.append(f"{target}: no heading #{anchor} in {dest.name}")
    return problems


def test_docs_exist() -> None:
    names = {p.name for p in PAGES}
    assert {
        "README.md",
        "protocol.md",
        "commands.md",
        "configuration.md",
        "architecture.md",
        "performance.md",
    } <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    assert broken_links(page) == []


def test_readme_is_a_short_front_page_with_the_setup_commands_on_top() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move reference text to docs/"
    top = lines[:40]
    assert DEMO_COMMAND in top, "the demo command must stay byte-identical in the first 40 lines"
    assert TEST_COMMAND in top, "the test command must stay byte-identical in the first 40 lines"
    assert any("wtls demo" in line for line in top)


def test_link_checker_catches_what_it_should(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## `wtls.spawn`\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Top\n\n"
        "[ok](other.md#wtlsspawn) [ok](#top) [ok](https://example.com/x#y)\n"
        "[bad](missing.md) [bad](other.md#nope) [bad](#nowhere)\n"
        "`[not a link](missing.md)`\n"
        "```\n[not a link](missing.md)\n```\n",
        encoding="utf-8",
    )
    assert [p.split(":")[0] for p in broken_links(page)] == [
        "missing.md",
        "other.md#nope",
        "#nowhere",
    ]


def test_every_cli_command_is_in_docs_commands() -> None:
    """`wtls --help` lists the commands; each has a section in docs/commands.md whose usage
    line names every flag its own `--help` shows."""
    commands_md = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    wtls = [sys.executable, "-m", "wtls"]
    top = subprocess.run([*wtls, "--help"], capture_output=True, text=True, check=True).stdout
    names = re.findall(r"^    ([a-z]+)\s", top, flags=re.MULTILINE)
    assert len(names) >= 14, top
    for name in names:
        assert f"wtls {name}" in commands_md, f"docs/commands.md does not show `wtls {name}`"
        usage = subprocess.run(
            [*wtls, name, "--help"], capture_output=True, text=True, check=True
        ).stdout
        flags = set(re.findall(r"--[a-z][a-z-]*", usage.split("\n\n")[0])) - {"--help"}
        for flag in flags:
            assert re.search(rf"wtls {name}\b[^\n]*{flag}\b", commands_md), (
                f"docs/commands.md: no usage line of `wtls {name}` with {flag}"
            )
