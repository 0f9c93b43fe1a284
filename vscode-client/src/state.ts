/**
 * The latest `wtls/worktrees` payload of every repository in this window, fed only by the
 * server's notifications, and the context keys that the menus' `when` clauses read.
 */

import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ServerState, WtlsClient } from './client';
import type { Worktree, WorktreesPayload } from './protocol';

/** Context keys set by the extension (read by `when`/`enablement` clauses in package.json). */
export const ContextKey = {
    /** The extension has started (the view and server commands are shown). */
    started: 'wtls.started',
    /** The server runs and reported at least one repository. */
    active: 'wtls.active',
    /** Some repository of the window has a linked worktree. */
    hasLinkedWorktrees: 'wtls.hasLinkedWorktrees',
    /** Some worktree is locked. */
    hasLockedWorktrees: 'wtls.hasLockedWorktrees',
    /** This window is opened on a worktree. */
    isWorktree: 'wtls.isWorktree',
} as const;

function isInside(file: string, folder: string): boolean {
    const rel = path.relative(folder, file);
    return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** Worktree state per repository, as last announced by the server. */
export class WorktreeStore implements vscode.Disposable {
    private readonly payloads = new Map<string, WorktreesPayload>();
    private readonly emitter = new vscode.EventEmitter<void>();
    /** Fires after any repository's state changed (or was cleared). */
    readonly onDidChange = this.emitter.event;
    private readonly disposables: vscode.Disposable[] = [];

    constructor(client: WtlsClient) {
        this.disposables.push(
            this.emitter,
            client.onDidReceiveWorktrees((p) => this.update(p)),
            client.onDidChangeState((s) => this.onServerState(s)),
        );
        void vscode.commands.executeCommand('setContext', ContextKey.started, true);
        this.updateContext();
    }

    /** Every repository's payload, in the order they were first announced. */
    all(): WorktreesPayload[] {
        return [...this.payloads.values()];
    }

    /** The repository that holds `file` (the innermost worktree that contains it). */
    forPath(file: string): WorktreesPayload | undefined {
        let best: { payload: WorktreesPayload; len: number } | undefined;
        for (const p of this.payloads.values()) {
            for (const w of p.worktrees) {
                if (isInside(file, w.path) && (!best || w.path.length > best.len)) {
                    best = { payload: p, len: w.path.length };
                }
            }
        }
        return best?.payload;
    }

    /** The worktree (and its repository) whose folder is `worktreePath`. */
    find(worktreePath: string): { payload: WorktreesPayload; worktree: Worktree } | undefined {
        for (const payload of this.payloads.values()) {
            const worktree = payload.worktrees.find((w) => w.path === worktreePath);
            if (worktree) {
                return { payload, worktree };
            }
        }
        return undefined;
    }

    /** Repositories in which this window is opened on a worktree. */
    thisWorktrees(): { payload: WorktreesPayload; worktree: Worktree }[] {
        const out: { payload: WorktreesPayload; worktree: Worktree }[] = [];
        for (const payload of this.payloads.values()) {
            const worktree = payload.worktrees.find((w) => w.isThis);
            if (worktree) {
                out.push({ payload, worktree });
            }
        }
        return out;
    }

    dispose(): void {
        for (const d of this.disposables) {
            d.dispose();
        }
    }

    private update(payload: WorktreesPayload): void {
        this.payloads.set(payload.repository, payload);
        this.updateContext();
        this.emitter.fire();
    }

    private onServerState(state: ServerState): void {
        if (state !== 'running' && this.payloads.size > 0) {
            // Stale state is worse than none: the view and status bar wait for the next server.
            this.payloads.clear();
            this.emitter.fire();
        }
        this.updateContext();
    }

    private updateContext(): void {
        const all = this.all();
        const set = (key: string, value: boolean): void => {
            void vscode.commands.executeCommand('setContext', key, value);
        };
        set(ContextKey.active, all.length > 0);
        set(ContextKey.hasLinkedWorktrees, all.some((p) => p.worktrees.some((w) => !w.isMain)));
        set(ContextKey.hasLockedWorktrees, all.some((p) => p.worktrees.some((w) => w.locked)));
        set(ContextKey.isWorktree, all.some((p) => p.worktrees.some((w) => w.isThis)));
    }
}
