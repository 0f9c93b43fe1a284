/**
 * The "Worktrees" commands of the palette and the view. Each one asks the person what it
 * needs (quick picks, input boxes, modal confirmations), calls the server command that does
 * the work, and shows the result; windows are opened here because that is the editor's job.
 *
 * Ids are `wtls.client.*`: the server's own ids (`wtls.spawn`, …) are registered by
 * vscode-languageclient from `executeCommandProvider` and cannot be registered twice.
 */

import * as os from 'node:os';
import * as vscode from 'vscode';
import { RefusedError, type WtlsClient } from './client';
import {
    agentKind,
    baseName,
    branchLabel,
    checkSummary,
    type PickFilter,
    pickFilters,
    quickPickItems,
    removeConfirmation,
    processCount,
    removeNeedsForce,
    spawnNotes,
    stopProcessesConfirmation,
    type WorktreePickItem,
} from './format';
import {
    type Fix,
    type LockResult,
    type MergeArgs,
    type MovedPayload,
    type MergeResult,
    type PruneResult,
    type RemoveArgs,
    type RemoveResult,
    ServerCommand,
    type SpawnArgs,
    type SpawnResult,
    type StopProcessesArgs,
    type StopProcessesResult,
    type ValidateNameResult,
    type Worktree,
    type WorktreesPayload,
} from './protocol';
import { agentCommand, spawnOpenIn } from './settings';
import type { WorktreeStore } from './state';
import { isWorktreeNode } from './worktreesView';

/** Client command ids (package.json `contributes.commands`). */
export const ClientCommand = {
    spawn: 'wtls.client.spawn',
    open: 'wtls.client.open',
    merge: 'wtls.client.merge',
    remove: 'wtls.client.remove',
    prune: 'wtls.client.prune',
    lock: 'wtls.client.lock',
    unlock: 'wtls.client.unlock',
    check: 'wtls.client.check',
    refresh: 'wtls.client.refresh',
    showOutput: 'wtls.client.showOutput',
    restart: 'wtls.client.restart',
    stopProcesses: 'wtls.client.stopProcesses',
} as const;

interface Picked {
    payload: WorktreesPayload;
    worktree: Worktree;
}

interface Deps {
    client: WtlsClient;
    store: WorktreeStore;
    log: vscode.LogOutputChannel;
}

/** Registers every client command; the returned disposables unregister them. */
export function registerCommands(deps: Deps): vscode.Disposable[] {
    const { client, log } = deps;
    const wrap =
        (name: string, fn: (...args: unknown[]) => Promise<unknown>) =>
        async (...args: unknown[]): Promise<void> => {
            try {
                await fn(...args);
            } catch (err) {
                reportError(deps, name, err);
            }
        };
    return [
        vscode.commands.registerCommand(ClientCommand.spawn, wrap('Spawn', () => spawnWorktree(deps))),
        vscode.commands.registerCommand(ClientCommand.open, wrap('Open', (arg) => openWorktree(deps, arg))),
        vscode.commands.registerCommand(ClientCommand.merge, wrap('Merge', (arg) => mergeWorktree(deps, arg))),
        vscode.commands.registerCommand(ClientCommand.remove, wrap('Remove', (arg) => removeWorktree(deps, arg))),
        vscode.commands.registerCommand(ClientCommand.prune, wrap('Prune', () => prune(deps))),
        vscode.commands.registerCommand(ClientCommand.lock, wrap('Lock', (arg) => lock(deps, arg))),
        vscode.commands.registerCommand(ClientCommand.unlock, wrap('Unlock', (arg) => unlock(deps, arg))),
        vscode.commands.registerCommand(ClientCommand.check, wrap('Check', (arg) => check(deps, arg))),
        vscode.commands.registerCommand(
            ClientCommand.stopProcesses,
            wrap('Stop Processes', (arg) => stopProcesses(deps, arg)),
        ),
        vscode.commands.registerCommand(
            ClientCommand.refresh,
            wrap('Refresh', () => client.executeCommand(ServerCommand.refresh, {})),
        ),
        vscode.commands.registerCommand(ClientCommand.showOutput, () => log.show()),
        vscode.commands.registerCommand(
            ClientCommand.restart,
            wrap('Restart', () => client.restart('requested from the command palette')),
        ),
    ];
}

