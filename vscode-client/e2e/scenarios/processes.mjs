// A real `sleep` runs inside a worktree: the Worktrees view counts it on that worktree's row,
// the view's title shows the disk totals, and the row's inline "Stop Processes…" asks with the
// process listed, then ends it (the server's wtls.stopProcesses) and the count goes.

import { spawn } from 'node:child_process';
import { TIMEOUT, waitUntil } from '../common.mjs';
import { runCommand, sel, statusItem, waitForNotification, waitForViewRow, worktreesPane } from '../workbench.mjs';

export const name = 'processes';
export const description = 'process count in the Worktrees view, Stop Processes… ends a real sleep';

export async function run(t) {
    // Started before the window opens: the server's first scan counts it (no file changes).
    const sleeper = spawn('sleep', ['300'], { cwd: t.repo.remaining, stdio: 'ignore' });
    let exit = null;
    sleeper.on('exit', (code, signal) => {
        exit = { code, signal };
    });
    try {
        const { page } = await t.openFolder(t.repo.wipe);

        await t.step('the view counts the sleep and Stop Processes ends it', page, async () => {
            await statusItem(page, (s) => s.includes('feature/wipe'), 'the wtls status-bar item');
            await runCommand(page, 'Focus on Worktrees View');
            const rows = await waitForViewRow(
                page,
                (r) => /feature\/remaining.*1 process\b/s.test(r),
                'feature/remaining with 1 process',
            );
            const header = worktreesPane(page).locator('.pane-header');
            let title = '';
            for (const deadline = Date.now() + TIMEOUT; !/on disk/.test(title) && Date.now() < deadline; ) {
                await page.waitForTimeout(250);
                title = (await header.innerText().catch(() => '')).replace(/\s+/g, ' ');
            }
            if (!/on disk/.test(title)) {
                throw new Error(`the view title shows no disk total: ${JSON.stringify(title)}`);
            }
            await t.screenshot(page, 'processes-counted');
            const row = worktreesPane(page).locator('.monaco-list-row', { hasText: 'feature/remaining' }).first();
            await row.hover();
            await row.locator('.action-label[aria-label^="Stop Processes"]').click();
            const dialog = page.locator(sel.dialog);
            await dialog.waitFor({ state: 'visible', timeout: TIMEOUT });
            const text = (await dialog.innerText()).replace(/\s+/g, ' ');
            if (!text.includes(`pid ${sleeper.pid} (sleep 300): cwd`)) {
                throw new Error(`the confirmation does not list the sleep (pid ${sleeper.pid}): ${text}`);
            }
            await t.screenshot(page, 'stop-processes-confirmation');
            await dialog.locator('.monaco-button', { hasText: /^Stop Processes$/ }).click();
            await waitUntil(() => exit !== null, `the sleep (pid ${sleeper.pid}) to end`);
            if (exit.signal !== 'SIGTERM') {
                throw new Error(`the sleep ended by ${JSON.stringify(exit)}, not SIGTERM`);
            }
            const said = await waitForNotification(page, /Ended 1 process using/, 'what Stop Processes did');
            await waitForViewRow(
                page,
                (r) => r.includes('feature/remaining') && !/\bprocess/.test(r),
                'feature/remaining without a process count',
            );
            return `row: ${JSON.stringify(rows.find((r) => r.includes('feature/remaining')))}; title: ${JSON.stringify(title)}; ${JSON.stringify(said)}`;
        });
    } finally {
        if (exit === null) {
            sleeper.kill('SIGKILL');
        }
    }
}
