/**
 * A fresh AI session per window: when a window opens on a worktree that wtls spawned with a
 * task prompt, show the task and start `wtls.agent.command` in a terminal named after the
 * branch, once per worktree and only in a trusted workspace.
 *
 * `wtls spawn` (from any window or the CLI) records what it did in the worktree's
 * `.wtls/spawn.json`; the server reads it (with bounds) and sends it as the worktree's `spawn`
 * (`branch`, absolute `promptFile`, `created`), which the window that opens on it uses. "Once" is remembered in the extension's global state,
 * keyed by worktree path and spawn time, so a worktree re-created at the same path starts anew.
 */

import * as vscode from 'vscode';
import { substituteAgentCommand } from './format';
import type { SpawnRecord } from './protocol';
import { readSmallFile } from './spawnInfo';
import { agentCommand } from './settings';
import type { WorktreeStore } from './state';

export class AgentLauncher implements vscode.Disposable {
    private readonly disposables: vscode.Disposable[] = [];
    /** Worktrees this window has looked at (the store fires often; decide once). */
    private readonly seen = new Set<string>();

    constructor(
        private readonly store: WorktreeStore,
        private readonly log: vscode.LogOutputChannel,
        private readonly memento: vscode.Memento,
    ) {
        this.disposables.push(
            store.onDidChange(() => void this.check()),
            vscode.workspace.onDidGrantWorkspaceTrust(() => {
                this.seen.clear();
                void this.check();
            }),
        );
    }

    dispose(): void {
        for (const d of this.disposables) {
            d.dispose();
        }
    }

    private async check(): Promise<void> {
        for (const { worktree } of this.store.thisWorktrees()) {
            if (this.seen.has(worktree.path)) {
                continue;
            }
            const info = worktree.spawn;
            if (!info) {
                continue;
            }
            this.seen.add(worktree.path);
            const key = `agentStarted:${worktree.path}:${info.created}`;
            if (this.memento.get<boolean>(key)) {
                continue;
            }
            if (await this.launch(worktree.path, info)) {
                await this.memento.update(key, true);
            }
        }
    }

    /** Shows the task and starts the agent; false when it must wait (untrusted workspace). */
    private async launch(worktree: string, info: SpawnRecord): Promise<boolean> {
        const promptUri = vscode.Uri.file(info.promptFile);
        let prompt = '';
        try {
            const text = await readSmallFile(info.promptFile);
            if (text === undefined) {
                throw new Error('not a regular file of at most 1 MiB');
            }
            prompt = text;
            await vscode.window.showTextDocument(promptUri, { preview: true, preserveFocus: true });
        } catch (err) {
            this.log.warn(`Cannot read the task prompt ${info.promptFile}: ${String(err)}`);
        }
        const template = agentCommand(vscode.Uri.file(worktree));
        if (!template) {
            this.log.info(`Task of ${info.branch} shown; wtls.agent.command is empty, so no agent starts.`);
            return true;
        }
        if (!vscode.workspace.isTrusted) {
            this.log.info(`Not starting the agent of ${info.branch}: this workspace is not trusted.`);
            void vscode.window.showInformationMessage(
                `The task of ${info.branch} is open. Trust this workspace to start the agent (${template}).`,
            );
            return false;
        }
        const command = substituteAgentCommand(template, {
            promptFile: info.promptFile,
            prompt: prompt.trim(),
            branch: info.branch,
            worktree,
        });
        const terminal = vscode.window.createTerminal({
            name: info.branch,
            cwd: worktree,
            iconPath: new vscode.ThemeIcon('hubot'),
        });
        terminal.show(true);
        terminal.sendText(command, true);
        this.log.info(`Started the agent of ${info.branch} in ${worktree}: ${command}`);
        return true;
    }
}
