"""The handshake between a session (or a CLI call) and an engine: one JSON line each way.

Client → engine: ``{"protocol": 1, "wtls": VERSION, "build": ID, "kind": KIND, "repository":
COMMON_DIR, ...}`` with KIND one of :data:`KINDS`. Engine → client: ``{"ok": true, "protocol":
1, "wtls": ..., "build": ..., "pid": ..., "repository": ...}`` (``status`` adds ``clients``,
``uptime``, ``socket``, ``idleTimeout``; ``query`` adds ``result``) or ``{"ok": false, "error":
...}``. A line is at most :data:`MAX_LINE_BYTES`. After an ok ``lsp`` hello the connection
carries LSP frames both ways.

``build`` is a cheap identity of the installed code (stat only), so that a session replaces an
engine running code that was edited since it started (:func:`should_replace`). Stdlib only.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from wtls import __version__

#: The handshake's version; an engine speaking another is replaced.
PROTOCOL = 1
#: A hello line (either way) longer than this is refused.
MAX_LINE_BYTES = 64 * 1024
#: ``lsp``: a language-server session; ``status``: the engine's figures; ``stop``: exit;
#: ``query``: a CLI question answered from the engine's state (wtls.cli.answers).
KINDS = ("lsp", "status", "stop", "query")

#: Notification (engine session → forwarder, swallowed there): the session's first picture is
#: published (its state, diagnostics and conflict prediction); after an engine restart the
#: forwarder then clears what the new engine did not publish again.
SETTLED_METHOD = "wtls/settled"

#: Test-only: the version and build an engine reports instead of its own, so that a test can
#: start an engine that looks older, newer or edited. Read by the engine only.
FAKE_VERSION_ENV = "WTLS_TEST_ENGINE_VERSION"
FAKE_BUILD_ENV = "WTLS_TEST_ENGINE_BUILD"

_PACKAGE = Path(__file__).resolve().parent.parent
_build: str | None = None


class HelloError(Exception):
    """A hello line that cannot be read: not JSON, not an object, too long, wrong fields."""


def build_id() -> str:
    """A hash of (relative path, size, mtime_ns) of every ``.py`` file of the installed wtls
    package: it changes when the code is edited or reinstalled. Computed once per process."""
    global _build
    if _build is None:
        digest = hashlib.sha256()
        entries: list[tuple[str, int, int]] = []
        for folder, dirs, files in os.walk(_PACKAGE):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    try:
                        info = os.stat(path)
                    except OSError:
                        continue
                    entries.append(
                        (os.path.relpath(path, _PACKAGE), info.st_size, info.st_mtime_ns)
                    )
        for rel, size, mtime in sorted(entries):
            digest.update(f"{rel}\0{size}\0{mtime}\n".encode("utf-8", "surrogateescape"))
        _build = digest.hexdigest()[:16]
    return _build


def identity(*, engine: bool = False) -> dict[str, Any]:
    """``protocol``, ``wtls`` and ``build`` of this process (an engine honours the test-only
    overrides :data:`FAKE_VERSION_ENV` and :data:`FAKE_BUILD_ENV`)."""
    version, build = __version__, build_id()
    if engine:
        version = os.environ.get(FAKE_VERSION_ENV) or version
        build = os.environ.get(FAKE_BUILD_ENV) or build
    return {"protocol": PROTOCOL, "wtls": version, "build": build}


def client_hello(
    kind: str, repository: Path | str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The hello a client sends (``extra`` adds fields, e.g. a query's request)."""
    hello: dict[str, Any] = dict(extra or {})
    hello.update(identity())
    hello.update(kind=kind, repository=os.fspath(repository))
    return hello


def encode(message: dict[str, Any]) -> bytes:
    """One hello line (JSON, ASCII-safe, ending with a line break)."""
    line = json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"
    if len(line) > MAX_LINE_BYTES:
        raise HelloError(f"a hello line is limited to {MAX_LINE_BYTES} bytes")
    return line


def decode(line: bytes) -> dict[str, Any]:
    """The object of one hello line; :class:`HelloError` when it is not one."""
    if len(line) > MAX_LINE_BYTES:
        raise HelloError(f"the hello line is longer than {MAX_LINE_BYTES} bytes")
    if not line.endswith(b"\n"):
        raise HelloError("the hello line has no end (the connection closed)")
    try:
        message = json.loads(line)
    except ValueError:
        raise HelloError("the hello line is not JSON") from None
    if not isinstance(message, dict):
        raise HelloError("the hello line is not a JSON object")
    return message


def check_request(message: dict[str, Any]) -> str:
    """The kind of a client's hello; :class:`HelloError` when the engine cannot answer it."""
    protocol = message.get("protocol")
    if protocol != PROTOCOL:
        raise HelloError(f"hello protocol {protocol!r} is not supported (this engine: {PROTOCOL})")
    kind = message.get("kind")
    if kind not in KINDS:
        raise HelloError(f"unknown hello kind {kind!r} (known: {', '.join(KINDS)})")
    if not isinstance(message.get("repository"), str):
        raise HelloError("the hello has no repository")
    return str(kind)


def should_replace(reply: dict[str, Any]) -> bool:
    """Whether a session replaces the engine that sent ``reply``: it speaks another handshake,
    runs an older wtls, or the same version with another build (the code was edited). An
    engine newer than the session is used as it is."""
    if reply.get("protocol") != PROTOCOL:
        return True
    theirs, ours = _version_key(reply.get("wtls")), _version_key(__version__)
    if theirs != ours:
        return theirs < ours
    return bool(reply.get("build") != build_id())


def _version_key(version: Any) -> tuple[int, ...]:
    """``"1.2.3"`` → ``(1, 2, 3)``; the numeric prefix of each part (an unreadable version is
    older than every other)."""
    if not isinstance(version, str):
        return (-1,)
    key: list[int] = []
    for part in version.split("."):
        digits = ""
        for char in part:
            if not char.isdigit():
                break
            digits += char
        key.append(int(digits) if digits else 0)
    while len(key) > 1 and key[-1] == 0:  # 1.0 is 1.0.0
        key.pop()
    return tuple(key)
