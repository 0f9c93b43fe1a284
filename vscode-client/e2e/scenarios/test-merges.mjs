// A semantic conflict: feature/wipe renames a function (committed), feature/remaining adds a
// new caller of the old name (uncommitted). Both merge cleanly as text; "Test Merges" with a
// typed test command names both branches and puts an Error in the Problems panel. Then "Land
// Worktrees…" lands feature/wipe (the one with commits) on main after its tests pass.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TIMEOUT } from '../common.mjs';
import { git } from '../fixtures.mjs';
import { quickInputText, runCommand, sel, statusItem, waitForNotification, waitForQuickInput, waitForText } from '../workbench.mjs';

export const name = 'test-merges';
export const description = 'Test Merges: a rename vs a new caller of the old name, both branches named, an Error in Problems; Land Worktrees…';

const LIB = 'def total(items):\n    return sum(items)\n';
const USE_LIB = 'import lib\n\nassert lib.total([1, 2]) == 3\n';
// Runs every use_*.py; a failing one fails the check.
const CHECK = 'import glob\nimport runpy\n\nfor path in sorted(glob.glob("use_*.py")):\n    runpy.run_path(path)\n';

/** lib.py and check.py on main (both worktrees take them), the rename in wipe, the new caller in remaining. */
function writeSemanticConflict(repo) {
    writeFileSync(join(repo.main, 'lib.py'), LIB);
    writeFileSync(join(repo.main, 'use_lib.py'), USE_LIB);
    writeFileSync(join(repo.main, 'check.py'), CHECK);
    git(repo.main, 'add', '--', 'lib.py', 'use_lib.py', 'check.py');
    git(repo.main, 'commit', '-q', '-m', 'Add lib and its check');
    git(repo.remaining, 'merge', '-q', '--ff-only', 'main');
    git(repo.wipe, 'merge', '-q', '--no-edit', 'main');
    writeFileSync(join(repo.wipe, 'lib.py'), LIB.replace('def total(', 'def sum_all('));
    writeFileSync(join(repo.wipe, 'use_lib.py'), USE_LIB.replace('lib.total(', 'lib.sum_all('));
    git(repo.wipe, 'commit', '-q', '-am', 'Rename total to sum_all');
    writeFileSync(join(repo.remaining, 'use_report.py'), 'import lib\n\nprint("total", lib.total([2]))\n');
}

export async function run(t) {
    writeSemanticConflict(t.repo);
    const { page } = await t.openFolder(t.repo.remaining);

    const tested = 'Test Merges names both branches and shows an Error in Problems';
    await t.step(tested, page, async () => {
        await statusItem(page, (s) => s.includes('feature/remaining'), 'the wtls status-bar item');
        await runCommand(page, 'Worktrees: Test Merges');
        // The project has no `test` in .wtls.toml: the command asks for one.
        await waitForQuickInput(page, 'command that runs your tests');
        const input = page.locator(sel.quickInputBox);
        await input.fill('python3 check.py', { timeout: TIMEOUT });
        await input.press('Enter');
        const note = await waitForNotification(
            page,
            /(feature\/wipe.*feature\/remaining|feature\/remaining.*feature\/wipe).*fail together/,
            'the Test Merges summary naming both branches',
        );
        await runCommand(page, 'View: Focus Problems');
        const row = await waitForText(
            page,
            sel.problemsRows,
            (s) => /feature\/wipe/.test(s) && /check\.py/.test(s),
            'a semantic-conflict problem naming feature/wipe and the command',
        );
        const errors = await page.locator(sel.problemsRows).filter({ hasText: /feature\/wipe/ }).locator('.codicon-error').count();
        if (errors === 0) {
            throw new Error(`the problem naming feature/wipe is not an Error: ${JSON.stringify(row)}`);
        }
        return `${JSON.stringify(note)}; problem ${JSON.stringify(row.replace(/\s+/g, ' ').slice(0, 200))}`;
    });

    await t.step(
        'Land Worktrees… lands feature/wipe on main once its tests pass',
        page,
        async () => {
            await runCommand(page, 'Worktrees: Land Worktrees…');
            // Every worktree with commits to land is picked: accept them.
            await waitForQuickInput(page, 'Land Worktrees: merge each');
            const picked = await quickInputText(page);
            await page.keyboard.press('Enter');
            await waitForQuickInput(page, 'Land Worktrees: after landing');
            await page.keyboard.press('Enter'); // Keep the worktrees
            await waitForQuickInput(page, 'command that runs your tests');
            const input = page.locator(sel.quickInputBox);
            await input.fill('python3 check.py', { timeout: TIMEOUT });
            await input.press('Enter');
            const note = await waitForNotification(page, /landed feature\/wipe into main/, 'the Land Worktrees outcome');
            const main = git(t.repo.main, 'rev-parse', 'main').trim();
            const wipe = git(t.repo.wipe, 'rev-parse', 'HEAD').trim();
            if (main !== wipe) {
                throw new Error(`main is at ${main}, not at feature/wipe's ${wipe}`);
            }
            if (!readFileSync(join(t.repo.main, 'lib.py'), 'utf8').includes('def sum_all(')) {
                throw new Error('the main worktree was not brought along to the landed commit');
            }
            return `picked ${JSON.stringify(picked.slice(0, 160))}; ${JSON.stringify(note)}`;
        },
        { needs: [tested] },
    );
}
