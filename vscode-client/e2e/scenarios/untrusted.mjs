// Workspace Trust on and declined (Restricted Mode): worktree state and diagnostics still work,
// and a spawn makes the worktree but runs neither its setup nor the agent.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_MARKER, waitForLog, writeConflictingEdit } from '../fixtures.mjs';
import { declineTrust, runCommand, sel, spawnFromPalette, statusItem, waitForText } from '../workbench.mjs';

export const name = 'untrusted';
export const description = 'Restricted Mode: state and diagnostics work; spawn runs no setup and no agent';

export async function run(t) {
    // The conflict that the Problems panel must show even in Restricted Mode.
    writeConflictingEdit(t.repo);
    const { page, pages } = await t.openFolder(t.repo.remaining, { trust: true });

    await t.step('untrusted: state and diagnostics work in Restricted Mode', page, async () => {
        await declineTrust(page);
        const text = await statusItem(page, (s) => s.includes('feature/remaining'), 'the status item in Restricted Mode');
        await runCommand(page, 'View: Focus Problems');
        const row = await waitForText(
            page,
            sel.problemsRows,
            (s) => /feature\/wipe/.test(s) && /conflict/i.test(s),
            'the predicted conflict with feature/wipe',
        );
        return `status ${JSON.stringify(text.trim())}; problem ${JSON.stringify(row.replace(/\s+/g, ' ').slice(0, 120))}`;
    });

    const spawned = join(t.dirs.work, 'tasks-app-untrusted-task');
    let newPage;
    await t.step(
        'untrusted: spawn runs neither setup nor the agent',
        () => newPage ?? page,
        async () => {
            // Also when the previous step failed: the trust dialog must be answered first.
            if (!(await page.locator(sel.statusItems, { hasText: /Restricted Mode/i }).count())) {
                await declineTrust(page);
            }
            await statusItem(page, (s) => s.includes('feature/remaining'), 'the status item in Restricted Mode');
            newPage = await spawnFromPalette(page, pages, 'untrusted task', 'agent/untrusted-task', 'Never run me');
            await declineTrust(newPage);
            if (!existsSync(join(spawned, 'cli.py'))) {
                throw new Error(`${spawned} was not created`);
            }
            if (existsSync(join(spawned, 'setup-ran'))) {
                throw new Error('the setup command ran in an untrusted workspace');
            }
            const info = JSON.parse(readFileSync(join(spawned, '.wtls', 'spawn.json'), 'utf8'));
            if (!info.promptFile) {
                throw new Error(`spawn.json has no promptFile: ${JSON.stringify(info)}`);
            }
            await statusItem(newPage, (s) => s.includes('agent/untrusted-task'), 'the new window status item');
            await waitForLog(
                t.dirs.userData,
                (s) => s.includes('Not starting the agent of agent/untrusted-task: this workspace is not trusted.'),
                'the agent refusal in the new window log',
                '',
            );
            const terminal = (await newPage.locator(sel.terminalRows).allInnerTexts().catch(() => [])).join('\n');
            if (terminal.includes(AGENT_MARKER)) {
                throw new Error(`the agent ran: ${terminal}`);
            }
            const notes = await page.locator(sel.notifications).allInnerTexts().catch(() => []);
            return `no setup-ran, no agent; notifications ${JSON.stringify(notes)}`;
        },
    );
}
