// "Merge Worktree Back…" from the palette: feature/wipe merged into main, and the message.

import { waitUntil } from '../common.mjs';
import { git } from '../fixtures.mjs';
import { pickQuickItem, runCommand, statusItem, waitForNotification } from '../workbench.mjs';

export const name = 'merge';
export const description = 'Merge Worktree Back… from the palette';

export async function run(t) {
    const { page } = await t.openFolder(t.repo.wipe);

    await t.step('merge a worktree back into main', page, async () => {
        await statusItem(page, (s) => s.includes('feature/wipe'), 'the wtls status-bar item');
        await runCommand(page, 'Worktrees: Merge Worktree Back…');
        await pickQuickItem(page, 'feature/wipe');
        await pickQuickItem(page, 'Merge feature/wipe into main');
        await waitUntil(() => git(t.repo.main, 'show', 'main:cli.py').includes('add|list|done|wipe'), 'main to contain the wipe change');
        const note = await waitForNotification(page, /Merged feature\/wipe into main/, 'the merge message');
        return JSON.stringify(note);
    });
}