function reportError(deps: Deps, name: string, err: unknown): void {
    const { log } = deps;
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof RefusedError) {
        // A refusal changed nothing and its message says why: a warning, not an error. What
        // would get past it is the server's word (its fixes): one button each.
        log.info(`${name} refused: ${message}`);
        void vscode.window.showWarningMessage(message, ...err.fixes.map((f) => f.label)).then((label) => {
            const fix = err.fixes.find((f) => f.label === label);
            if (fix) {
                void runFix(deps, err, fix).catch((e: unknown) => reportError(deps, fix.label, e));
            }
        });
        return;
    }
    log.error(`${name} failed: ${message}`);
    void vscode.window.showErrorMessage(`${name} failed: ${message}`, 'Show output').then((choice) => {
        if (choice) {
            log.show();
        }
    });
}

/**
 * Runs a refusal's fix: the refused command again with the fix's option turned on, or the fix's
 * command on the same worktree (`uri` and `worktree` of the refused call).
 */
async function runFix({ client }: Deps, refused: RefusedError, fix: Fix): Promise<void> {
    const command = `wtls.${fix.action}`;
    const given = refused.args as Record<string, unknown>;
    const args: Record<string, unknown> = {};
    if (command === refused.command) {
        Object.assign(args, given);
    } else {
        for (const key of ['uri', 'worktree']) {
            if (given[key] !== undefined) {
                args[key] = given[key];
            }
        }
    }
    if (fix.option) {
        args[fix.option] = true;
    }
    const result = await withProgress(`${fix.label}…`, () =>
        client.executeCommand<{ message?: unknown; problems?: unknown }>(command, args),
    );
    const problems = Array.isArray(result?.problems) ? result.problems.filter((p) => typeof p === 'string') : [];
    const said = typeof result?.message === 'string' && result.message ? result.message : `${fix.label}: done.`;
    const text = [said, ...problems].join(' — ');
    void (problems.length > 0 ? vscode.window.showWarningMessage(text) : vscode.window.showInformationMessage(text));
}

type PickItem = vscode.QuickPickItem & { picked?: boolean; data: WorktreePickItem };

/** The worktree a command acts on: the view node it was run from, or one the person picks. */
async function pickWorktree(
    store: WorktreeStore,
    arg: unknown,
    filter: PickFilter,
    placeHolder: string,
    none: string,
): Promise<Picked | undefined> {
    if (isWorktreeNode(arg)) {
        return { payload: arg.payload, worktree: arg.worktree };
    }
    const payloads = store.all();
    const items: PickItem[] = quickPickItems(payloads, filter, os.homedir()).map((data) => ({
        label: data.label,
        description: data.description,
        detail: data.detail,
        data,
    }));
    if (items.length === 0) {
        void vscode.window.showInformationMessage(none);
        return undefined;
    }
    const choice = await vscode.window.showQuickPick(items, {
        title: placeHolder,
        placeHolder: 'Branch or folder',
        matchOnDescription: true,
        matchOnDetail: true,
    });
    return choice ? store.find(choice.data.path) : undefined;
}

/** The repository a new worktree goes into: the only one, or one the person picks. */
async function pickRepository(store: WorktreeStore, title: string): Promise<WorktreesPayload | undefined> {
    const payloads = store.all();
    if (payloads.length <= 1) {
        return payloads[0];
    }
    const choice = await vscode.window.showQuickPick(
        payloads.map((payload) => ({
            label: `$(repo) ${baseName(payload.mainWorktree ?? payload.repository)}`,
            description: payload.mainWorktree ?? payload.repository,
            payload,
        })),
        { title },
    );
    return choice?.payload;
}

/**
 * `uri` telling the server which repository a command is about (its default, the first
 * workspace folder, is wrong in a multi-root window): this window's worktree, else the main one.
 */
