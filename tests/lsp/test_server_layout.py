"""The server's import structure: features depend on the interface, never on the wiring.

Issue 11: an import circle server.py ↔ diagnostics/features/markers_scan (imports inside
functions and under TYPE_CHECKING count) made every feature depend on the whole server.
"""

from __future__ import annotations

import ast
from pathlib import Path

import wtls

WTLS = Path(wtls.__file__).parent
FACES = ("wtls.server", "wtls.cli", "wtls.__main__")


def module_imports(root: Path) -> dict[str, set[str]]:
    """Every module of the package at ``root`` and the names it imports, anywhere in its body."""
    out: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_init = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_init else parts)
        package = name if is_init else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*up, *([node.module] if node.module else [])])
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
        out[name] = found
    return out


def server_circles(root: Path) -> list[list[str]]:
    """Import circles among the modules of ``wtls.server`` (a parent package is no edge)."""
    imports = module_imports(root)
    mods = [m for m in imports if m.startswith("wtls.server")]
    graph = {
        m: {
            o
            for o in mods
            if o != m
            and not m.startswith(o + ".")
            and any(i == o or i.startswith(o + ".") for i in imports[m])
        }
        for m in mods
    }
    circles: list[list[str]] = []

    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            m = todo.pop()
            if m not in seen:
                seen.add(m)
                todo.extend(graph[m])
        return seen

    reachable = {m: reach(m) for m in mods}
    for m in sorted(mods):
        group = sorted(o for o in reachable[m] if m in reachable[o])
        if group and m == min([m, *group]):
            circles.append([m, *(o for o in group if o != m)])
    return circles


def test_no_import_circle_in_the_server() -> None:
    assert server_circles(WTLS) == []


def test_features_do_not_import_the_wiring() -> None:
    imports = module_imports(WTLS)
    offenders = sorted(
        m
        for m, found in imports.items()
        if m.startswith("wtls.server.") and m != "wtls.server.server"
        for i in found
        if i == "wtls.server.server" or i.startswith("wtls.server.server.")
    )
    assert offenders == []


def test_core_imports_no_face_and_no_lsp() -> None:
    imports = module_imports(WTLS)
    bad = {
        m: sorted(i for i in found if i.split(".")[0] in ("pygls", "lsprotocol") or i in FACES)
        for m, found in imports.items()
        if not any(m == f or m.startswith(f + ".") for f in FACES)
    }
    assert {m: b for m, b in bad.items() if b} == {}


def test_every_session_of_a_process_shares_one_converter() -> None:
    """cattrs builds its structure functions per converter: a converter per session made every
    window joining the engine pay for an ``initialize`` structured from scratch (~0.15 CPU-s),
    and two sessions must still get what each was sent."""
    from lsprotocol import types

    from wtls.server.server import create_server

    first, second = create_server(), create_server()
    assert first.protocol._converter is second.protocol._converter
    params = {"processId": None, "rootUri": None, "capabilities": {"workspace": {}}}
    for server, pid in ((first, 11), (second, 22)):
        message = server.protocol.structure_message(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {**params, "processId": pid},
            }
        )
        assert isinstance(message.params, types.InitializeParams)
        assert message.params.process_id == pid
