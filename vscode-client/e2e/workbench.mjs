// Driving the VS Code workbench in the browser: waiting for text, the command palette, quick
// picks, notifications, the status bar, the Worktrees view, windows and trust dialogs. Knows
// nothing of repositories or code-server processes (fixtures.mjs) or of scenarios.

import { chromium } from 'playwright-core';
import { TIMEOUT, log } from './common.mjs';

export const sel = {
    workbench: '.monaco-workbench',
    statusItems: '.statusbar-item',
    wtlsStatus: '.statusbar-item[id$="wtls.status"]',
    quickInput: '.quick-input-widget',
    quickInputBox: '.quick-input-widget input.input',
    quickInputRows: '.quick-input-widget .quick-input-list .monaco-list-row',
    quickInputMessage: '.quick-input-widget .quick-input-message',
    notifications: '.notifications-toasts .notification-list-item-message',
    notificationCenter: '.notifications-center .notification-list-item-message',
    terminalRows: '.terminal-wrapper .xterm-rows',
    problemsRows: '.markers-panel .monaco-list-row',
    editorLines: '.editor-instance .monaco-editor .view-lines',
    actionRows: '.action-widget .monaco-list-row',
    dialog: '.monaco-dialog-box',
};

/** Headless Chromium with the flags that keep it off the (closed) network. */
export function launchBrowser(executablePath) {
    return chromium.launch({
        executablePath,
        headless: true,
        args: [
            '--no-sandbox',
            '--disable-gpu',
            '--disable-quic',
            '--no-first-run',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
            '--disable-dev-shm-usage',
        ],
    });
}

/**
 * A fresh browser context (its own windows, storage and cookies) with `pages`, every page it
 * opens in order: a window opened by the extension (`vscode.openFolder` with forceNewWindow)
 * arrives as a new page.
 */
export async function newContext(browser) {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const pages = [];
    context.on('page', (p) => pages.push(p));
    return { context, pages };
}

/** Resolves with the page opened after `pages` held `count` pages, once its workbench is up. */
export async function waitForNewWindow(page, pages, count) {
    const deadline = Date.now() + TIMEOUT;
    while (pages.length === count && Date.now() < deadline) {
        await page.waitForTimeout(250);
    }
    if (pages.length === count) {
        throw new Error(`no new window opened; quick input: ${await quickInputText(page)}`);
    }
    return pages.at(-1);
}

export async function waitForText(page, selector, predicate, what, timeout = TIMEOUT) {
    const deadline = Date.now() + timeout;
    let last = [];
    while (Date.now() < deadline) {
        // The editor renders spaces as no-break spaces.
        last = (await page.locator(selector).allInnerTexts().catch(() => [])).map((t) => t.replace(/\u00a0/g, ' '));
        const hit = last.find((t) => predicate(t));
        if (hit !== undefined) {
            return hit;
        }
        await page.waitForTimeout(250);
    }
    throw new Error(`timed out waiting for ${what}; saw: ${JSON.stringify(last.slice(0, 30))}`);
}

/**
 * Waits for a notification whose text matches `pattern`. A toast can be hidden before it is
 * read (another one replaces it, the window lost focus); the notification center keeps every
 * message, so after a few seconds without the toast, open the center and read it there.
 */
export async function waitForNotification(page, pattern, what) {
    const start = Date.now();
    let centerOpened = false;
    let seen = [];
    while (Date.now() - start < TIMEOUT) {
        seen = [];
        for (const selector of [sel.notifications, sel.notificationCenter]) {
            seen.push(...(await page.locator(selector).allInnerTexts().catch(() => [])));
        }
        const hit = seen.find((t) => pattern.test(t.replace(/\u00a0/g, ' ')));
        if (hit !== undefined) {
            return hit;
        }
        if (!centerOpened && Date.now() - start > 8000) {
            log(`no toast for ${what} yet; reading the notification center`);
            await runCommand(page, 'Notifications: Show Notifications').catch(() => {});
            centerOpened = true;
        }
        await page.waitForTimeout(250);
    }
    throw new Error(`timed out waiting for ${what}; saw: ${JSON.stringify(seen.slice(0, 10))}`);
}