function repositoryUri(payload: WorktreesPayload): string | undefined {
    const anchor = payload.this ?? payload.mainWorktree ?? payload.worktrees[0]?.path;
    return anchor ? vscode.Uri.file(anchor).toString() : undefined;
}

async function withProgress<T>(title: string, task: () => Promise<T>): Promise<T> {
    return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title }, task);
}

async function spawnWorktree({ client, store, log }: Deps): Promise<void> {
    const repo = await pickRepository(store, 'Spawn Agent Worktree: repository');
    if (!repo) {
        if (store.all().length === 0) {
            void vscode.window.showWarningMessage('No repository is known yet: is the wtls server running?');
        }
        return;
    }
    const uri = repositoryUri(repo);
    const name = await vscode.window.showInputBox({
        title: 'Spawn Agent Worktree (1/3): task name',
        prompt: 'A short name for the task; it names the branch and the folder.',
        placeHolder: 'e.g. wipe-command',
        ignoreFocusOut: true,
        validateInput: async (value): Promise<vscode.InputBoxValidationMessage | undefined> => {
            if (value.trim() === '') {
                return undefined;
            }
            try {
                const r = await client.executeCommand<ValidateNameResult>(ServerCommand.validateName, {
                    name: value.trim(),
                    ...(uri ? { uri } : {}),
                });
                if (!r.ok) {
                    return { message: r.message ?? 'This name cannot be used.', severity: vscode.InputBoxValidationSeverity.Error };
                }
                const where = [r.branch ? `branch ${r.branch}` : '', r.path ? `in ${r.path}` : ''].filter(Boolean).join(' ');
                return where ? { message: `Creates ${where}`, severity: vscode.InputBoxValidationSeverity.Info } : undefined;
            } catch (err) {
                return {
                    message: err instanceof Error ? err.message : String(err),
                    severity: vscode.InputBoxValidationSeverity.Error,
                };
            }
        },
    });
    if (name === undefined || name.trim() === '') {
        return;
    }
    const prompt = await vscode.window.showInputBox({
        title: 'Spawn Agent Worktree (2/3): task prompt (optional)',
        prompt: 'What the agent in the new window should do. Leave empty for none.',
        placeHolder: 'e.g. Add a `wipe` command that removes all tasks.',
        ignoreFocusOut: true,
    });
    if (prompt === undefined) {
        return;
    }
    const base = await pickBaseBranch(repo);
    if (base === undefined) {
        return;
    }
    const args: SpawnArgs = {
        name: name.trim(),
        open: false,
        trusted: vscode.workspace.isTrusted,
        announce: false,
    };
    if (prompt.trim() !== '') {
        args.prompt = prompt;
    }
    if (base !== '') {
        args.base = base;
    }
    if (uri) {
        args.uri = uri;
    }
    const agent = agentKind(agentCommand());
    if (agent) {
        args.agent = agent;
    }
    const result = await withProgress(`Spawning worktree "${args.name}"…`, () =>
        client.executeCommand<SpawnResult>(ServerCommand.spawn, args),
    );
    log.info(`Spawned ${result.branch} at ${result.path}`);
    const notes = spawnNotes(result);
    for (const note of notes) {
        log.warn(`Spawn ${result.branch}: ${note}`);
    }
    if (notes.length > 0) {
        void vscode.window.showWarningMessage(`${result.branch}: ${notes.join(' ')}`);
    }
    const target = result.uri ? vscode.Uri.parse(result.uri) : vscode.Uri.file(result.path);
    const newWindow = spawnOpenIn() === 'newWindow';
    void vscode.window.showInformationMessage(
        `Created worktree ${result.branch} at ${result.path}${newWindow ? '; opening it in a new window.' : '.'}`,
    );
    await vscode.commands.executeCommand('vscode.openFolder', target, { forceNewWindow: newWindow });
}

