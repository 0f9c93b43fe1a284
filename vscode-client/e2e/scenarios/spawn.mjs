// "Spawn Agent Worktree…" from the palette in a trusted window: the name validated live by the
// server, the worktree on disk with its setup run, a new window whose terminal runs the agent
// command, and the new worktree in the first window's Worktrees view.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TIMEOUT } from '../common.mjs';
import { AGENT_MARKER, git } from '../fixtures.mjs';
import { finishSpawn, runCommand, sel, statusItem, waitForText, waitForViewRow } from '../workbench.mjs';

export const name = 'spawn';
export const description = 'Spawn Agent Worktree… from the palette: validation, setup, new window, agent terminal';

export async function run(t) {
    const { page, pages } = await t.openFolder(t.repo.wipe);
    const spawnedPath = join(t.dirs.work, 'tasks-app-wipe-tests');
    const task = 'Write tests for the wipe command';
    const validated = 'spawn: name validated live by the server';
    const opened = 'spawn: new worktree on disk and in a new window';
    let newPage;

    await t.step(validated, page, async () => {
        // The command is enabled once the server runs.
        await statusItem(page, (s) => s.includes('feature/wipe'), 'the wtls status-bar item');
        await runCommand(page, 'Worktrees: Spawn Agent Worktree…');
        const input = page.locator(sel.quickInputBox);
        await input.waitFor({ state: 'visible', timeout: TIMEOUT });
        await input.fill('feature/wipe');
        // The server refuses a name whose branch or folder exists; then a valid one.
        // (The input's prompt ends with "Press 'Enter' to confirm…"; a validation message does not.)
        await waitForText(page, sel.quickInputMessage, (s) => s.trim() !== '' && !/Press 'Enter'|^Creates/.test(s), 'a refusal message');
        const refusal = (await page.locator(sel.quickInputMessage).innerText()).trim();
        await input.fill('wipe tests');
        const ok = await waitForText(page, sel.quickInputMessage, (s) => /agent\/wipe-tests/.test(s), 'the validation message');
        return `refused: ${JSON.stringify(refusal)}; accepted: ${JSON.stringify(ok.trim())}`;
    });

    await t.step(
        opened,
        () => newPage ?? page,
        async () => {
            // The name box still holds the accepted name from the previous step.
            newPage = await finishSpawn(page, pages, task);
            if (!existsSync(join(spawnedPath, 'cli.py'))) {
                throw new Error(`${spawnedPath} was not created`);
            }
            if (!existsSync(join(spawnedPath, 'setup-ran'))) {
                throw new Error('the setup command of .wtls.toml did not run in a trusted workspace');
            }
            const text = await statusItem(newPage, (s) => s.includes('agent/wipe-tests'), 'the new window status item');
            const branch = git(spawnedPath, 'branch', '--show-current').trim();
            return `${spawnedPath} on ${branch}, setup ran; new window: ${JSON.stringify(newPage.url())}; status ${JSON.stringify(text.trim())}`;
        },
        { needs: [validated] },
    );

    await t.step(
        'spawn: the agent command runs in a terminal named after the branch',
        () => newPage ?? page,
        async () => {
            if (!newPage) {
                throw new Error('no new window');
            }
            const rows = await waitForText(
                newPage,
                sel.terminalRows,
                (s) => s.includes(`${AGENT_MARKER} agent/wipe-tests`) && s.includes(task),
                'the agent output in the terminal',
            );
            const tabs = await newPage.locator('.terminal-tabs-entry, .single-terminal-tab').allInnerTexts().catch(() => []);
            return `terminal: ${JSON.stringify(rows.replace(/\s+/g, ' ').slice(0, 160))}; tabs ${JSON.stringify(tabs)}`;
        },
        { needs: [validated] },
    );

    await t.step(
        'spawn: new worktree appears in the view',
        page,
        async () => {
            await page.bringToFront();
            await runCommand(page, 'Focus on Worktrees View');
            const rows = await waitForViewRow(page, (r) => r.includes('agent/wipe-tests'), 'agent/wipe-tests');
            return `${rows.length} rows`;
        },
        { needs: [validated] },
    );
}