export async function openPalette(page) {
    const input = page.locator(sel.quickInputBox);
    for (const keys of ['F1', 'Control+Shift+P', 'F1']) {
        await page.keyboard.press(keys);
        try {
            await input.waitFor({ state: 'visible', timeout: 5000 });
            return input;
        } catch {
            // The workbench may not have had focus yet: click it and try the other binding.
            await page.locator(sel.workbench).click({ position: { x: 600, y: 300 } }).catch(() => {});
        }
    }
    throw new Error('the command palette did not open');
}

/** Runs a palette command by its title. */
export async function runCommand(page, title) {
    await pickFromPalette(page, `>${title}`, title);
}

/** Opens a workspace file by name through Quick Open. */
export async function quickOpen(page, fileName) {
    await pickFromPalette(page, fileName, fileName);
}

/** Types `query` into the palette and accepts the first row containing `expect`. */
export async function pickFromPalette(page, query, expect) {
    // The palette closes when something else takes focus (a notification, another window
    // loading); then open it again.
    for (let attempt = 1; ; attempt++) {
        try {
            const input = await openPalette(page);
            await input.fill(query, { timeout: 5000 });
            const row = page.locator(sel.quickInputRows).filter({ hasText: expect }).first();
            await row.waitFor({ state: 'visible', timeout: attempt < 3 ? 10_000 : TIMEOUT });
            await input.press('Enter', { timeout: 5000 });
            return;
        } catch (err) {
            if (attempt >= 3) {
                throw err;
            }
            log(`palette: retrying ${JSON.stringify(query)} (${err instanceof Error ? err.message.split('\n')[0] : err})`);
            await page.keyboard.press('Escape').catch(() => {});
        }
    }
}

export async function quickInputText(page) {
    return (await page.locator(sel.quickInput).innerText().catch(() => '')).replace(/\s+/g, ' ');
}

/** Waits until the quick input's text (title, prompt, items) matches the regexp source `re`. */
export async function waitForQuickInput(page, re) {
    await page.waitForFunction((src) => new RegExp(src, 'i').test(document.querySelector('.quick-input-widget')?.textContent ?? ''), re, {
        timeout: TIMEOUT,
    });
}

export async function waitForWorkbench(page) {
    await page.locator(sel.workbench).waitFor({ state: 'visible', timeout: TIMEOUT });
}

/**
 * Opens a .code-workspace URL and waits until its folders are loaded. Under load, code-server
 * now and then brings the workbench up on the workspace with no folders at all ("You have not
 * yet added a folder to the workspace"): nothing of ours runs in such a window, so reload it, as
 * a user would, and say so in the log.
 */
export async function openWorkspace(page, address) {
    await page.goto(address);
    for (let attempt = 1; ; attempt++) {
        await waitForWorkbench(page);
        const empty = page.getByText('You have not yet added a folder to the workspace');
        const loaded = page.locator('.explorer-folders-view .monaco-list-row').first();
        const which = await Promise.race([
            empty.waitFor({ state: 'visible', timeout: TIMEOUT }).then(() => 'empty'),
            loaded.waitFor({ state: 'visible', timeout: TIMEOUT }).then(() => 'loaded'),
        ]).catch(() => 'timeout');
        if (which !== 'empty') {
            return attempt;
        }
        if (attempt >= 3) {
            throw new Error(`code-server opened ${address} with no folders ${attempt} times`);
        }
        log(`code-server opened the workspace with no folders (attempt ${attempt}); reloading the page`);
        await page.reload();
    }
}

/** Text of the extension's own status-bar item (its DOM id ends with the item id). */
export async function statusItem(page, predicate, what) {
    return waitForText(page, sel.wtlsStatus, predicate, what);
}

/** Hovers the extension's status item until its tooltip satisfies `predicate`. */
export async function statusItemTooltip(page, predicate) {
    const deadline = Date.now() + TIMEOUT;
    let last = '';
    while (Date.now() < deadline) {
        await page.mouse.move(0, 0);
        await page.locator(sel.wtlsStatus).hover();
        last = await page
            .locator('.monaco-hover')
            .first()
            .innerText({ timeout: 3000 })
            .catch(() => '');
        if (predicate(last)) {
            return last;
        }
        await page.waitForTimeout(500);
    }
    throw new Error(`the status tooltip never matched; last: ${JSON.stringify(last)}`);
}