/** Base branch of a new worktree: the repository's base branch, another branch, or one typed in. */
async function pickBaseBranch(repo: WorktreesPayload): Promise<string | undefined> {
    const branches = new Set<string>();
    if (repo.baseBranch) {
        branches.add(repo.baseBranch);
    }
    for (const w of repo.worktrees) {
        if (w.branch) {
            branches.add(w.branch);
        }
    }
    const items: vscode.QuickPickItem[] = [...branches].map((b) => ({
        label: b,
        description: b === repo.baseBranch ? 'base branch (default)' : undefined,
    }));
    const quickPick = vscode.window.createQuickPick<vscode.QuickPickItem>();
    quickPick.title = 'Spawn Agent Worktree (3/3): base branch';
    quickPick.placeholder = 'Branch to start from (type another branch, tag or commit if it is not listed)';
    quickPick.items = items;
    quickPick.ignoreFocusOut = true;
    return new Promise<string | undefined>((resolve) => {
        let done = false;
        quickPick.onDidAccept(() => {
            done = true;
            const selected = quickPick.selectedItems[0]?.label ?? quickPick.value.trim();
            // Nothing listed and nothing typed: let the server use its base branch.
            resolve(selected);
            quickPick.hide();
        });
        quickPick.onDidHide(() => {
            if (!done) {
                resolve(undefined);
            }
            quickPick.dispose();
        });
        quickPick.show();
    });
}

async function openWorktree({ store }: Deps, arg: unknown): Promise<void> {
    const picked = await pickWorktree(
        store,
        arg,
        pickFilters.any,
        'Open Worktree in New Window',
        'No worktree is known yet.',
    );
    if (!picked) {
        return;
    }
    if (picked.worktree.isThis) {
        void vscode.window.showInformationMessage(`${branchLabel(picked.worktree)} is this window.`);
        return;
    }
    await vscode.commands.executeCommand('vscode.openFolder', vscode.Uri.file(picked.worktree.path), {
        forceNewWindow: true,
    });
}

async function mergeWorktree({ client, store }: Deps, arg: unknown): Promise<void> {
    const picked = await pickWorktree(
        store,
        arg,
        pickFilters.mergeable,
        'Merge Worktree Back',
        'No worktree has a branch to merge back.',
    );
    if (!picked) {
        return;
    }
    const { worktree, payload } = picked;
    const branch = branchLabel(worktree);
    const into = payload.baseBranch ?? 'the base branch';
    const how = await vscode.window.showQuickPick(
        [
            { label: `Merge ${branch} into ${into}`, args: {} },
            { label: 'Merge and remove the worktree', args: { remove: true } },
            {
                label: 'Merge, remove the worktree and delete the branch',
                args: { remove: true, deleteBranch: true },
            },
        ],
        { title: `Merge ${branch} back into ${into}` },
    );
    if (!how) {
        return;
    }
    const args: MergeArgs = { worktree: worktree.path, uri: repositoryUri(payload), announce: false, ...how.args };
    const result = await withProgress(`Merging ${branch} into ${into}…`, () =>
        client.executeCommand<MergeResult>(ServerCommand.merge, args),
    );
    const conflicts = result.conflicts ?? [];
    if (conflicts.length > 0) {
        const abort = 'Abort merge';
        const choice = await vscode.window.showWarningMessage(
            `Merging ${branch} into ${into} stopped on conflicts in ${conflicts.join(', ')}. ` +
                `Resolve them in ${payload.mainWorktree ?? 'the main worktree'}, or abort the merge.`,
            abort,
        );
        if (choice === abort) {
            await client.executeCommand<MergeResult>(ServerCommand.merge, {
                worktree: worktree.path,
                uri: repositoryUri(payload),
                abort: true,
            });
            void vscode.window.showInformationMessage(`Merge of ${branch} aborted.`);
        }
        return;
    }
    const extra = [result.removed ? 'worktree removed' : '', result.branchDeleted ? 'branch deleted' : '']
        .filter(Boolean)
        .join(', ');
    if ((result.problems ?? []).length > 0) {
        void vscode.window.showWarningMessage(`Merged ${branch} into ${into}, but ${(result.problems ?? []).join(' — ')}`);
        return;
    }
    void vscode.window.showInformationMessage(
        result.merged === false
            ? `${branch} had nothing to merge into ${into}.`
            : `Merged ${branch} into ${into}${extra ? ` (${extra})` : ''}.`,
    );
}

