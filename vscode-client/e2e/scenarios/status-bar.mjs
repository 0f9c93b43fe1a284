// The feature/wipe window: the status bar, its tooltip, the Worktrees view, and a worktree
// opened in a new window from the status bar's quick pick.

import { waitUntil } from '../common.mjs';
import { pickQuickItem, runCommand, sel, statusItem, waitForText, waitForViewRow, waitForWorkbench, worktreesPane } from '../workbench.mjs';

export const name = 'status-bar';
export const description = 'status bar, tooltip, Worktrees view, opening a worktree from the status bar';

export async function run(t) {
    const { page, pages } = await t.openFolder(t.repo.wipe);

    await t.step('status bar shows this worktree', page, async () => {
        const ids = await page.locator(sel.statusItems).evaluateAll((els) => els.map((e) => e.id)).catch(() => []);
        const text = await statusItem(page, (s) => s.includes('feature/wipe'), `the wtls status-bar item among ${JSON.stringify(ids)}`);
        if (!/feature\/wipe\s+↑1\b/.test(text)) {
            throw new Error(`status text ${JSON.stringify(text)} lacks "feature/wipe ↑1"`);
        }
        // The tooltip lists the other worktrees.
        await page.locator(sel.wtlsStatus).hover();
        const tip = await waitForText(page, '.monaco-hover', (s) => s.includes('Other worktrees'), 'the status tooltip');
        for (const other of ['feature/remaining', 'main']) {
            if (!tip.includes(other)) {
                throw new Error(`tooltip lacks ${other}: ${JSON.stringify(tip)}`);
            }
        }
        return `${JSON.stringify(text.trim())}; tooltip ${JSON.stringify(tip.replace(/\s+/g, ' ').slice(0, 160))}`;
    });

    await t.step('worktrees view lists every worktree', page, async () => {
        await runCommand(page, 'Focus on Worktrees View');
        const rows = await waitForViewRow(page, (r) => r.includes('feature/remaining'), 'feature/remaining');
        for (const branch of ['main', 'feature/wipe', 'feature/remaining']) {
            if (!rows.some((r) => r.includes(branch))) {
                throw new Error(`no row for ${branch}: ${JSON.stringify(rows)}`);
            }
        }
        // The status tooltip of the step before must not cover the view in the picture.
        await page.mouse.move(700, 400);
        await page.keyboard.press('Escape');
        await page.locator('.monaco-hover').first().waitFor({ state: 'hidden', timeout: 5000 }).catch(() => {});
        await t.picture(worktreesPane(page), 'worktrees-view');
        return `${rows.length} rows`;
    });

    await t.step('status bar click opens a worktree in a new window', page, async () => {
        // The item gets its click command once the server reported the worktrees.
        await statusItem(page, (s) => s.includes('feature/wipe'), 'the wtls status-bar item');
        await page.locator(sel.wtlsStatus).click();
        const rows = await waitForText(page, sel.quickInputRows, (s) => s.includes('current window'), 'the worktree quick pick');
        const all = await page.locator(sel.quickInputRows).allInnerTexts();
        const pageCount = pages.length;
        await pickQuickItem(page, 'feature/remaining');
        await waitUntil(() => pages.length > pageCount, 'a new window');
        const opened = pages.at(-1);
        await waitForWorkbench(opened);
        await statusItem(opened, (s) => s.includes('feature/remaining'), 'the opened window status item');
        const where = opened.url();
        await opened.close();
        await page.bringToFront();
        return `picked from ${JSON.stringify(all.map((r) => r.replace(/\s+/g, ' ').trim()))} (current: ${JSON.stringify(rows.replace(/\s+/g, ' ').trim())}); opened ${where}`;
    });
}