/** The Worktrees view's pane (in the Source Control side bar). */
export function worktreesPane(page) {
    return page.locator('.pane').filter({ has: page.locator('.pane-header', { hasText: /^Worktrees/i }) });
}

export async function viewRows(page) {
    return worktreesPane(page).locator('.monaco-list-row').allInnerTexts().catch(() => []);
}

export async function waitForViewRow(page, predicate, what) {
    const deadline = Date.now() + TIMEOUT;
    let rows = [];
    while (Date.now() < deadline) {
        rows = await viewRows(page);
        if (rows.some(predicate)) {
            return rows;
        }
        await page.waitForTimeout(250);
    }
    throw new Error(`timed out waiting for ${what} in the Worktrees view; rows: ${JSON.stringify(rows)}`);
}

/** Waits until no row of the Worktrees view satisfies `predicate`; returns the rows. */
export async function waitForNoViewRow(page, predicate, what) {
    const deadline = Date.now() + TIMEOUT;
    let rows = await viewRows(page);
    while (rows.some(predicate) && Date.now() < deadline) {
        await page.waitForTimeout(250);
        rows = await viewRows(page);
    }
    if (rows.some(predicate)) {
        throw new Error(`the view still lists ${what}: ${JSON.stringify(rows)}`);
    }
    return rows;
}

/** Narrows the open quick pick to `text` and clicks the row whose label contains it. */
export async function pickQuickItem(page, text) {
    const input = page.locator(sel.quickInputBox);
    await input.waitFor({ state: 'visible', timeout: TIMEOUT });
    await input.fill(text);
    // Match the label itself: a row's description or detail may name other branches.
    const row = page.locator(sel.quickInputRows).filter({ has: page.locator('.label-name', { hasText: text }) }).first();
    await row.waitFor({ state: 'visible', timeout: TIMEOUT });
    await row.click();
}

/** Answers the workspace trust dialog with "No": the window stays in Restricted Mode. */
export async function declineTrust(page) {
    const button = page.locator('.monaco-dialog-box .monaco-button', { hasText: /No, I don.t trust/ });
    await button.waitFor({ state: 'visible', timeout: TIMEOUT });
    await button.click();
    await waitForText(page, sel.statusItems, (t) => /Restricted Mode/i.test(t), 'the Restricted Mode indicator');
}

/**
 * In the open "Spawn Agent Worktree…" name box (already holding an accepted name), goes on:
 * the task prompt `task`, then the default base branch (the first item). Resolves with the
 * new window's page once its workbench is up.
 */
export async function finishSpawn(page, pages, task) {
    const input = page.locator(sel.quickInputBox);
    await input.press('Enter');
    await waitForQuickInput(page, 'task prompt');
    await input.fill(task);
    await input.press('Enter');
    await waitForQuickInput(page, 'base branch');
    const count = pages.length;
    await input.press('Enter'); // the base branch (first item)
    const newPage = await waitForNewWindow(page, pages, count);
    await waitForWorkbench(newPage);
    return newPage;
}

/**
 * Runs "Spawn Agent Worktree…" with `name` and `task`, accepting the default base branch;
 * resolves with the new window's page.
 */
export async function spawnFromPalette(page, pages, name, branch, task) {
    await runCommand(page, 'Worktrees: Spawn Agent Worktree…');
    const input = page.locator(sel.quickInputBox);
    await input.waitFor({ state: 'visible', timeout: TIMEOUT });
    await input.fill(name);
    await waitForText(page, sel.quickInputMessage, (t) => t.includes(branch), `the validation message naming ${branch}`);
    return finishSpawn(page, pages, task);
}

/**
 * Opens the light bulb (Ctrl+.) until the code action whose text holds `title` is offered, and
 * returns its row. `placeCursor()` (optional) runs before each try. The first request can be
 * cancelled while the editor settles, so a try that shows nothing is closed and repeated.
 */
export async function openCodeAction(page, title, placeCursor = async () => {}) {
    const action = page.locator(sel.actionRows, { hasText: title }).first();
    const deadline = Date.now() + TIMEOUT;
    for (;;) {
        await placeCursor();
        await page.keyboard.press('Control+.');
        try {
            await action.waitFor({ state: 'visible', timeout: 4000 });
            return action;
        } catch (err) {
            if (Date.now() > deadline) {
                throw err;
            }
            await page.keyboard.press('Escape');
        }
    }
}
