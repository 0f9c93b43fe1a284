// "Review Worktree" opens VS Code's multi-file diff of feature/wipe against its merge base with
// main; "Take into Base" puts one file's change into main's folder and "Discard in Worktree"
// (after a modal confirmation) puts another back in the worktree, saved in a backup ref first.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TIMEOUT, waitUntil } from '../common.mjs';
import { git } from '../fixtures.mjs';
import { pickQuickItem, runCommand, sel, statusItem, waitForNotification, waitForText } from '../workbench.mjs';

export const name = 'review';
export const description = 'Review Worktree: the multi-file diff, Take into Base, Discard in Worktree';

export async function run(t) {
    const notes = join(t.repo.wipe, 'notes.md');
    writeFileSync(notes, 'an agent wrote this\n');
    const { page } = await t.openFolder(t.repo.main);

    await t.step('review feature/wipe: the multi-file diff lists its files', page, async () => {
        await statusItem(page, (s) => s.includes('main'), 'the wtls status-bar item');
        await runCommand(page, 'Worktrees: Review Worktree…');
        await pickQuickItem(page, 'feature/wipe');
        const tab = await waitForText(page, '.tabs-container .tab', (s) => /Review feature\/wipe/.test(s), 'the review tab');
        const listed = await waitForText(
            page,
            '.editor-instance',
            (s) => s.includes('cli.py') && s.includes('notes.md'),
            'cli.py and notes.md in the multi-file diff',
        );
        await t.screenshot(page, 'review');
        return `tab ${JSON.stringify(tab.replace(/\s+/g, ' ').slice(0, 120))}; editor ${JSON.stringify(listed.replace(/\s+/g, ' ').slice(0, 200))}`;
    });

    await t.step(
        'take cli.py into base',
        page,
        async () => {
            await runCommand(page, 'Worktrees: Take into Base…');
            await pickQuickItem(page, 'cli.py');
            const note = await waitForNotification(page, /Took cli\.py/, 'the take message');
            await waitUntil(() => readFileSync(join(t.repo.main, 'cli.py'), 'utf8').includes('add|list|done|wipe'), "main's cli.py with the wipe change");
            const status = git(t.repo.main, 'status', '--porcelain').trim();
            if (status !== 'M cli.py') {
                throw new Error(`main should hold cli.py as an unstaged change only: ${JSON.stringify(status)}`);
            }
            return `message ${JSON.stringify(note.slice(0, 160))}`;
        },
        { needs: ['review feature/wipe: the multi-file diff lists its files'] },
    );

    await t.step(
        'discard notes.md in the worktree, after a confirmation, with a backup',
        page,
        async () => {
            await runCommand(page, 'Worktrees: Discard in Worktree…');
            await pickQuickItem(page, 'notes.md');
            const dialog = page.locator(sel.dialog);
            await dialog.waitFor({ state: 'visible', timeout: TIMEOUT });
            const text = (await dialog.innerText()).replace(/\s+/g, ' ');
            if (!text.includes('notes.md') || !text.includes('backup')) {
                throw new Error(`the confirmation does not name notes.md and its backup: ${text}`);
            }
            await dialog.locator('.monaco-button', { hasText: /^Discard$/ }).click();
            const note = await waitForNotification(page, /Discarded .*notes\.md/, 'the discard message');
            await waitUntil(() => !existsSync(notes), `${notes} to be discarded`);
            const backups = git(t.repo.main, 'for-each-ref', '--format=%(refname)', 'refs/wtls/backup/').trim();
            if (!backups.startsWith('refs/wtls/backup/feature/wipe-discard-')) {
                throw new Error(`no backup ref for the discarded file: ${JSON.stringify(backups)}`);
            }
            const saved = git(t.repo.main, 'show', `${backups}:notes.md`);
            if (saved !== 'an agent wrote this\n') {
                throw new Error(`the backup does not hold notes.md: ${JSON.stringify(saved)}`);
            }
            return `dialog ${JSON.stringify(text.slice(0, 160))}; message ${JSON.stringify(note.slice(0, 200))}`;
        },
        { needs: ['review feature/wipe: the multi-file diff lists its files'] },
    );
}
