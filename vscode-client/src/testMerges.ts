/**
 * "Test Merges": the project's tests on the predicted merges of every worktree (the server's
 * `wtls.testMerges`, with its own cancellable progress). The failures land in Problems from the
 * server; this module asks for the test command when the project has none and says the outcome.
 */

import * as vscode from 'vscode';
import { RefusedError, type WtlsClient } from './client';
import { testsSummary } from './format';
import { ServerCommand, type TestMergesArgs, type TestsReport } from './protocol';

export const TEST_MERGES = 'wtls.client.testMerges';

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
