// A predicted conflict's quick fix opens the predicted merge of the file beside it, as a
// read-only diff with git's conflict markers; the palette command asks which side to merge with.

import { TIMEOUT } from '../common.mjs';
import { writeConflictingEdit } from '../fixtures.mjs';
import { openCodeAction, pickQuickItem, quickOpen, runCommand, sel, statusItem, waitForText } from '../workbench.mjs';

export const name = 'predicted-merge';
export const description = 'Show Predicted Merge: from the quick fix of a predicted conflict and from the palette';

const diffLines = '.monaco-diff-editor .editor.modified .view-lines';

export async function run(t) {
    const { page } = await t.openFolder(t.repo.wipe);

    await t.step('quick fix shows the predicted merge', page, async () => {
        await statusItem(page, (s) => s.includes('feature/wipe'), 'the wtls status-bar item');
        writeConflictingEdit(t.repo);
        await statusItem(page, (s) => /feature\/wipe.*⚠\d/.test(s), 'a ⚠ count in the status bar');
        await quickOpen(page, 'cli.py');
        await waitForText(page, sel.editorLines, (s) => s.includes('USAGE'), 'cli.py in an editor');
        await runCommand(page, 'View: Focus Problems');
        const row = page.locator(sel.problemsRows).filter({ hasText: /feature\/remaining/ }).first();
        await row.waitFor({ state: 'visible', timeout: TIMEOUT });
        // Enter on the problem puts the cursor on the warning's lines, in the editor.
        await openCodeAction(page, 'Show Predicted Merge with feature/remaining', async () => {
            await row.click();
            await page.keyboard.press('Enter');
        });
        const offered = await page.locator(sel.actionRows).allInnerTexts();
        // The only row is focused; Enter applies it (the menu blocks pointer events).
        await page.keyboard.press('Enter');
        const merged = await waitForText(
            page,
            diffLines,
            (s) => s.includes('<<<<<<< feature/wipe') && s.includes('>>>>>>> feature/remaining'),
            'the predicted merge with conflict markers beside cli.py',
        );
        await t.screenshot(page, 'predicted-merge');
        await t.picture(page.locator('.part.editor'), 'predicted-merge');
        return `offered ${JSON.stringify(offered.map((o) => o.trim()))}; merged ${JSON.stringify(merged.replace(/\s+/g, ' ').slice(0, 200))}`;
    });

    await t.step(
        'palette asks which side and shows it',
        page,
        async () => {
            await quickOpen(page, 'cli.py');
            await runCommand(page, 'Worktrees: Show Predicted Merge');
            await pickQuickItem(page, 'main');
            const tab = await waitForText(
                page,
                '.tabs-container .tab',
                (s) => /predicted merge with main \(merges cleanly\)/.test(s),
                'a diff tab for the merge with the base branch',
            );
            return `tab ${JSON.stringify(tab.replace(/\s+/g, ' ').slice(0, 160))}`;
        },
        { needs: ['quick fix shows the predicted merge'] },
    );
}