async function removeWorktree({ client, store }: Deps, arg: unknown): Promise<void> {
    const picked = await pickWorktree(
        store,
        arg,
        pickFilters.linked,
        'Remove Worktree',
        'There is no linked worktree to remove.',
    );
    if (!picked) {
        return;
    }
    const { worktree } = picked;
    const uri = repositoryUri(picked.payload);
    const dryRun = await client.executeCommand<RemoveResult>(ServerCommand.remove, {
        worktree: worktree.path,
        uri,
        // A forced dry run lists what would be backed up instead of refusing a dirty worktree.
        force: true,
        dryRun: true,
    } satisfies RemoveArgs);
    const { message, detail } = removeConfirmation(worktree, dryRun);
    // Processes use it: the buttons say they will be stopped (the server refuses otherwise).
    const kill = (dryRun.processes ?? []).length > 0;
    const remove = kill ? 'Stop Processes and Remove' : 'Remove';
    const removeAndDelete = kill ? 'Stop Processes, Remove and Delete Branch' : 'Remove and Delete Branch';
    const buttons = worktree.branch ? [remove, removeAndDelete] : [remove];
    const choice = await vscode.window.showWarningMessage(
        message,
        { modal: true, detail: worktree.isThis ? `${detail}\n\nThis window is opened on it.` : detail },
        ...buttons,
    );
    if (!choice) {
        return;
    }
    const force = removeNeedsForce(dryRun);
    const result = await withProgress(`Removing ${branchLabel(worktree)}…`, () =>
        client.executeCommand<RemoveResult>(ServerCommand.remove, {
            worktree: worktree.path,
            uri,
            force,
            deleteBranch: choice === removeAndDelete,
            kill,
            trusted: vscode.workspace.isTrusted,
            announce: false,
        } satisfies RemoveArgs),
    );
    const problems = result.problems ?? [];
    if (result.removed === false || problems.length > 0) {
        // Stopped (files written meanwhile) or a later step failed: one warning says it all.
        void vscode.window.showWarningMessage([result.message ?? '', ...problems].filter(Boolean).join(' — '));
        return;
    }
    if (result.backupRef) {
        const copy = 'Copy restore command';
        const answer = await vscode.window.showInformationMessage(
            `Removed ${branchLabel(worktree)}. Its uncommitted work is saved in ${result.backupRef}.`,
            ...(result.restoreCommand ? [copy] : []),
        );
        if (answer === copy && result.restoreCommand) {
            await vscode.env.clipboard.writeText(result.restoreCommand);
        }
    } else {
        void vscode.window.showInformationMessage(
            `Removed ${branchLabel(worktree)}${result.branchDeleted ? ' and its branch' : ''}.`,
        );
    }
}

async function stopProcesses({ client, store }: Deps, arg: unknown): Promise<void> {
    const picked = await pickWorktree(
        store,
        arg,
        (w) => processCount(w) > 0,
        'Stop Processes',
        'No process uses a worktree (as of the last count; Refresh counts again).',
    );
    if (!picked) {
        return;
    }
    const { worktree } = picked;
    const { message, detail } = stopProcessesConfirmation(worktree);
    const stop = 'Stop Processes';
    const choice = await vscode.window.showWarningMessage(message, { modal: true, detail }, stop);
    if (choice !== stop) {
        return;
    }
    const result = await withProgress(`Stopping processes in ${branchLabel(worktree)}…`, () =>
        client.executeCommand<StopProcessesResult>(ServerCommand.stopProcesses, {
            worktree: worktree.path,
            uri: repositoryUri(picked.payload),
            // Only those the person saw: one that started meanwhile is not ended unseen.
            pids: (worktree.processes ?? []).map((p) => p.pid),
        } satisfies StopProcessesArgs),
    );
    const text = result.message ?? '';
    if ((result.notEnded ?? []).length > 0) {
        void vscode.window.showWarningMessage(text);
    } else {
        void vscode.window.showInformationMessage(text.charAt(0).toUpperCase() + text.slice(1));
    }
}

