/**
 * "Show Predicted Merge": the current file as git's merge with another worktree (or the base
 * branch) would leave it, conflict markers included, opened read-only as a diff beside the file.
 * The merge is the server's (`wtls/predictedMerge`); this module only asks and shows.
 */

import * as path from 'node:path';
import * as vscode from 'vscode';
import { RefusedError, type WtlsClient } from './client';
import { PREDICTED_MERGE_METHOD, type PredictedMerge, type PredictedMergeParams } from './protocol';
import type { WorktreeStore } from './state';

export const SHOW_PREDICTED_MERGE = 'wtls.client.showPredictedMerge';
/** Read-only documents holding predicted merges. */
export const PREDICTED_MERGE_SCHEME = 'wtls-merge';
/** The diagnostic codes whose quick fix shows the predicted merge. */
const FORESIGHT_CODES = new Set(['predicted-conflict', 'predicted-overlap']);
/** The other side's word for the base branch's tip. */
const BASE = 'base';
/** Predicted merges kept for reopening (oldest dropped first). */
const KEEP = 20;

/** What the command needs: a file and the other side (asked for when missing). */
interface Target {
    uri?: string;
    with?: string;
}

function isTarget(value: unknown): value is Target {
    return typeof value === 'object' && value !== null && !(value instanceof vscode.Uri);
}

/** Provides the predicted merges' content, the quick fix, and the command. */
export class PredictedMergeView implements vscode.TextDocumentContentProvider, vscode.CodeActionProvider, vscode.Disposable {
    private readonly contents = new Map<string, string>();
    private readonly disposables: vscode.Disposable[];
    private counter = 0;

    constructor(
        private readonly client: WtlsClient,
        private readonly store: WorktreeStore,
    ) {
        this.disposables = [
            vscode.workspace.registerTextDocumentContentProvider(PREDICTED_MERGE_SCHEME, this),
            vscode.languages.registerCodeActionsProvider({ scheme: 'file' }, this, {
                providedCodeActionKinds: [vscode.CodeActionKind.QuickFix],
            }),
            vscode.commands.registerCommand(SHOW_PREDICTED_MERGE, (arg?: unknown) => this.show(arg)),
        ];
    }

    provideTextDocumentContent(uri: vscode.Uri): string {
        return this.contents.get(uri.toString()) ?? '';
    }

    provideCodeActions(document: vscode.TextDocument, _range: vscode.Range, context: vscode.CodeActionContext): vscode.CodeAction[] {
        const out: vscode.CodeAction[] = [];
        const seen = new Set<string>();
        for (const diagnostic of context.diagnostics) {
            const code = typeof diagnostic.code === 'object' ? diagnostic.code.value : diagnostic.code;
            // vscode-languageclient keeps the server's `data` on the diagnostic it creates.
            const data = (diagnostic as { data?: { other?: unknown; againstBase?: unknown; branch?: unknown } }).data;
            if (!FORESIGHT_CODES.has(String(code)) || typeof data?.other !== 'string') {
                continue;
            }
            const other = data.againstBase === true ? BASE : data.other;
            if (seen.has(other)) {
                continue;
            }
            seen.add(other);
            const label = typeof data.branch === 'string' ? data.branch : path.basename(data.other);
            const action = new vscode.CodeAction(`Show Predicted Merge with ${label}`, vscode.CodeActionKind.QuickFix);
            action.diagnostics = [diagnostic];
            action.command = {
                command: SHOW_PREDICTED_MERGE,
                title: action.title,
                arguments: [{ uri: document.uri.toString(), with: other } satisfies Target],
            };
            out.push(action);
        }
        return out;
    }

    /** The command: from a quick fix ({uri, with}), the editor title (a file URI) or the palette. */
    async show(arg?: unknown): Promise<void> {
        const target: Target = isTarget(arg) ? arg : {};
        const fileUri = target.uri
            ? vscode.Uri.parse(target.uri)
            : arg instanceof vscode.Uri
              ? arg
              : vscode.window.activeTextEditor?.document.uri;
        if (!fileUri || fileUri.scheme !== 'file') {
            void vscode.window.showInformationMessage('Open a file of a worktree to see its predicted merge.');
            return;
        }
        const other = target.with ?? (await this.pickOther(fileUri.fsPath));
        if (!other) {
            return;
        }
        const params: PredictedMergeParams = { uri: fileUri.toString(), with: other };
        let merged: PredictedMerge;
        try {
            merged = await vscode.window.withProgress(
                { location: vscode.ProgressLocation.Window, title: 'wtls: predicting the merge…' },
                () => this.client.request<PredictedMerge>(PREDICTED_MERGE_METHOD, params),
            );
        } catch (err) {
            const message = err instanceof Error ? err.message : String(err);
            void vscode.window.showWarningMessage(
                err instanceof RefusedError ? `wtls: ${message}` : `wtls: could not predict the merge: ${message}`,
            );
            return;
        }
        await this.open(fileUri, merged);
    }

    private async pickOther(file: string): Promise<string | undefined> {
        const payload = this.store.forPath(file);
        const mine = payload?.worktrees
            .filter((w) => file === w.path || file.startsWith(w.path + path.sep))
            .sort((a, b) => b.path.length - a.path.length)[0];
        const items: (vscode.QuickPickItem & { value: string })[] = [];
        if (payload?.baseBranch) {
            items.push({ label: `$(git-branch) ${payload.baseBranch}`, description: 'the base branch', value: BASE });
        }
        for (const w of payload?.worktrees ?? []) {
            if (w.path !== mine?.path && !w.bare && !w.prunable) {
                items.push({ label: w.branch ?? path.basename(w.path), description: w.path, value: w.path });
            }
        }
        if (items.length === 0) {
            void vscode.window.showInformationMessage('There is no other worktree or base branch to merge with.');
            return undefined;
        }
        const picked = await vscode.window.showQuickPick(items, { placeHolder: 'Merge this file with…' });
        return picked?.value;
    }

    private async open(fileUri: vscode.Uri, merged: PredictedMerge): Promise<void> {
        const name = path.basename(merged.path ?? merged.source);
        this.counter += 1;
        const mergeUri = vscode.Uri.from({
            scheme: PREDICTED_MERGE_SCHEME,
            path: `/${merged.path ?? merged.source}`,
            query: `n=${this.counter}`,
        });
        const note = merged.binary
            ? `${name} is binary: the predicted merge cannot be shown as text.\n`
            : merged.path === null
              ? `The merge deletes ${merged.source}.\n`
              : merged.content;
        this.contents.set(mergeUri.toString(), note);
        while (this.contents.size > KEEP) {
            this.contents.delete(this.contents.keys().next().value as string);
        }
        const state = merged.conflicted ? 'conflicts' : 'merges cleanly';
        const title = `${name} ↔ predicted merge with ${merged.theirs} (${state})`;
        await vscode.commands.executeCommand('vscode.diff', fileUri, mergeUri, title, { preview: true });
    }

    dispose(): void {
        for (const d of this.disposables) {
            d.dispose();
        }
    }
}
