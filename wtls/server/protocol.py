"""The custom LSP methods wtls sends, mirrored in ``vscode-client/src/protocol.ts``."""

from __future__ import annotations

#: Notification (server → client) and request (client → server): a repository's worktrees.
WORKTREES_METHOD = "wtls/worktrees"
#: Notification: a worktree moved ``{from, to, branch}``.
MOVED_METHOD = "wtls/moved"


class Command:
    """The ``workspace/executeCommand`` ids the server provides (``ServerCommand`` in TS)."""

    SPAWN = "wtls.spawn"
    VALIDATE_NAME = "wtls.validateName"
    OPEN = "wtls.open"
    MERGE = "wtls.merge"
    REMOVE = "wtls.remove"
    PRUNE = "wtls.prune"
    LOCK = "wtls.lock"
    UNLOCK = "wtls.unlock"
    CHECK = "wtls.check"
    REPAIR = "wtls.repair"
    MOVE = "wtls.move"
    REFRESH = "wtls.refresh"
    TEST_MERGES = "wtls.testMerges"


#: Every command id, for tests and for clients that list them.
COMMANDS = tuple(v for k, v in vars(Command).items() if k.isupper())