async function prune({ client, store }: Deps): Promise<void> {
    const repo = await pickRepository(store, 'Prune Stale Worktrees: repository');
    if (!repo) {
        return;
    }
    const uri = repositoryUri(repo);
    const preview = await client.executeCommand<PruneResult>(ServerCommand.prune, { uri, dryRun: true });
    const stale = preview.pruned ?? [];
    if (stale.length === 0) {
        void vscode.window.showInformationMessage('No stale worktree to prune.');
        return;
    }
    const list = stale.map((p) => `  • ${p.path}${p.reason ? ` (${p.reason})` : ''}`).join('\n');
    const ok = await vscode.window.showWarningMessage(
        `Prune ${stale.length} stale worktree${stale.length === 1 ? '' : 's'}?`,
        { modal: true, detail: `git forgets these worktrees; their folders are already gone:\n${list}` },
        'Prune',
    );
    if (!ok) {
        return;
    }
    const result = await client.executeCommand<PruneResult>(ServerCommand.prune, { uri });
    void vscode.window.showInformationMessage(`Pruned ${(result.pruned ?? []).length} stale worktree(s).`);
}

async function lock({ client, store }: Deps, arg: unknown): Promise<void> {
    const picked = await pickWorktree(store, arg, pickFilters.lockable, 'Lock Worktree', 'No worktree can be locked.');
    if (!picked) {
        return;
    }
    const reason = await vscode.window.showInputBox({
        title: `Lock ${branchLabel(picked.worktree)}`,
        prompt: 'Why it is locked (optional): git refuses to prune, move or remove it until unlocked.',
    });
    if (reason === undefined) {
        return;
    }
    const result = await client.executeCommand<LockResult>(ServerCommand.lock, {
        worktree: picked.worktree.path,
        uri: repositoryUri(picked.payload),
        ...(reason.trim() ? { reason: reason.trim() } : {}),
    });
    void vscode.window.showInformationMessage(`Locked ${branchLabel(picked.worktree)} (${result.path}).`);
}

async function unlock({ client, store }: Deps, arg: unknown): Promise<void> {
    const picked = await pickWorktree(
        store,
        arg,
        pickFilters.unlockable,
        'Unlock Worktree',
        'No worktree is locked.',
    );
    if (!picked) {
        return;
    }
    await client.executeCommand<LockResult>(ServerCommand.unlock, {
        worktree: picked.worktree.path,
        uri: repositoryUri(picked.payload),
    });
    void vscode.window.showInformationMessage(`Unlocked ${branchLabel(picked.worktree)}.`);
}

async function check({ client }: Deps, arg: unknown): Promise<void> {
    const target = isWorktreeNode(arg)
        ? vscode.Uri.file(arg.worktree.path)
        : (vscode.window.activeTextEditor?.document.uri ?? vscode.workspace.workspaceFolders?.[0]?.uri);
    const result = await withProgress('Checking for conflicts between worktrees…', () =>
        client.executeCommand<unknown>(ServerCommand.check, target ? { uri: target.toString() } : {}),
    );
    await vscode.commands.executeCommand('workbench.actions.view.problems');
    void vscode.window.showInformationMessage(checkSummary(result));
}

/** `wtls/moved`: a window opened on the old folder offers to reopen the new one. */
export async function offerReopenMoved(moved: MovedPayload): Promise<void> {
    const folders = vscode.workspace.workspaceFolders ?? [];
    const from = vscode.Uri.file(moved.from).fsPath;
    if (!folders.some((f) => f.uri.scheme === 'file' && f.uri.fsPath === from)) {
        return;
    }
    const reopen = 'Reopen There';
    const choice = await vscode.window.showWarningMessage(
        `The worktree ${moved.branch ?? ''} of this window moved to ${moved.to}.`.replace('  ', ' '),
        reopen,
    );
    if (choice === reopen) {
        await vscode.commands.executeCommand('vscode.openFolder', vscode.Uri.file(moved.to), { forceNewWindow: false });
    }
}
