"""The custom LSP methods wtls sends, mirrored in ``vscode-client/src/protocol.ts``."""

from __future__ import annotations

#: Notification (server → client) and request (client → server): a repository's worktrees.
WORKTREES_METHOD = "wtls/worktrees"
#: Notification: a worktree moved ``{from, to, branch}``.
MOVED_METHOD = "wtls/moved"
#: Request: one file as git's merge with another worktree would leave it.
PREDICTED_MERGE_METHOD = "wtls/predictedMerge"
#: Request: a worktree's changed files against its merge base (``wtls diff --json``).
REVIEW_METHOD = "wtls/review"
#: Request: one file as a commit holds it (the merge-base side of a review).
FILE_AT_METHOD = "wtls/fileAt"


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
    TAKE_INTO_BASE = "wtls.takeIntoBase"
    DISCARD_IN_WORKTREE = "wtls.discardInWorktree"
    TEST_MERGES = "wtls.testMerges"
    LAND = "wtls.land"
    STOP_PROCESSES = "wtls.stopProcesses"


#: Every command id, for tests and for clients that list them.
COMMANDS = tuple(v for k, v in vars(Command).items() if k.isupper())
