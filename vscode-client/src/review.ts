/**
 * "Review Worktree": VS Code's multi-file diff of a worktree's working state (committed and
 * uncommitted) against its merge base with the base branch, and per file "Take into Base" and
 * "Discard in Worktree". The server computes everything (`wtls/review`, `wtls/fileAt`, the
 * `wtls.takeIntoBase` / `wtls.discardInWorktree` commands); this module asks and shows.
 *
 * Left side: a read-only `wtls-review:` document of the merge-base version. Right side: the
 * worktree's file on disk (an empty `wtls-review:` document for a deleted file).
 */

import * as path from 'node:path';
import * as vscode from 'vscode';
import { RefusedError, type WtlsClient } from './client';
import {
    FILE_AT_METHOD,
    REVIEW_METHOD,
    ServerCommand,
    type FileAction,
    type FileActionArgs,
    type FileAt,
    type FileAtParams,
    type ReviewParams,
    type Worktree,
    type WorktreeDiff,
} from './protocol';
import type { WorktreeStore } from './state';
import { isWorktreeNode } from './worktreesView';

export const REVIEW_WORKTREE = 'wtls.client.reviewWorktree';
export const TAKE_INTO_BASE = 'wtls.client.takeIntoBase';
export const DISCARD_IN_WORKTREE = 'wtls.client.discardInWorktree';
/** Read-only documents: a file at a review's merge base, or the empty side of an add/delete. */
export const REVIEW_SCHEME = 'wtls-review';

/** The review the per-file commands act on: the last one opened. */
interface Open {
    diff: WorktreeDiff;
    /** Where the server finds the repository (the worktree's folder as a file URI). */
    uri: string;
}

function message(err: unknown): string {
    return err instanceof Error ? err.message : String(err);
}

/** Registers the review commands and the `wtls-review:` documents. */
export class ReviewView implements vscode.TextDocumentContentProvider, vscode.Disposable {
    private readonly disposables: vscode.Disposable[];
    private current: Open | undefined;

    constructor(
        private readonly client: WtlsClient,
        private readonly store: WorktreeStore,
    ) {
        this.disposables = [
            vscode.workspace.registerTextDocumentContentProvider(REVIEW_SCHEME, this),
            vscode.commands.registerCommand(REVIEW_WORKTREE, (arg?: unknown) => this.review(arg)),
            vscode.commands.registerCommand(TAKE_INTO_BASE, (arg?: unknown) => this.act('take', arg)),
            vscode.commands.registerCommand(DISCARD_IN_WORKTREE, (arg?: unknown) => this.act('discard', arg)),
        ];
    }

