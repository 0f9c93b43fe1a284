/**
 * Entry point of the wtls extension: wires the server client, the worktree state, the status
 * bar, the Worktrees view, the commands and the agent launcher together. No logic lives here.
 */

import * as vscode from 'vscode';
import { AgentLauncher } from './agent';
import { AgentNotifier } from './agentNotify';
import { WtlsClient } from './client';
import { offerReopenMoved, registerCommands } from './commands';
import { PredictedMergeView } from './predictedMerge';
import { registerLandWorktrees, registerTestMerges } from './testMerges';
import { ReviewView } from './review';
import { RESTART_KEYS, serverCommandSignature } from './settings';
import { WorktreeStore } from './state';
import { WorktreeStatusBar } from './statusBar';
import { WorktreesView } from './worktreesView';

let client: WtlsClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
    const log = vscode.window.createOutputChannel('wtls', { log: true });
    client = new WtlsClient(log, context.extensionUri);
    const store = new WorktreeStore(client);
    const agents = new AgentLauncher(store, log, context.globalState);
    context.subscriptions.push(
        log,
        client,
        store,
        agents,
        new AgentNotifier(client, log),
        new WorktreeStatusBar(store, client),
        new WorktreesView(store),
        new PredictedMergeView(client, store),
        registerTestMerges(client),
        registerLandWorktrees(client, store),
        new ReviewView(client, store),
        ...registerCommands({ client, store, log }),
        client.onDidMoveWorktree((moved) => void offerReopenMoved(moved)),
        onServerCommandChange(log, () => void client?.restart('the server command changed')),
        // The server learns about trust at start-up (initializationOptions.trusted).
        vscode.workspace.onDidGrantWorkspaceTrust(() => void client?.restart('the workspace is now trusted')),
    );
    log.info(`wtls extension ${String(context.extension.packageJSON.version)} (trusted: ${vscode.workspace.isTrusted})`);
    await client.start();
}

/**
 * Calls `restart` when `wtls.server.command`/`args` really changed. Events are settled for a
 * moment and the values compared, because a workbench can fire a change event for every key
 * while it reloads its configuration (seen when a second window opens in code-server).
 */
function onServerCommandChange(log: vscode.LogOutputChannel, restart: () => void): vscode.Disposable {
    let current = serverCommandSignature();
    let timer: NodeJS.Timeout | undefined;
    const listener = vscode.workspace.onDidChangeConfiguration((e) => {
        if (!RESTART_KEYS.some((key) => e.affectsConfiguration(key))) {
            return;
        }
        clearTimeout(timer);
        timer = setTimeout(() => {
            const next = serverCommandSignature();
            if (next !== current) {
                log.info(`wtls.server.command/args changed: ${current} → ${next}`);
                current = next;
                restart();
            }
        }, 1000);
    });
    return { dispose: () => (clearTimeout(timer), listener.dispose()) };
}

export async function deactivate(): Promise<void> {
    await client?.stop();
    client = undefined;
}
