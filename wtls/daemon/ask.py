"""Answer ``wtls list``, ``status`` and ``check`` from the repository's running engine; ask it
which editor buffers are unsaved before a command deletes or rewrites files (:func:`ask_unsaved`).

The console script calls :func:`ask_engine` before it imports the rest of the CLI: when an engine
runs for the repository (an editor or agent session started it; the CLI never starts one) and the
command line is one it answers, the answer is printed and the CLI is done in a few milliseconds of
its own. Otherwise (no engine, other flags, ``--no-daemon``, an engine running older code, any
error) it returns None and the CLI works alone, as it always did. Stdlib only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wtls.unsaved import UnsavedAnswer, UnsavedBuffer

#: Commands and the flags (without a value) the engine answers.
ASKABLE = {
    "list": frozenset({"--json", "--no-size"}),
    "status": frozenset({"--json"}),
    "check": frozenset({"--json", "--order"}),
}


@dataclass(frozen=True)
class Question:
    """A command line the engine answers: ``wtls list|status|check [PATH] [flags]``."""

    command: str
    path: str | None
    json: bool = False
    no_size: bool = False
    order: bool = False


def parse_question(argv: Sequence[str]) -> Question | None:
    """``wtls ARGV`` as a question the engine answers; None when it is not one (another command,
    another flag, ``--no-daemon``, ``--help``, a ``file://`` URI: the CLI itself)."""
    if not argv or argv[0] not in ASKABLE:
        return None
    flags = {a for a in argv[1:] if a.startswith("-")}
    paths = [a for a in argv[1:] if not a.startswith("-")]
    if not flags <= ASKABLE[argv[0]] or len(paths) > 1:
        return None
    if paths and (not paths[0] or paths[0].startswith("file:")):
        return None
    return Question(
        command=argv[0],
        path=paths[0] if paths else None,
        json="--json" in flags,
        no_size="--no-size" in flags,
        order="--order" in flags,
    )


def ask_engine(argv: Sequence[str]) -> int | None:
    """Print the running engine's answer to ``wtls ARGV`` and return its exit code; None: the
    CLI must work alone."""
    question = parse_question(argv)
    if question is None:
        return None
    cwd = os.getcwd()
    common = _common_dir(Path(cwd, question.path or "."))
    if common is None:
        return None
    from wtls.daemon import hello
    from wtls.daemon.client import EngineError, connect
    from wtls.daemon.paths import RuntimeDirError

    try:
        sock, reply = connect(common, "query", start=False, extra={"argv": list(argv), "cwd": cwd})
    except (EngineError, RuntimeDirError, OSError):
        return None
    sock.close()
    if not reply.get("ok") or hello.should_replace(reply):
        return None  # a fallback, an error, or an engine running other code
    stdout, code = reply.get("stdout"), reply.get("code")
    if not isinstance(stdout, str) or not isinstance(code, int):
        return None
    sys.stdout.flush()
    sys.stdout.buffer.write(stdout.encode("utf-8"))
    sys.stdout.buffer.flush()
    return code


@dataclass(frozen=True)
class News:
    """The engine's conflict news for an agent's edit (``text`` None: nothing collides)."""

    text: str | None


def ask_news(worktree: Path, file: Path) -> News | None:
    """The running engine's conflict news for ``file`` just changed in ``worktree`` (its
    snapshots and merges are warm: a fraction of computing them here); None when no engine
    answers (the hook then predicts by itself)."""
    common = _common_dir(worktree)
    if common is None:
        return None
    from wtls.daemon import hello
    from wtls.daemon.client import EngineError, connect
    from wtls.daemon.paths import RuntimeDirError

    extra = {"news": {"worktree": str(worktree), "file": str(file)}}
    try:
        sock, reply = connect(common, "query", start=False, extra=extra)
    except (EngineError, RuntimeDirError, OSError):
        return None
    sock.close()
    text = reply.get("news")
    if not reply.get("ok") or hello.should_replace(reply):
        return None
    if text is not None and not isinstance(text, str):
        return None
    return News(text)


#: Seconds the CLI waits for the engine's answer about unsaved buffers before it goes on alone.
UNSAVED_TIMEOUT = 5.0
#: The environment variable that sets another wait (seconds, > 0).
UNSAVED_TIMEOUT_ENV = "WTLS_ENGINE_ASK_TIMEOUT"


def _unsaved_timeout() -> float:
    try:
        value = float(os.environ.get(UNSAVED_TIMEOUT_ENV, ""))
    except ValueError:
        return UNSAVED_TIMEOUT
    return value if 0 < value < float("inf") else UNSAVED_TIMEOUT


def ask_unsaved(
    common: Path, targets: Sequence[Path], *, warn: Callable[[str], None]
) -> UnsavedAnswer | None:
    """The running engine's answer: which of its sessions' editor buffers inside ``targets``
    are unsaved. None when no engine runs (the CLI works alone and says nothing), and when the
    engine does not answer within :data:`UNSAVED_TIMEOUT` seconds or answers badly: then
    ``warn`` gets one line saying the command goes on without it (never blocks for good)."""
    from wtls.daemon import hello
    from wtls.daemon.client import EngineError, NoEngine, connect
    from wtls.daemon.paths import RuntimeDirError
    from wtls.unsaved import UnsavedAnswer, UnsavedQuestion

    timeout = _unsaved_timeout()
    question = UnsavedQuestion.covering(targets)
    try:
        sock, reply = connect(
            common,
            "query",
            start=False,
            extra={"unsaved": question.to_json()},
            reply_timeout=timeout,
        )
    except NoEngine:
        return None
    except (EngineError, RuntimeDirError, OSError, hello.HelloError) as exc:
        warn(
            f"wtls: the running engine did not say which editor buffers are unsaved ({exc}); "
            "going on without it"
        )
        return None
    sock.close()
    try:
        # An engine of another build is still asked: its answer is facts, not text to print.
        if not reply.get("ok"):
            raise ValueError(str(reply.get("error") or "no reason given"))
        if "unsaved" not in reply:
            raise ValueError("it runs an older wtls that does not know the question")
        answer = UnsavedAnswer.from_json(reply.get("unsaved"))
        return UnsavedAnswer(buffers=answer.inside(targets))
    except ValueError as exc:
        warn(
            f"wtls: the running engine could not say which editor buffers are unsaved ({exc}); "
            "going on without it"
        )
        return None


def engine_unsaved(
    start: Path, *, warn: Callable[[str], None]
) -> Callable[[Sequence[Path]], Sequence[UnsavedBuffer]]:
    """The CLI's :data:`wtls.unsaved.UnsavedFinder`: asks the engine of the repository of
    ``start`` (a folder) when the command is about to change files, and finds nothing when no
    engine runs. An engine that did not answer once is not asked again by this command (``prune
    --merged`` asks for each worktree: one wait and one line at most)."""
    silent = False

    def find(targets: Sequence[Path]) -> Sequence[UnsavedBuffer]:
        nonlocal silent
        if silent:
            return ()
        common = _common_dir(start)
        if common is None:
            return ()

        def warned(text: str) -> None:
            nonlocal silent
            silent = True
            warn(text)

        answer = ask_unsaved(common, targets, warn=warned)
        return answer.buffers if answer is not None else ()

    return find


def _common_dir(where: Path) -> Path | None:
    """The common git dir of the repository containing ``where`` (a folder or a file)."""
    from wtls.daemon.paths import common_dir_of

    return common_dir_of(where if where.is_dir() else where.parent, timeout=10)
