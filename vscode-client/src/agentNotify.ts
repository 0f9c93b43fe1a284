/**
 * "feature/x is waiting: MESSAGE" with **Open Window**, when another worktree's agent starts
 * waiting for the person (setting `wtls.agents.notify`). Which worktrees just started waiting
 * is `newlyWaiting` (format.ts, unit-tested); this module only shows it.
 */

import * as vscode from 'vscode';
import type { WtlsClient } from './client';
import { newlyWaiting } from './format';
import type { WorktreesPayload } from './protocol';
import { agentsNotify } from './settings';

export class AgentNotifier implements vscode.Disposable {
    private readonly previous = new Map<string, WorktreesPayload>();
    private readonly disposables: vscode.Disposable[] = [];

    constructor(
        client: WtlsClient,
        private readonly log: vscode.LogOutputChannel,
    ) {
        this.disposables.push(client.onDidReceiveWorktrees((p) => this.update(p)));
    }

    dispose(): void {
        for (const d of this.disposables) {
            d.dispose();
        }
    }

    private update(payload: WorktreesPayload): void {
        const notices = newlyWaiting(this.previous.get(payload.repository), payload);
        this.previous.set(payload.repository, payload);
        for (const notice of notices) {
            this.log.info(notice.text);
            if (!agentsNotify()) {
                continue;
            }
            void vscode.window.showInformationMessage(notice.text, 'Open Window').then(async (choice) => {
                if (choice === 'Open Window') {
                    await vscode.commands.executeCommand('vscode.openFolder', vscode.Uri.file(notice.path), {
                        forceNewWindow: true,
                    });
                }
            });
        }
    }
}