    /** `wtls-review:/PATH?rev=COMMIT&uri=REPO`: the file at that commit; no `rev`: empty. */
    async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
        const query = new URLSearchParams(uri.query);
        const rev = query.get('rev');
        if (!rev) {
            return '';
        }
        const params: FileAtParams = { rev, path: uri.path.replace(/^\//, ''), uri: query.get('uri') ?? undefined };
        try {
            const file = await this.client.request<FileAt>(FILE_AT_METHOD, params);
            return file.binary ? `${path.basename(uri.path)} is binary.\n` : file.content;
        } catch (err) {
            return `wtls could not read ${params.path} at ${rev.slice(0, 12)}: ${message(err)}\n`;
        }
    }

    /** The command: from the Worktrees view (a worktree node) or the palette (asks which). */
    async review(arg?: unknown): Promise<void> {
        const worktree = isWorktreeNode(arg) ? arg.worktree : await this.pickWorktree();
        if (!worktree) {
            return;
        }
        const uri = vscode.Uri.file(worktree.path).toString();
        let diff: WorktreeDiff;
        try {
            diff = await this.client.request<WorktreeDiff>(REVIEW_METHOD, { worktree: worktree.path, uri } satisfies ReviewParams);
        } catch (err) {
            void vscode.window.showWarningMessage(
                err instanceof RefusedError ? `wtls: ${message(err)}` : `wtls: could not review: ${message(err)}`,
            );
            return;
        }
        this.current = { diff, uri };
        await this.show();
    }

    private async show(): Promise<void> {
        const open = this.current;
        if (!open) {
            return;
        }
        const { diff, uri } = open;
        const label = diff.branch ?? path.basename(diff.worktree);
        if (diff.files.length === 0) {
            void vscode.window.showInformationMessage(`${label} changes nothing against ${diff.base}.`);
            return;
        }
        const side = (file: string, rev?: string): vscode.Uri =>
            vscode.Uri.from({
                scheme: REVIEW_SCHEME,
                path: `/${file}`,
                query: new URLSearchParams(rev ? { rev, uri } : { empty: '1' }).toString(),
            });
        const resources = diff.files.map((f) => {
            const disk = vscode.Uri.file(path.join(diff.worktree, f.path));
            const left = f.status === 'added' ? side(f.path) : side(f.oldPath ?? f.path, diff.mergeBase);
            const right = f.status === 'deleted' ? side(f.path) : disk;
            return [disk, left, right] as const;
        });
        // VS Code adds the number of files to the title itself.
        const title = `Review ${label} (against ${diff.base})`;
        await vscode.commands.executeCommand('vscode.changes', title, resources);
    }

    /**
     * "Take into Base" / "Discard in Worktree" on a file of the open review: the file's URI when
     * a caller passes one (its disk or `wtls-review:` URI), else a quick pick of the review's files.
     */
    async act(action: 'take' | 'discard', arg?: unknown): Promise<void> {
        if (!this.current) {
            await this.review();
            if (!this.current) {
                return;
            }
        }
        const { diff, uri } = this.current;
        const file = this.fileOf(arg) ?? (await this.pickFile(action));
        if (!file) {
            return;
        }
        const label = diff.branch ?? path.basename(diff.worktree);
        if (action === 'discard') {
            const answer = await vscode.window.showWarningMessage(
                `Discard ${label}'s change of ${file}?`,
                {
                    modal: true,
                    detail: `The file goes back to its ${diff.base} merge-base version in ${diff.worktree}. The worktree is saved first in a backup ref, and the answer says how to get the file back.`,
                },
                'Discard',
            );
            if (answer !== 'Discard') {
                return;
            }
        }
        const command = action === 'take' ? ServerCommand.takeIntoBase : ServerCommand.discardInWorktree;
        try {
            const done = await this.client.executeCommand<FileAction>(command, {
                worktree: diff.worktree,
                path: file,
                uri,
            } satisfies FileActionArgs);
            void vscode.window.showInformationMessage(done.message);
        } catch (err) {
            void vscode.window.showWarningMessage(`wtls: ${message(err)}`);
            return;
        }
        if (action === 'discard') {
            // The file left the review: show what is still there.
            await this.refresh();
        }
    }

    private async refresh(): Promise<void> {
        const open = this.current;
        if (!open) {
            return;
        }
        try {
            const diff = await this.client.request<WorktreeDiff>(REVIEW_METHOD, { worktree: open.diff.worktree, uri: open.uri });
            this.current = { diff, uri: open.uri };
            await this.show();
        } catch {
            // The message of the action was shown; a stale review is better than a second one.
        }
    }

    /** The reviewed file a menu passed (its disk or `wtls-review:` URI), if it is one. */
    private fileOf(arg: unknown): string | undefined {
        const diff = this.current?.diff;
        if (!diff || !(arg instanceof vscode.Uri)) {
            return undefined;
        }
        const rel =
            arg.scheme === REVIEW_SCHEME
                ? arg.path.replace(/^\//, '')
                : arg.scheme === 'file'
                  ? path.relative(diff.worktree, arg.fsPath).split(path.sep).join('/')
                  : undefined;
        return diff.files.find((f) => f.path === rel || f.oldPath === rel)?.path;
    }

    private async pickFile(action: 'take' | 'discard'): Promise<string | undefined> {
        const diff = this.current?.diff;
        if (!diff) {
            return undefined;
        }
        const items = diff.files.map((f) => ({
            label: f.path,
            description: f.oldPath ? `${f.status} from ${f.oldPath}` : f.status,
            detail: f.added === null ? 'binary' : `+${f.added} −${f.deleted ?? 0}`,
        }));
        const label = diff.branch ?? path.basename(diff.worktree);
        const picked = await vscode.window.showQuickPick(items, {
            title: action === 'take' ? `Take a file of ${label} into ${diff.base}` : `Discard a file's change in ${label}`,
            placeHolder: 'File',
            matchOnDescription: true,
        });
        return picked?.label;
    }

    private async pickWorktree(): Promise<Worktree | undefined> {
        const items: (vscode.QuickPickItem & { worktree: Worktree })[] = [];
        for (const payload of this.store.all()) {
            for (const w of payload.worktrees) {
                if (!w.bare && !w.prunable && w.branch !== payload.baseBranch) {
                    items.push({ label: w.branch ?? path.basename(w.path), description: w.path, worktree: w });
                }
            }
        }
        if (items.length === 0) {
            void vscode.window.showInformationMessage('There is no worktree to review besides the base branch.');
            return undefined;
        }
        const picked = await vscode.window.showQuickPick(items, { title: 'Review Worktree', placeHolder: 'Branch or folder' });
        return picked?.worktree;
    }

    dispose(): void {
        for (const d of this.disposables) {
            d.dispose();
        }
    }
}
