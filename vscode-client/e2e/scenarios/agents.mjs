// Agents in the status bar and the notifications: this window's agent state shows beside the
// branch, and another worktree's agent that starts waiting raises "<branch> is waiting: …" with
// Open Window, which opens that worktree. States are set as any agent would (`wtls agent set`).

import { TIMEOUT } from '../common.mjs';
import { runCommand, statusItem, waitForNewWindow, waitForNotification, waitForViewRow, worktreesPane } from '../workbench.mjs';

export const name = 'agents';
export const description = 'agent state in the status bar and view; "is waiting" notification with Open Window';

export async function run(t) {
    const { page, pages } = await t.openFolder(t.repo.wipe);

    await t.step('this window shows its agent working', page, async () => {
        await statusItem(page, (s) => s.includes('feature/wipe'), 'the wtls status-bar item');
        t.sandbox.wtls(t.repo.wipe, 'agent', 'set', 'working', '--tool', 'claude', '--session', 'e2e-1');
        const text = await statusItem(page, (s) => /feature\/wipe[\s\S]*working/.test(s), 'the agent state in the status bar');
        return JSON.stringify(text.trim());
    });

    await t.step('another agent waiting: notification, view row, Open Window', page, async () => {
        const before = pages.length;
        t.sandbox.wtls(t.repo.remaining, 'agent', 'set', 'waiting', '--tool', 'claude', '--message', 'Allow Bash: npm test?');
        const note = await waitForNotification(page, /feature\/remaining is waiting: Allow Bash: npm test\?/, 'the waiting notification');
        await runCommand(page, 'Focus on Worktrees View');
        const rows = await waitForViewRow(page, (r) => r.includes('feature/remaining'), 'feature/remaining in the view');
        // The view shows a waiting agent with the bell icon on its worktree's row.
        await worktreesPane(page)
            .locator('.monaco-list-row', { hasText: 'feature/remaining' })
            .locator('.codicon-bell-dot')
            .first()
            .waitFor({ state: 'visible', timeout: TIMEOUT });
        await t.picture(page.locator('.part.statusbar'), 'status-bar-agent');
        const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'is waiting' }).first();
        await toast.locator('.monaco-button', { hasText: 'Open Window' }).click();
        const opened = await waitForNewWindow(page, pages, before);
        await opened.waitForLoadState();
        const url = decodeURIComponent(opened.url());
        if (!url.includes('tasks-app-remaining')) {
            throw new Error(`Open Window opened ${url}`);
        }
        return `${JSON.stringify(note)}; row ${JSON.stringify(rows.find((r) => r.includes('feature/remaining')))}; opened ${url}`;
    }, { needs: ['this window shows its agent working'] });
}
