/**
 * "Test Merges": the project's tests on the predicted merges of every worktree (the server's
 * `wtls.testMerges`, with its own cancellable progress). The failures land in Problems from the
 * server; this module asks for the test command when the project has none and says the outcome.
 *
 * "Land Worktrees…": the local merge queue (the server's `wtls.land`): the mergeable worktrees
 * to land (all picked), the test command the same way, whether to remove what landed; one
 * message with the outcome.
 */

import * as os from 'os';
import * as vscode from 'vscode';
import { RefusedError, type WtlsClient } from './client';
import { landSummary, pickFilters, quickPickItems, testsSummary, type WorktreePickItem } from './format';
import { ServerCommand, type LandArgs, type LandResult, type TestMergesArgs, type TestsReport } from './protocol';
import type { WorktreeStore } from './state';

export const TEST_MERGES = 'wtls.client.testMerges';
export const LAND_WORKTREES = 'wtls.client.land';

export function registerTestMerges(client: WtlsClient): vscode.Disposable {
    return vscode.commands.registerCommand(TEST_MERGES, async (arg?: TestMergesArgs) => {
        const run = (args: TestMergesArgs): Promise<TestsReport> => client.executeCommand<TestsReport>(ServerCommand.testMerges, args);
        let report: TestsReport;
        try {
            report = await run(arg ?? {});
        } catch (err) {
            if (!(err instanceof RefusedError) || !/no test command/.test(err.message)) {
                void vscode.window.showWarningMessage(`wtls: ${err instanceof Error ? err.message : String(err)}`);
                return;
            }
            const command = await vscode.window.showInputBox({
                title: 'Test Merges',
                prompt: 'The command that runs your tests (or set `test` in .wtls.toml)',
                placeHolder: 'python -m pytest -q',
                ignoreFocusOut: true,
            });
            if (!command?.trim()) {
                return;
            }
            try {
                report = await run({ ...arg, command: command.trim() });
            } catch (again) {
                void vscode.window.showWarningMessage(`wtls: ${again instanceof Error ? again.message : String(again)}`);
                return;
            }
        }
        const text = testsSummary(report);
        const bad = report.semanticConflicts.length > 0 || report.failingAlone.length > 0;
        const choice = await (bad ? vscode.window.showWarningMessage(text, 'Show Problems') : vscode.window.showInformationMessage(text));
        if (choice === 'Show Problems') {
            await vscode.commands.executeCommand('workbench.actions.view.problems');
        }
    });
}

/** The test command a person types when the project has none (undefined: they gave up). */
async function askTestCommand(title: string): Promise<string | undefined> {
    const command = await vscode.window.showInputBox({
        title,
        prompt: 'The command that runs your tests (or set `test` in .wtls.toml)',
        placeHolder: 'python -m pytest -q',
        ignoreFocusOut: true,
    });
    return command?.trim() || undefined;
}

function errorText(err: unknown): string {
    return `wtls: ${err instanceof Error ? err.message : String(err)}`;
}

export function registerLandWorktrees(client: WtlsClient, store: WorktreeStore): vscode.Disposable {
    return vscode.commands.registerCommand(LAND_WORKTREES, async () => {
        const payloads = store.all();
        const items = quickPickItems(payloads, pickFilters.mergeable, os.homedir()).map((data: WorktreePickItem) => ({
            label: data.label,
            description: data.description,
            detail: data.detail,
            picked: true,
            data,
        }));
        if (items.length === 0) {
            void vscode.window.showInformationMessage('wtls: no worktree has commits to land.');
            return;
        }
        const chosen = await vscode.window.showQuickPick(items, {
            title: 'Land Worktrees: merge each into the base branch, only when its tests pass',
            placeHolder: 'Worktrees to land (in the predicted best order)',
            canPickMany: true,
            matchOnDescription: true,
            matchOnDetail: true,
        });
        if (!chosen || chosen.length === 0) {
            return;
        }
        const found = chosen.map((c) => store.find(c.data.path)).filter((f) => f !== undefined);
        const repos = new Set(found.map((f) => f.payload.repository));
        if (found.length === 0 || repos.size !== 1) {
            void vscode.window.showWarningMessage('wtls: pick worktrees of one repository to land.');
            return;
        }
        const payload = found[0].payload;
        const anchor = payload.this ?? payload.mainWorktree ?? payload.worktrees[0]?.path;
        const after = await vscode.window.showQuickPick(
            [
                { label: 'Keep the worktrees', remove: false },
                { label: 'Remove what landed', description: "with Remove's safety", remove: true },
            ],
            { title: 'Land Worktrees: after landing' },
        );
        if (!after) {
            return;
        }
        const args: LandArgs = {
            uri: anchor ? vscode.Uri.file(anchor).toString() : undefined,
            // All of them: the server's default set, which passes over (and names) a worktree it
            // cannot land, where naming that worktree would refuse the whole queue.
            worktrees: chosen.length === items.length ? undefined : found.map((f) => f.worktree.path),
            remove: after.remove,
        };
        const run = (extra: Partial<LandArgs>): Promise<LandResult> =>
            client.executeCommand<LandResult>(ServerCommand.land, { ...args, ...extra });
        let result: LandResult;
        try {
            result = await run({});
        } catch (err) {
            if (!(err instanceof RefusedError) || !/needs a test command/.test(err.message)) {
                void vscode.window.showWarningMessage(errorText(err));
                return;
            }
            const command = await askTestCommand('Land Worktrees');
            if (!command) {
                return;
            }
            try {
                result = await run({ command });
            } catch (again) {
                void vscode.window.showWarningMessage(errorText(again));
                return;
            }
        }
        const text = landSummary(result);
        const stopped = (result.steps ?? []).some((s) => s.status !== 'landed' && s.status !== 'merged');
        if (stopped || (result.problems ?? []).length > 0) {
            void vscode.window.showWarningMessage(text);
        } else {
            void vscode.window.showInformationMessage(text);
        }
    });
}
