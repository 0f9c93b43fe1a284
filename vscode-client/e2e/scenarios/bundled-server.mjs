// The .vsix carries its server: on a machine without wtls (no setting, nothing on PATH), the
// extension runs the bundled server with a Python >= 3.11 and the window works as usual.

import { waitForLog } from '../fixtures.mjs';
import { statusItem } from '../workbench.mjs';

export const name = 'bundled-server';
export const description = 'no wtls installed: the server bundled in the .vsix runs';

export async function run(t) {
    const dropped = t.sandbox.withoutInstalledServer();
    const { page } = await t.openFolder(t.repo.wipe);

    await t.step('the bundled server starts and reports this worktree', page, async () => {
        const text = await statusItem(page, (s) => s.includes('feature/wipe'), 'the wtls status-bar item');
        const logText = await waitForLog(t.dirs.userData, (s) => s.includes('The wtls server is running.'), 'the server running');
        const started = logText.split('\n').find((l) => l.includes('Starting the wtls server'));
        if (!started || !started.includes('(bundled): WTLS_BUNDLED_LIBS=')) {
            throw new Error(`the server did not come from the .vsix: ${JSON.stringify(started)}`);
        }
        return `PATH without ${JSON.stringify(dropped)}; ${JSON.stringify(started.slice(0, 160))}; status ${JSON.stringify(text.trim())}`;
    });
}
