/**
 * The status-bar item of a window opened on a worktree: this window's branch, ahead/behind the
 * base branch, changed paths and predicted conflicts; the tooltip lists the other worktrees.
 * It changes only when a `wtls/worktrees` notification arrives (or the active editor moves to
 * another repository of a multi-root window): no polling.
 */

import * as os from 'node:os';
import * as vscode from 'vscode';
import type { WtlsClient } from './client';
import { statusText, tooltipMarkdown } from './format';
import type { WorktreeStore } from './state';

export const STATUS_ITEM_ID = 'wtls.status';

export class WorktreeStatusBar implements vscode.Disposable {
    private readonly item: vscode.StatusBarItem;
    private readonly disposables: vscode.Disposable[] = [];

    constructor(
        private readonly store: WorktreeStore,
        private readonly client: WtlsClient,
    ) {
        this.item = vscode.window.createStatusBarItem(STATUS_ITEM_ID, vscode.StatusBarAlignment.Left, 90);
        this.item.name = 'Worktree';
        this.disposables.push(
            this.item,
            store.onDidChange(() => this.render()),
            client.onDidChangeState(() => this.render()),
            vscode.window.onDidChangeActiveTextEditor(() => this.render()),
        );
        this.render();
    }

    dispose(): void {
        for (const d of this.disposables) {
            d.dispose();
        }
    }

    private render(): void {
        if (this.client.state === 'failed') {
            this.item.text = '$(warning) wtls';
            this.item.tooltip = 'The wtls server is not running. Click to show its output.';
            this.item.command = 'wtls.client.showOutput';
            this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
            this.item.show();
            return;
        }
        this.item.backgroundColor = undefined;
        const mine = this.store.thisWorktrees();
        if (mine.length === 0) {
            this.item.hide();
            return;
        }
        // Multi-root: the repository of the active editor, else the first one.
        const active = vscode.window.activeTextEditor?.document.uri;
        const activePayload = active?.scheme === 'file' ? this.store.forPath(active.fsPath) : undefined;
        const chosen = mine.find((m) => m.payload === activePayload) ?? mine[0];
        this.item.text = statusText(chosen.worktree);
        const tooltip = new vscode.MarkdownString(tooltipMarkdown(chosen.payload, os.homedir()));
        tooltip.supportThemeIcons = true;
        this.item.tooltip = tooltip;
        this.item.command = { title: 'Open Worktree in New Window…', command: 'wtls.client.open' };
        this.item.accessibilityInformation = { label: `Worktree ${chosen.worktree.branch ?? 'detached'}` };
        this.item.show();
    }
}
