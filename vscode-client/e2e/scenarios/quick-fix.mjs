// A file with conflict markers: an error in the Problems panel, and the light bulb's quick fix
// that resolves the block to the current change.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCodeAction, quickOpen, runCommand, sel, statusItem, waitForText } from '../workbench.mjs';

export const name = 'quick-fix';
export const description = 'conflict markers in a file: the error and its quick fix';

export async function run(t) {
    const { page } = await t.openFolder(t.repo.wipe);

    await t.step('conflict block quick fix from the light bulb', page, async () => {
        await statusItem(page, (s) => s.includes('feature/wipe'), 'the wtls status-bar item');
        writeFileSync(join(t.repo.wipe, 'notes.md'), '# notes\n<<<<<<< HEAD\nours line\n=======\ntheirs line\n>>>>>>> feature/remaining\n');
        await quickOpen(page, 'notes.md');
        await waitForText(page, sel.editorLines, (s) => s.includes('ours line'), 'notes.md in an editor');
        await runCommand(page, 'View: Focus Problems');
        await waitForText(page, sel.problemsRows, (s) => /Merge conflict/i.test(s), 'the conflict-marker error');
        await page.locator(sel.editorLines).first().click();
        await page.keyboard.press('Control+Home');
        await page.keyboard.press('ArrowDown');
        const action = await openCodeAction(page, 'Accept current change');
        const offered = await page.locator(sel.actionRows).allInnerTexts();
        await t.screenshot(page, 'quick-fix-menu');
        // The focused first row is "Accept current change"; Enter applies it (a click can
        // land on the editor's hover that overlaps the menu).
        const focused = await page.locator(`${sel.actionRows}.focused`).innerText();
        if (!focused.includes('Accept current change')) {
            await action.hover();
        }
        await page.keyboard.press('Enter');
        const text = await waitForText(
            page,
            sel.editorLines,
            (s) => !s.includes('<<<<<<<') && s.includes('ours line') && !s.includes('theirs line'),
            'the block resolved to the current change',
        );
        return `offered ${JSON.stringify(offered.map((o) => o.trim()))}; buffer ${JSON.stringify(text.replace(/\s+/g, ' ').trim())}`;
    });
}
