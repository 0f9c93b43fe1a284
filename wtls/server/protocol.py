"""The custom LSP methods wtls sends, mirrored in ``vscode-client/src/protocol.ts``."""

from __future__ import annotations

#: Notification (server → client) and request (client → server): a repository's worktrees.
WORKTREES_METHOD = "wtls/worktrees"
#: Notification: a worktree moved ``{from, to, branch}``.
MOVED_METHOD = "wtls/moved"
