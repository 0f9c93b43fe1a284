// "Lock Worktree…" with a reason and "Unlock Worktree…" from the palette: git records and drops
// the lock, and the status tooltip shows the reason meanwhile.

import { TIMEOUT, waitUntil } from '../common.mjs';
import { git } from '../fixtures.mjs';
import { pickQuickItem, runCommand, sel, statusItem, statusItemTooltip, waitForViewRow } from '../workbench.mjs';

export const name = 'lock';
export const description = 'Lock Worktree… and Unlock Worktree… from the palette';

export async function run(t) {
    const { page } = await t.openFolder(t.repo.wipe);

    await t.step('lock and unlock from the palette', page, async () => {
        await statusItem(page, (s) => s.includes('feature/wipe'), 'the wtls status-bar item');
        await runCommand(page, 'Focus on Worktrees View');
        await runCommand(page, 'Worktrees: Lock Worktree…');
        await pickQuickItem(page, 'feature/remaining');
        const reason = page.locator(sel.quickInputBox);
        await page.waitForFunction(() => /Lock feature\/remaining/.test(document.querySelector('.quick-input-widget')?.textContent ?? ''), null, {
            timeout: TIMEOUT,
        });
        await reason.fill('agent B is running');
        await reason.press('Enter');
        await waitForViewRow(page, (r) => r.includes('feature/remaining'), 'feature/remaining');
        await waitUntil(() => /locked agent B is running/.test(git(t.repo.main, 'worktree', 'list', '--porcelain')), 'git to record the lock');
        const locked = await statusItemTooltip(page, (s) => /locked: agent B is running/.test(s));
        await runCommand(page, 'Worktrees: Unlock Worktree…');
        await pickQuickItem(page, 'feature/remaining');
        await waitUntil(() => !/locked/.test(git(t.repo.main, 'worktree', 'list', '--porcelain')), 'git to drop the lock');
        return `tooltip while locked: ${JSON.stringify(locked.match(/[^\n]*locked: agent B is running[^\n]*/)?.[0] ?? '')}`;
    });
}
