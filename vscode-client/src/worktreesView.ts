/**
 * The "Worktrees" view in the Source Control container: one node per worktree (branch, path,
 * state icon and counters, predicted conflicts as children), grouped by repository in a
 * multi-root window. Empty when no repository has a linked worktree, so that the welcome
 * view with its "Spawn Agent Worktree" button shows.
 */

import * as path from 'node:path';
import * as vscode from 'vscode';
import {
    baseName,
    branchLabel,
    conflictCount,
    contextValue,
    diskSummary,
    escapeMarkdown,
    processesMarkdown,
    stateSummary,
    treeDescription,
    treeIcon,
} from './format';
import type { ConflictPrediction, Worktree, WorktreesPayload } from './protocol';
import type { WorktreeStore } from './state';

export const VIEW_ID = 'wtls.worktrees';

export interface RepositoryNode {
    kind: 'repository';
    payload: WorktreesPayload;
}

export interface WorktreeNode {
    kind: 'worktree';
    payload: WorktreesPayload;
    worktree: Worktree;
}

export interface ConflictNode {
    kind: 'conflict';
    worktree: Worktree;
    conflict: ConflictPrediction;
    file: string;
}

export type Node = RepositoryNode | WorktreeNode | ConflictNode;

/** True for a tree node that stands for one worktree (commands accept it as argument). */
export function isWorktreeNode(value: unknown): value is WorktreeNode {
    return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'worktree';
}

export class WorktreesView implements vscode.TreeDataProvider<Node>, vscode.Disposable {
    private readonly emitter = new vscode.EventEmitter<Node | undefined>();
    readonly onDidChangeTreeData = this.emitter.event;
    private readonly view: vscode.TreeView<Node>;
    private readonly disposables: vscode.Disposable[] = [];

    constructor(private readonly store: WorktreeStore) {
        this.view = vscode.window.createTreeView(VIEW_ID, { treeDataProvider: this, showCollapseAll: false });
        this.disposables.push(
            this.emitter,
            this.view,
            store.onDidChange(() => {
                this.updateBadge();
                this.updateDescription();
                this.emitter.fire(undefined);
            }),
        );
    }

    dispose(): void {
        for (const d of this.disposables) {
            d.dispose();
        }
    }

    getChildren(node?: Node): Node[] {
        if (!node) {
            const payloads = this.store.all();
            if (!payloads.some((p) => p.worktrees.some((w) => !w.isMain))) {
                return [];
            }
            if (payloads.length === 1) {
                return this.worktreeNodes(payloads[0]);
            }
            return payloads.map((payload) => ({ kind: 'repository', payload }));
        }
        if (node.kind === 'repository') {
            return this.worktreeNodes(node.payload);
        }
        if (node.kind === 'worktree') {
            return node.worktree.conflicts.flatMap((conflict) =>
                conflict.files.map((file): ConflictNode => ({ kind: 'conflict', worktree: node.worktree, conflict, file })),
            );
        }
        return [];
    }

    getTreeItem(node: Node): vscode.TreeItem {
        if (node.kind === 'repository') {
            const main = node.payload.mainWorktree ?? node.payload.repository;
            const item = new vscode.TreeItem(baseName(main), vscode.TreeItemCollapsibleState.Expanded);
            item.id = `repo:${node.payload.repository}`;
            item.iconPath = new vscode.ThemeIcon('repo');
            const disk = diskSummary([node.payload]);
            item.description =
                [node.payload.baseBranch ? `base ${node.payload.baseBranch}` : '', disk].filter(Boolean).join(' · ') ||
                undefined;
            item.tooltip = node.payload.repository;
            item.contextValue = 'wtls-repository';
            return item;
        }
        if (node.kind === 'worktree') {
            const w = node.worktree;
            const item = new vscode.TreeItem(
                branchLabel(w),
                conflictCount(w) > 0 ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None,
            );
            item.id = `wt:${node.payload.repository}:${w.path}`;
            item.description = treeDescription(w) + (w.isThis ? '  (this window)' : '');
            item.iconPath = new vscode.ThemeIcon(treeIcon(w));
            item.resourceUri = vscode.Uri.file(w.path);
            item.contextValue = contextValue(w);
            const tip = new vscode.MarkdownString(
                `**${escapeMarkdown(branchLabel(w))}**${w.isMain ? ' (main worktree)' : ''}${w.isThis ? ' — this window' : ''}\n\n` +
                    `${escapeMarkdown(w.path)}\n\n${escapeMarkdown(stateSummary(w))}` +
                    (processesMarkdown(w) ? `\n\n${processesMarkdown(w)}` : ''),
            );
            item.tooltip = tip;
            return item;
        }
        const other = node.conflict.branch ?? (node.conflict.path ? baseName(node.conflict.path) : 'base');
        const item = new vscode.TreeItem(node.file, vscode.TreeItemCollapsibleState.None);
        item.description = `conflicts with ${other}`;
        item.iconPath = new vscode.ThemeIcon('warning');
        const file = vscode.Uri.file(path.join(node.worktree.path, node.file));
        item.resourceUri = file;
        item.command = { title: 'Open File', command: 'vscode.open', arguments: [file] };
        item.contextValue = 'wtls-conflict';
        return item;
    }

    private worktreeNodes(payload: WorktreesPayload): WorktreeNode[] {
        return payload.worktrees.map((worktree) => ({ kind: 'worktree', payload, worktree }));
    }

    /** Total and reclaimable disk in the view's title bar (the server's numbers). */
    private updateDescription(): void {
        const text = diskSummary(this.store.all());
        this.view.description = text || undefined;
    }

    private updateBadge(): void {
        const mine = this.store.thisWorktrees();
        const n = mine.reduce((acc, m) => acc + conflictCount(m.worktree), 0);
        this.view.badge = n > 0 ? { value: n, tooltip: `${n} predicted conflicts with other worktrees` } : undefined;
    }
}
