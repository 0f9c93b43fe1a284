// A multi-root workspace of two repositories' worktrees: one view node per repository, and the
// status bar following the active editor's repository.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openWorkspace, quickOpen, runCommand, statusItem, waitForViewRow, worktreesPane } from '../workbench.mjs';

export const name = 'multi-root';
export const description = 'a workspace with worktrees of two repositories';

export async function run(t) {
    const workspaceFile = join(t.dirs.work, 'two-repos.code-workspace');
    writeFileSync(workspaceFile, JSON.stringify({ folders: [{ path: t.repo.remaining }, { path: t.repo.otherDraft }] }));
    const { context } = await t.newContext();
    const multi = await context.newPage();

    await t.step('multi-root: worktrees of two repositories', multi, async () => {
        // code-server sometimes loads the workspace with no folders: openWorkspace reloads it.
        await openWorkspace(multi, `${t.codeServer.url}/?workspace=${encodeURIComponent(workspaceFile)}`);
        await statusItem(multi, (s) => s.includes('feature/remaining'), "the first folder's worktree in the status bar");
        await runCommand(multi, 'Focus on Worktrees View');
        // One node per repository, each with its worktrees.
        const first = await waitForViewRow(multi, (r) => r.startsWith('notes-app'), 'the second repository');
        if (!first.some((r) => r.startsWith('tasks-app')) || !first.some((r) => r.includes('feature/remaining'))) {
            throw new Error(`the first repository is missing: ${JSON.stringify(first)}`);
        }
        // The list is virtual and the pane small: fold the first repository to see the second's.
        await worktreesPane(multi).locator('.monaco-list-row', { hasText: /^tasks-app/ }).first().click();
        const rows = await waitForViewRow(multi, (r) => r.includes('feature/draft'), "the second repository's worktrees");
        // The status bar follows the active editor's repository.
        await quickOpen(multi, 'draft.md');
        const text = await statusItem(multi, (s) => /feature\/draft\s+↑1/.test(s), 'feature/draft in the status bar');
        return `view ${JSON.stringify([...first, ...rows])}; status with draft.md open ${JSON.stringify(text.trim())}`;
    });
}
