// The wtls server killed under the extension: it restarts (logged in the wtls output channel),
// the status bar comes back, and no notification pops up.

import { waitUntil } from '../common.mjs';
import { serverPids, waitForLog } from '../fixtures.mjs';
import { sel, statusItem } from '../workbench.mjs';

export const name = 'restart';
export const description = 'the server killed: restarted without a pop-up';

export async function run(t) {
    const { page, pid } = await t.openFolder(t.repo.wipe);
    const { wtls } = t.tools;

    await t.step('server restarts after a crash, without a pop-up', page, async () => {
        await statusItem(page, (s) => s.includes('feature/wipe'), 'the wtls status-bar item');
        const victims = serverPids(pid, wtls, t.repo.wipe);
        if (victims.length !== 1) {
            throw new Error(`expected one wtls server for ${t.repo.wipe}, found ${JSON.stringify(victims)}`);
        }
        process.kill(victims[0], 'SIGKILL');
        const logText = await waitForLog(
            t.dirs.userData,
            (s) => /stopped \(signal SIGKILL[^)]*\); restarting in 1 s \(attempt 1 of 6\)/.test(s) && /is running[\s\S]*restarting in[\s\S]*is running/.test(s),
            'the restart in the wtls output channel',
        );
        const text = await statusItem(page, (s) => s.includes('feature/wipe'), 'the status item after the restart');
        let after = [];
        await waitUntil(
            () => {
                after = serverPids(pid, wtls, t.repo.wipe);
                return after.length === 1 && after[0] !== victims[0];
            },
            () => `one new server process (last seen: ${JSON.stringify(after)})`,
        );
        const toasts = await page.locator(sel.notifications).allInnerTexts().catch(() => []);
        if (toasts.some((s) => /wtls server/i.test(s))) {
            throw new Error(`a crash notification popped up: ${JSON.stringify(toasts)}`);
        }
        const line = logText.split('\n').find((l) => l.includes('restarting in')) ?? '';
        return `killed pid ${victims[0]}, new pid ${after[0]}; status ${JSON.stringify(text.trim())}; log: ${line.trim()}`;
    });
}
