// A conflicting edit on disk in feature/remaining shows in the feature/wipe window: a ⚠ count
// in the status bar, a warning in the Problems panel, and the "Check Conflicts" summary.

import { writeConflictingEdit } from '../fixtures.mjs';
import { runCommand, sel, statusItem, waitForNotification, waitForText } from '../workbench.mjs';

export const name = 'predicted-conflict';
export const description = 'a conflicting edit in another worktree: status ⚠, Problems panel, Check Conflicts';

export async function run(t) {
    const { page } = await t.openFolder(t.repo.wipe);

    await t.step('conflicting edit shows in the Problems panel', page, async () => {
        await statusItem(page, (s) => s.includes('feature/wipe'), 'the wtls status-bar item');
        // feature/remaining edits the same usage line as feature/wipe's commit (uncommitted).
        writeConflictingEdit(t.repo);
        const text = await statusItem(page, (s) => /feature\/wipe.*⚠\d/.test(s), 'a ⚠ count in the status bar');
        // "Check Conflicts" runs the analysis now and focuses the Problems panel.
        await runCommand(page, 'Worktrees: Check Conflicts');
        const row = await waitForText(
            page,
            sel.problemsRows,
            (s) => /feature\/remaining/.test(s) && /conflict/i.test(s),
            'a predicted-conflict problem naming feature/remaining',
        );
        const note = await waitForNotification(page, /predicted conflict/, 'the Check Conflicts summary');
        await t.picture(page.locator('.part.panel'), 'problems-predicted-conflict');
        await t.picture(page.locator('.part.statusbar'), 'status-bar');
        return `status ${JSON.stringify(text.trim())}; problem ${JSON.stringify(row.replace(/\s+/g, ' ').slice(0, 160))}; ${JSON.stringify(note)}`;
    });
}
