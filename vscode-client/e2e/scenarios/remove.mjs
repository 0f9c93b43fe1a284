// "Remove Worktree…" on a spawned worktree with uncommitted work: the modal confirmation lists
// what is backed up, the folder goes, a backup ref stays, and the view drops the worktree.

import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TIMEOUT, waitUntil } from '../common.mjs';
import { git } from '../fixtures.mjs';
import { pickQuickItem, runCommand, sel, statusItem, waitForNoViewRow, waitForViewRow } from '../workbench.mjs';

export const name = 'remove';
export const description = 'Remove Worktree… on a dirty spawned worktree: confirmation, backup';

export async function run(t) {
    // The worktree the spawn scenario makes from the palette, made here with the CLI.
    const spawnedPath = join(t.dirs.work, 'tasks-app-wipe-tests');
    t.sandbox.wtls(t.repo.wipe, 'spawn', '--trust', '--prompt', 'Write tests for the wipe command', '--', 'wipe tests');
    if (git(spawnedPath, 'branch', '--show-current').trim() !== 'agent/wipe-tests') {
        throw new Error(`wtls spawn did not make agent/wipe-tests in ${spawnedPath}`);
    }
    const { page } = await t.openFolder(t.repo.wipe);

    await t.step('remove a dirty worktree: the confirmation lists what is backed up', page, async () => {
        await statusItem(page, (s) => s.includes('feature/wipe'), 'the wtls status-bar item');
        await runCommand(page, 'Focus on Worktrees View');
        writeFileSync(join(spawnedPath, 'notes.txt'), 'unsaved thoughts\n');
        await waitForViewRow(page, (r) => /agent\/wipe-tests.*●1/.test(r), 'agent/wipe-tests with one change');
        await runCommand(page, 'Worktrees: Remove Worktree…');
        await pickQuickItem(page, 'agent/wipe-tests');
        const dialog = page.locator(sel.dialog);
        await dialog.waitFor({ state: 'visible', timeout: TIMEOUT });
        const text = (await dialog.innerText()).replace(/\s+/g, ' ');
        if (!text.includes('notes.txt')) {
            throw new Error(`the confirmation does not list notes.txt: ${text}`);
        }
        await t.screenshot(page, 'remove-confirmation');
        await dialog.locator('.monaco-button', { hasText: /^Remove$/ }).click();
        await waitUntil(() => !existsSync(spawnedPath), `${spawnedPath} to be removed`);
        const backups = git(t.repo.main, 'for-each-ref', '--format=%(refname)', 'refs/wtls/backup/').trim();
        if (!backups) {
            throw new Error('no backup ref was made for the uncommitted work');
        }
        await waitForNoViewRow(page, (r) => r.includes('agent/wipe-tests'), 'agent/wipe-tests');
        return `dialog: ${JSON.stringify(text.slice(0, 200))}; backup ${backups}`;
    });
}
