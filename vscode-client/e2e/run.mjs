#!/usr/bin/env node
// End-to-end test of the wtls extension in a real VS Code workbench: code-server serves it,
// Debian's Chromium (driven by playwright-core, headless) is the browser.
//
// On throwaway repositories (the course's tasks-app with worktrees feature/wipe and
// feature/remaining, plus notes-app with feature/draft) it checks, in the feature/wipe window:
// the status-bar text and tooltip; the Worktrees view; "Spawn Agent Worktree…" from the
// palette (live name validation, the new worktree on disk with its setup run, a new window
// whose terminal runs the agent command, the new node in the view); a conflicting edit on disk
// in feature/remaining as a warning in the Problems panel ("Check Conflicts"); the quick fix of
// a conflict block from the light bulb; a restart after the server is killed, without a
// pop-up; lock/unlock, remove (modal confirmation listing what is backed up) and merge from
// the palette; a multi-root workspace of two repositories. Then, with Workspace Trust on and
// declined: state and diagnostics still work, and spawn runs neither setup nor the agent.
//
// A screenshot of each step goes to $WTLS_E2E_ARTIFACTS (default: <repo>/artifacts/e2e), with
// code-server's and the extension's logs. Exits 0 when every step passed; the last line is
// "e2e: N passed, N failed".
//
// Environment: CODE_SERVER (code-server executable; default: the one .ci/vscode-setup.sh
// installs), WTLS_SERVER (the `wtls` executable; default <repo>/.venv/bin/wtls, else PATH),
// CHROMIUM (default: `chromium` on PATH), WTLS_E2E_VSIX (use this .vsix instead of building
// one), WTLS_E2E_KEEP=1 (keep the temp dir), WTLS_E2E_TIMEOUT_MS (per wait, default 60000),
// WTLS_E2E_ONLY=<regexp> (run only the matching steps, for debugging; later steps may depend
// on earlier ones).

import { execFileSync, spawn } from 'node:child_process';
import {
    existsSync,
    mkdirSync,
    mkdtempSync,
    readdirSync,
    readFileSync,
    readlinkSync,
    rmSync,
    statSync,
    writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const CLIENT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const REPO_ROOT = resolve(CLIENT_DIR, '..');
const ARTIFACTS = resolve(process.env.WTLS_E2E_ARTIFACTS ?? join(REPO_ROOT, 'artifacts', 'e2e'));
const TIMEOUT = Number(process.env.WTLS_E2E_TIMEOUT_MS ?? 60_000);
const CODE_SERVER_VERSION = '4.100.3';
const started = Date.now();

function log(message) {
    const s = ((Date.now() - started) / 1000).toFixed(1).padStart(5);
    console.log(`[e2e ${s}s] ${message}`);
}

function which(name) {
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
        const candidate = join(dir, name);
        if (dir && existsSync(candidate) && statSync(candidate).isFile()) {
            return candidate;
        }
    }
    return undefined;
}

function need(path, what) {
    if (!path || !existsSync(path)) {
        throw new Error(`${what} not found${path ? ` at ${path}` : ''}; run .ci/vscode-setup.sh`);
    }
    return path;
}

function codeServerPath() {
    if (process.env.CODE_SERVER) {
        return need(process.env.CODE_SERVER, 'code-server (CODE_SERVER)');
    }
    const cache = process.env.WTLS_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'wtls-ci');
    const cached = join(cache, `code-server-${CODE_SERVER_VERSION}`, 'node_modules', '.bin', 'code-server');
    return existsSync(cached) ? cached : need(which('code-server'), 'code-server');
}

function serverPath() {
    if (process.env.WTLS_SERVER) {
        return need(process.env.WTLS_SERVER, 'the wtls server (WTLS_SERVER)');
    }
    const venv = join(REPO_ROOT, '.venv', 'bin', 'wtls');
    return existsSync(venv) ? venv : need(which('wtls'), 'the wtls server (wtls on PATH)');
}

/** Builds the .vsix into `outDir` (not the checkout, which a developer may be packaging too). */
function buildVsix(outDir) {
    if (process.env.WTLS_E2E_VSIX) {
        return need(resolve(process.env.WTLS_E2E_VSIX), 'WTLS_E2E_VSIX');
    }
    log('building the .vsix (vsce package, which runs the production esbuild)');
    const out = join(outDir, 'wtls.vsix');
    execFileSync(join(CLIENT_DIR, 'node_modules', '.bin', 'vsce'), ['package', '--no-dependencies', '--out', out], {
        cwd: CLIENT_DIR,
        stdio: ['ignore', 'ignore', 'inherit'],
    });
    return need(out, 'the built .vsix');
}

function freePort() {
    return new Promise((res, rej) => {
        const srv = createServer();
        srv.once('error', rej);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => res(port));
        });
    });
}

// --- the test repository -----------------------------------------------------------------
const GIT_ENV = {
    // The machine's own git config (signing, hooks, templates) stays out of the test repository.
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_AUTHOR_NAME: 'e2e',
    GIT_AUTHOR_EMAIL: 'e2e@example.invalid',
    GIT_COMMITTER_NAME: 'e2e',
    GIT_COMMITTER_EMAIL: 'e2e@example.invalid',
    GIT_AUTHOR_DATE: '2026-01-01T12:00:00Z',
    GIT_COMMITTER_DATE: '2026-01-01T12:00:00Z',
};

function git(cwd, ...args) {
    return execFileSync('git', args, { cwd, env: { ...process.env, ...GIT_ENV }, encoding: 'utf8' });
}

const CLI_PY = `"""tasks-app: a tiny task list."""
import sys

USAGE = "usage: tasks.py add|list|done"


def main(argv):
    if len(argv) < 2:
        print(USAGE)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
`;

/** tasks-app (main), tasks-app-wipe (feature/wipe, one commit ahead) and tasks-app-remaining. */
function makeRepository(work) {
    const main = join(work, 'tasks-app');
    mkdirSync(main, { recursive: true });
    git(main, 'init', '-q', '-b', 'main');
    writeFileSync(join(main, 'cli.py'), CLI_PY);
    writeFileSync(join(main, 'README.md'), '# tasks-app\n');
    writeFileSync(join(main, '.gitignore'), '.vscode/\nsetup-ran\n');
    // The spawn recipe: its setup command must run only in a trusted workspace.
    writeFileSync(join(main, '.wtls.toml'), 'setup = ["touch setup-ran"]\n');
    git(main, 'add', '-A');
    git(main, 'commit', '-q', '-m', 'Add tasks-app');
    const wipe = join(work, 'tasks-app-wipe');
    const remaining = join(work, 'tasks-app-remaining');
    git(main, 'worktree', 'add', '-q', '-b', 'feature/wipe', wipe);
    git(main, 'worktree', 'add', '-q', '-b', 'feature/remaining', remaining);
    writeFileSync(join(wipe, 'cli.py'), CLI_PY.replace('add|list|done"', 'add|list|done|wipe"'));
    git(wipe, 'commit', '-q', '-am', 'Add wipe command');
    // A second repository, for the multi-root workspace: notes-app and its worktree on feature/draft.
    const other = join(work, 'notes-app');
    mkdirSync(other, { recursive: true });
    git(other, 'init', '-q', '-b', 'main');
    writeFileSync(join(other, 'draft.md'), '# draft\n');
    git(other, 'add', '-A');
    git(other, 'commit', '-q', '-m', 'Add notes-app');
    const otherDraft = join(work, 'notes-app-draft');
    git(other, 'worktree', 'add', '-q', '-b', 'feature/draft', otherDraft);
    writeFileSync(join(otherDraft, 'draft.md'), '# draft\n\nmore\n');
    git(otherDraft, 'commit', '-q', '-am', 'More draft');
    return { main, wipe, remaining, other, otherDraft };
}

// --- the workbench -------------------------------------------------------------------------
const sel = {
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
};

async function waitForText(page, selector, predicate, what, timeout = TIMEOUT) {
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
async function waitForNotification(page, pattern, what) {
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

async function openPalette(page) {
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
async function runCommand(page, title) {
    await pickFromPalette(page, `>${title}`, title);
}

/** Opens a workspace file by name through Quick Open. */
async function quickOpen(page, fileName) {
    await pickFromPalette(page, fileName, fileName);
}

/** Types `query` into the palette and accepts the first row containing `expect`. */
async function pickFromPalette(page, query, expect) {
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

async function quickInputText(page) {
    return (await page.locator(sel.quickInput).innerText().catch(() => '')).replace(/\s+/g, ' ');
}

async function waitForWorkbench(page) {
    await page.locator(sel.workbench).waitFor({ state: 'visible', timeout: TIMEOUT });
}

/**
 * Opens a .code-workspace URL and waits until its folders are loaded. Under load, code-server
 * now and then brings the workbench up on the workspace with no folders at all ("You have not
 * yet added a folder to the workspace"): nothing of ours runs in such a window, so reload it, as
 * a user would, and say so in the log.
 */
async function openWorkspace(page, address) {
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
async function statusItem(page, predicate, what) {
    return waitForText(page, sel.wtlsStatus, predicate, what);
}

async function viewRows(page) {
    const pane = page.locator('.pane').filter({ has: page.locator('.pane-header', { hasText: /^Worktrees/i }) });
    return pane.locator('.monaco-list-row').allInnerTexts().catch(() => []);
}

async function waitForViewRow(page, predicate, what) {
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

/** Narrows the open quick pick to `text` and clicks the row whose label contains it. */
async function pickQuickItem(page, text) {
    const input = page.locator(sel.quickInputBox);
    await input.waitFor({ state: 'visible', timeout: TIMEOUT });
    await input.fill(text);
    // Match the label itself: a row's description or detail may name other branches.
    const row = page.locator(sel.quickInputRows).filter({ has: page.locator('.label-name', { hasText: text }) }).first();
    await row.waitFor({ state: 'visible', timeout: TIMEOUT });
    await row.click();
}

/** Polls `predicate` (a synchronous check of the disk or git) until it holds. */
async function waitUntil(predicate, what) {
    const deadline = Date.now() + TIMEOUT;
    while (Date.now() < deadline) {
        if (predicate()) {
            return;
        }
        await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`timed out waiting for ${what}`);
}

/** Hovers the extension's status item until its tooltip satisfies `predicate`. */
async function statusItemTooltip(page, predicate) {
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

/** Answers the workspace trust dialog with "No": the window stays in Restricted Mode. */
async function declineTrust(page) {
    const button = page.locator('.monaco-dialog-box .monaco-button', { hasText: /No, I don.t trust/ });
    await button.waitFor({ state: 'visible', timeout: TIMEOUT });
    await button.click();
    await waitForText(page, sel.statusItems, (t) => /Restricted Mode/i.test(t), 'the Restricted Mode indicator');
}

/**
 * Runs "Spawn Agent Worktree…" with `name` and `task`, accepting the default base branch;
 * resolves with the new window's page.
 */
async function spawnFromPalette(page, pages, name, branch, task) {
    await runCommand(page, 'Worktrees: Spawn Agent Worktree…');
    const input = page.locator(sel.quickInputBox);
    await input.waitFor({ state: 'visible', timeout: TIMEOUT });
    await input.fill(name);
    await waitForText(page, sel.quickInputMessage, (t) => t.includes(branch), `the validation message naming ${branch}`);
    await input.press('Enter');
    const titled = (re) =>
        page.waitForFunction((src) => new RegExp(src, 'i').test(document.querySelector('.quick-input-widget')?.textContent ?? ''), re, {
            timeout: TIMEOUT,
        });
    await titled('task prompt');
    await input.fill(task);
    await input.press('Enter');
    await titled('base branch');
    const pageCount = pages.length;
    await input.press('Enter'); // the base branch (first item)
    const deadline = Date.now() + TIMEOUT;
    while (pages.length === pageCount && Date.now() < deadline) {
        await page.waitForTimeout(250);
    }
    if (pages.length === pageCount) {
        throw new Error(`no new window opened; quick input: ${await quickInputText(page)}`);
    }
    const newPage = pages.at(-1);
    await waitForWorkbench(newPage);
    return newPage;
}

/** The same repository in a code-server with Workspace Trust on, answered "No": limited mode. */
async function untrustedPhase({ browser, startCodeServer, repo, dirs }) {
    const { url } = await startCodeServer([]);
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const pages = [];
    context.on('page', (p) => pages.push(p));
    const page = await context.newPage();
    await page.goto(`${url}/?folder=${encodeURIComponent(repo.remaining)}`);
    await waitForWorkbench(page);
    await step('untrusted: state and diagnostics work in Restricted Mode', page, async () => {
        await declineTrust(page);
        const text = await statusItem(page, (t) => t.includes('feature/remaining'), 'the status item in Restricted Mode');
        await runCommand(page, 'View: Focus Problems');
        const row = await waitForText(
            page,
            sel.problemsRows,
            (t) => /feature\/wipe/.test(t) && /conflict/i.test(t),
            'the predicted conflict with feature/wipe',
        );
        return `status ${JSON.stringify(text.trim())}; problem ${JSON.stringify(row.replace(/\s+/g, ' ').slice(0, 120))}`;
    });
    const spawned = join(dirs.work, 'tasks-app-untrusted-task');
    let newPage;
    await step('untrusted: spawn runs neither setup nor the agent', () => newPage ?? page, async () => {
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
        await statusItem(newPage, (t) => t.includes('agent/untrusted-task'), 'the new window status item');
        await waitForLog(
            dirs.userData,
            (t) => t.includes('Not starting the agent of agent/untrusted-task: this workspace is not trusted.'),
            'the agent refusal in the new window log',
            '',
        );
        const terminal = (await newPage.locator(sel.terminalRows).allInnerTexts().catch(() => [])).join('\n');
        if (terminal.includes('AGENT-42')) {
            throw new Error(`the agent ran: ${terminal}`);
        }
        const notes = await page.locator(sel.notifications).allInnerTexts().catch(() => []);
        return `no setup-ran, no agent; notifications ${JSON.stringify(notes)}`;
    });
    await context.close();
}

// --- the run -------------------------------------------------------------------------------
const results = [];
/** WTLS_E2E_ONLY (a regular expression): run only the matching steps, for debugging one of them. */
const ONLY = process.env.WTLS_E2E_ONLY ? new RegExp(process.env.WTLS_E2E_ONLY) : undefined;
async function step(name, page, fn) {
    if (ONLY && !ONLY.test(name)) {
        log(`skipped (WTLS_E2E_ONLY): ${name}`);
        return false;
    }
    log(`step: ${name}`);
    const slug = `${String(results.length + 1).padStart(2, '0')}-${name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
    try {
        const detail = await fn();
        results.push({ name, ok: true, detail });
        log(`ok - ${name}${detail ? `: ${detail}` : ''}`);
    } catch (err) {
        results.push({ name, ok: false, detail: err instanceof Error ? err.message : String(err) });
        log(`FAILED - ${name}: ${err instanceof Error ? err.stack : err}`);
    }
    const target = typeof page === 'function' ? page() : page;
    if (target) {
        const file = join(ARTIFACTS, `${slug}${results.at(-1).ok ? '' : '-FAILED'}.png`);
        await target.screenshot({ path: file }).catch((e) => log(`screenshot failed: ${e}`));
        log(`screenshot ${file}`);
    }
    return results.at(-1).ok;
}

async function main() {
    const codeServer = codeServerPath();
    const wtls = serverPath();
    const chromiumPath = process.env.CHROMIUM ?? need(which('chromium') ?? which('chromium-browser'), 'chromium');
    mkdirSync(ARTIFACTS, { recursive: true });
    for (const f of readdirSync(ARTIFACTS)) {
        if (f.endsWith('.png') || f.endsWith('.log')) {
            rmSync(join(ARTIFACTS, f));
        }
    }
    const tmp = mkdtempSync(join(tmpdir(), 'wtls-e2e-'));
    try {
        await scenario(tmp, { codeServer, wtls, chromiumPath });
    } finally {
        if (process.env.WTLS_E2E_KEEP === '1') {
            log(`kept ${tmp}`);
        } else {
            rmSync(tmp, { recursive: true, force: true });
        }
    }
}

/** Everything that happens in the throwaway directory `tmp`. */
async function scenario(tmp, { codeServer, wtls, chromiumPath }) {
    const vsix = buildVsix(tmp);
    const dirs = {
        home: join(tmp, 'home'),
        userData: join(tmp, 'user-data'),
        extensions: join(tmp, 'extensions'),
        work: join(tmp, 'work'),
    };
    for (const d of Object.values(dirs)) {
        mkdirSync(d, { recursive: true });
    }
    const repo = makeRepository(dirs.work);
    log(`repository: ${repo.main} (+ ${repo.wipe}, ${repo.remaining})`);
    // The command computes the marker, so it appears only in the command's output, not its echo.
    const agentMarker = 'AGENT-42';
    mkdirSync(join(dirs.userData, 'User'), { recursive: true });
    writeFileSync(
        join(dirs.userData, 'User', 'settings.json'),
        JSON.stringify(
            {
                'workbench.startupEditor': 'none',
                'workbench.tips.enabled': false,
                'workbench.enableExperiments': false,
                'telemetry.telemetryLevel': 'off',
                'git.autofetch': false,
                'git.openRepositoryInParentFolders': 'never',
                'extensions.autoCheckUpdates': false,
                'extensions.autoUpdate': false,
                'extensions.ignoreRecommendations': true,
                'terminal.integrated.gpuAcceleration': 'off',
                'window.restoreWindows': 'none',
                'wtls.server.command': wtls,
                'wtls.trace.server': 'messages',
                // The "agent" prints a marker and its task, so the test can read the terminal.
                'wtls.agent.command': 'echo AGENT-$((6*7)) {branch}; cat {promptFile}',
            },
            null,
            2,
        ),
    );
    const env = {
        ...process.env,
        HOME: dirs.home,
        // Keeps this PATH in the extension host instead of a login shell's.
        VSCODE_CLI: '1',
        ...GIT_ENV,
    };
    delete env.GIT_AUTHOR_DATE;
    delete env.GIT_COMMITTER_DATE;
    const common = ['--user-data-dir', dirs.userData, '--extensions-dir', dirs.extensions, '--config', join(tmp, 'config.yaml')];
    log(`installing ${vsix}`);
    execFileSync(codeServer, [...common, '--install-extension', vsix], { env, stdio: ['ignore', 'ignore', 'inherit'] });

    const running = [];
    const csLog = [];
    /** Starts code-server in its own process group; resolves once it answers /healthz. */
    async function startCodeServer(extraArgs) {
        const port = await freePort();
        const url = `http://127.0.0.1:${port}`;
        log(`starting code-server on ${url} ${extraArgs.join(' ')}`);
        const cs = spawn(
            codeServer,
            [
                ...common,
                '--bind-addr',
                `127.0.0.1:${port}`,
                '--auth',
                'none',
                '--disable-telemetry',
                '--disable-update-check',
                '--disable-getting-started-override',
                '--log',
                'info',
                ...extraArgs,
            ],
            // detached: its own process group (setsid), so the whole tree is killed at the end.
            { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
        );
        running.push(cs);
        cs.stdout.on('data', (d) => csLog.push(String(d)));
        cs.stderr.on('data', (d) => csLog.push(String(d)));
        const deadline = Date.now() + TIMEOUT;
        for (;;) {
            try {
                if ((await fetch(`${url}/healthz`)).ok) {
                    return { cs, url };
                }
            } catch {
                // not listening yet
            }
            if (cs.exitCode !== null || Date.now() > deadline) {
                throw new Error(`code-server did not start:\n${csLog.join('')}`);
            }
            await new Promise((r) => setTimeout(r, 200));
        }
    }
    const stopAll = (signal) => {
        for (const cs of running.splice(0)) {
            try {
                process.kill(-cs.pid, signal);
            } catch {
                // already gone
            }
        }
    };
    // Killed from outside (a test runner's timeout): stop code-server's process groups first.
    const onSignal = (signal) => {
        log(`${signal}: stopping code-server`);
        stopAll('SIGKILL');
        process.exit(1);
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    const serverLog = join(ARTIFACTS, 'code-server.log');
    let browser;
    try {
        const { cs, url } = await startCodeServer(['--disable-workspace-trust']);
        browser = await chromium.launch({
            executablePath: chromiumPath,
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
        const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
        const pages = [];
        context.on('page', (p) => pages.push(p));
        const page = await context.newPage();
        await page.goto(`${url}/?folder=${encodeURIComponent(repo.wipe)}`);
        await waitForWorkbench(page);

        await step('status bar shows this worktree', page, async () => {
            const ids = await page.locator(sel.statusItems).evaluateAll((els) => els.map((e) => e.id)).catch(() => []);
            const text = await statusItem(page, (t) => t.includes('feature/wipe'), `the wtls status-bar item among ${JSON.stringify(ids)}`);
            if (!/feature\/wipe\s+↑1\b/.test(text)) {
                throw new Error(`status text ${JSON.stringify(text)} lacks "feature/wipe ↑1"`);
            }
            // The tooltip lists the other worktrees.
            await page.locator(sel.wtlsStatus).hover();
            const tip = await waitForText(page, '.monaco-hover', (t) => t.includes('Other worktrees'), 'the status tooltip');
            for (const other of ['feature/remaining', 'main']) {
                if (!tip.includes(other)) {
                    throw new Error(`tooltip lacks ${other}: ${JSON.stringify(tip)}`);
                }
            }
            return `${JSON.stringify(text.trim())}; tooltip ${JSON.stringify(tip.replace(/\s+/g, ' ').slice(0, 160))}`;
        });

        await step('worktrees view lists every worktree', page, async () => {
            await runCommand(page, 'Focus on Worktrees View');
            const rows = await waitForViewRow(page, (r) => r.includes('feature/remaining'), 'feature/remaining');
            for (const branch of ['main', 'feature/wipe', 'feature/remaining']) {
                if (!rows.some((r) => r.includes(branch))) {
                    throw new Error(`no row for ${branch}: ${JSON.stringify(rows)}`);
                }
            }
            return `${rows.length} rows`;
        });

        await step('status bar click opens a worktree in a new window', page, async () => {
            await page.locator(sel.wtlsStatus).click();
            const rows = await waitForText(page, sel.quickInputRows, (t) => t.includes('current window'), 'the worktree quick pick');
            const all = await page.locator(sel.quickInputRows).allInnerTexts();
            const pageCount = pages.length;
            await pickQuickItem(page, 'feature/remaining');
            await waitUntil(() => pages.length > pageCount, 'a new window');
            const opened = pages.at(-1);
            await waitForWorkbench(opened);
            await statusItem(opened, (t) => t.includes('feature/remaining'), 'the opened window status item');
            const where = opened.url();
            await opened.close();
            await page.bringToFront();
            return `picked from ${JSON.stringify(all.map((r) => r.replace(/\s+/g, ' ').trim()))} (current: ${JSON.stringify(rows.replace(/\s+/g, ' ').trim())}); opened ${where}`;
        });

        const spawnedPath = join(dirs.work, 'tasks-app-wipe-tests');
        const task = 'Write tests for the wipe command';
        let newPage;
        const spawnOk = await step('spawn: name validated live by the server', page, async () => {
            await runCommand(page, 'Worktrees: Spawn Agent Worktree…');
            const input = page.locator(sel.quickInputBox);
            await input.waitFor({ state: 'visible', timeout: TIMEOUT });
            await input.fill('feature/wipe');
            // The server refuses a name whose branch or folder exists; then a valid one.
            // (The input's prompt ends with "Press 'Enter' to confirm…"; a validation message does not.)
            await waitForText(page, sel.quickInputMessage, (t) => t.trim() !== '' && !/Press 'Enter'|^Creates/.test(t), 'a refusal message');
            const refusal = (await page.locator(sel.quickInputMessage).innerText()).trim();
            await input.fill('wipe tests');
            const ok = await waitForText(page, sel.quickInputMessage, (t) => /agent\/wipe-tests/.test(t), 'the validation message');
            return `refused: ${JSON.stringify(refusal)}; accepted: ${JSON.stringify(ok.trim())}`;
        });

        if (spawnOk) {
            await step('spawn: new worktree on disk and in a new window', () => newPage ?? page, async () => {
                // The name box still holds the accepted name from the previous step.
                const input = page.locator(sel.quickInputBox);
                await input.press('Enter');
                await page.waitForFunction(
                    () => /task prompt/i.test(document.querySelector('.quick-input-widget')?.textContent ?? ''),
                    null,
                    { timeout: TIMEOUT },
                );
                await input.fill(task);
                await input.press('Enter');
                await page.waitForFunction(
                    () => /base branch/i.test(document.querySelector('.quick-input-widget')?.textContent ?? ''),
                    null,
                    { timeout: TIMEOUT },
                );
                const pageCount = pages.length;
                await input.press('Enter'); // the base branch (first item)
                const deadline = Date.now() + TIMEOUT;
                while (pages.length === pageCount && Date.now() < deadline) {
                    await page.waitForTimeout(250);
                }
                if (pages.length === pageCount) {
                    throw new Error(`no new window opened; quick input: ${await quickInputText(page)}`);
                }
                newPage = pages.at(-1);
                if (!existsSync(join(spawnedPath, 'cli.py'))) {
                    throw new Error(`${spawnedPath} was not created`);
                }
                if (!existsSync(join(spawnedPath, 'setup-ran'))) {
                    throw new Error('the setup command of .wtls.toml did not run in a trusted workspace');
                }
                await waitForWorkbench(newPage);
                const text = await statusItem(newPage, (t) => t.includes('agent/wipe-tests'), 'the new window status item');
                const branch = git(spawnedPath, 'branch', '--show-current').trim();
                return `${spawnedPath} on ${branch}, setup ran; new window: ${JSON.stringify(newPage.url())}; status ${JSON.stringify(text.trim())}`;
            });

            await step('spawn: the agent command runs in a terminal named after the branch', () => newPage ?? page, async () => {
                if (!newPage) {
                    throw new Error('no new window');
                }
                const rows = await waitForText(
                    newPage,
                    sel.terminalRows,
                    (t) => t.includes(`${agentMarker} agent/wipe-tests`) && t.includes(task),
                    'the agent output in the terminal',
                );
                const tabs = await newPage.locator('.terminal-tabs-entry, .single-terminal-tab').allInnerTexts().catch(() => []);
                return `terminal: ${JSON.stringify(rows.replace(/\s+/g, ' ').slice(0, 160))}; tabs ${JSON.stringify(tabs)}`;
            });

            await step('spawn: new worktree appears in the view', page, async () => {
                await page.bringToFront();
                const rows = await waitForViewRow(page, (r) => r.includes('agent/wipe-tests'), 'agent/wipe-tests');
                return `${rows.length} rows`;
            });
        }

        await step('conflicting edit shows in the Problems panel', page, async () => {
            await page.bringToFront();
            // feature/remaining edits the same usage line as feature/wipe's commit (uncommitted).
            writeFileSync(join(repo.remaining, 'cli.py'), CLI_PY.replace('add|list|done"', 'add|list|done|remaining"'));
            const text = await statusItem(page, (t) => /feature\/wipe.*⚠\d/.test(t), 'a ⚠ count in the status bar');
            // "Check Conflicts" runs the analysis now and focuses the Problems panel.
            await runCommand(page, 'Worktrees: Check Conflicts');
            const row = await waitForText(
                page,
                sel.problemsRows,
                (t) => /feature\/remaining/.test(t) && /conflict/i.test(t),
                'a predicted-conflict problem naming feature/remaining',
            );
            const note = await waitForNotification(page, /predicted conflict/, 'the Check Conflicts summary');
            return `status ${JSON.stringify(text.trim())}; problem ${JSON.stringify(row.replace(/\s+/g, ' ').slice(0, 160))}; ${JSON.stringify(note)}`;
        });
        await step('conflict block quick fix from the light bulb', page, async () => {
            await page.bringToFront();
            const notes = join(repo.wipe, 'notes.md');
            writeFileSync(notes, '# notes\n<<<<<<< HEAD\nours line\n=======\ntheirs line\n>>>>>>> feature/remaining\n');
            try {
                await quickOpen(page, 'notes.md');
                const lines = '.editor-instance .monaco-editor .view-lines';
                await waitForText(page, lines, (t) => t.includes('ours line'), 'notes.md in an editor');
                await waitForText(page, sel.problemsRows, (t) => /Merge conflict/i.test(t), 'the conflict-marker error');
                await page.locator(lines).first().click();
                await page.keyboard.press('Control+Home');
                await page.keyboard.press('ArrowDown');
                // The first request can be cancelled while the editor settles: ask again until offered.
                const action = page.locator('.action-widget .monaco-list-row', { hasText: 'Accept current change' }).first();
                const deadline = Date.now() + TIMEOUT;
                for (;;) {
                    await page.keyboard.press('Control+.');
                    try {
                        await action.waitFor({ state: 'visible', timeout: 4000 });
                        break;
                    } catch (err) {
                        if (Date.now() > deadline) {
                            throw err;
                        }
                        await page.keyboard.press('Escape');
                    }
                }
                const offered = await page.locator('.action-widget .monaco-list-row').allInnerTexts();
                await page.screenshot({ path: join(ARTIFACTS, `${String(results.length + 1).padStart(2, '0')}-quick-fix-menu.png`) });
                // The focused first row is "Accept current change"; Enter applies it (a click can
                // land on the editor's hover that overlaps the menu).
                const focused = await page.locator('.action-widget .monaco-list-row.focused').innerText();
                if (!focused.includes('Accept current change')) {
                    await action.hover();
                }
                await page.keyboard.press('Enter');
                const text = await waitForText(
                    page,
                    lines,
                    (t) => !t.includes('<<<<<<<') && t.includes('ours line') && !t.includes('theirs line'),
                    'the block resolved to the current change',
                );
                return `offered ${JSON.stringify(offered.map((o) => o.trim()))}; buffer ${JSON.stringify(text.replace(/\s+/g, ' ').trim())}`;
            } finally {
                // Leave the worktree as it was: drop the edited buffer and the file.
                await runCommand(page, 'View: Revert and Close Editor').catch(() => {});
                rmSync(notes, { force: true });
            }
        });

        await step('server restarts after a crash, without a pop-up', page, async () => {
            await page.bringToFront();
            const victims = serverPids(cs.pid, wtls, repo.wipe);
            if (victims.length !== 1) {
                throw new Error(`expected one wtls server for ${repo.wipe}, found ${JSON.stringify(victims)}`);
            }
            process.kill(victims[0], 'SIGKILL');
            const logText = await waitForLog(
                dirs.userData,
                (t) => /stopped \(signal SIGKILL[^)]*\); restarting in 1 s \(attempt 1 of 6\)/.test(t) && /is running[\s\S]*restarting in[\s\S]*is running/.test(t),
                'the restart in the wtls output channel',
            );
            const text = await statusItem(page, (t) => t.includes('feature/wipe'), 'the status item after the restart');
            let after = [];
            await waitUntil(() => {
                after = serverPids(cs.pid, wtls, repo.wipe);
                return after.length === 1 && after[0] !== victims[0];
            }, `one new server process (last seen: ${JSON.stringify(after)})`);
            const toasts = await page.locator(sel.notifications).allInnerTexts().catch(() => []);
            if (toasts.some((t) => /wtls server/i.test(t))) {
                throw new Error(`a crash notification popped up: ${JSON.stringify(toasts)}`);
            }
            const line = logText.split('\n').find((l) => l.includes('restarting in')) ?? '';
            return `killed pid ${victims[0]}, new pid ${after[0]}; status ${JSON.stringify(text.trim())}; log: ${line.trim()}`;
        });

        await step('lock and unlock from the palette', page, async () => {
            await page.bringToFront();
            await runCommand(page, 'Worktrees: Lock Worktree…');
            await pickQuickItem(page, 'feature/remaining');
            const reason = page.locator(sel.quickInputBox);
            await page.waitForFunction(() => /Lock feature\/remaining/.test(document.querySelector('.quick-input-widget')?.textContent ?? ''), null, {
                timeout: TIMEOUT,
            });
            await reason.fill('agent B is running');
            await reason.press('Enter');
            await waitForViewRow(page, (r) => r.includes('feature/remaining'), 'feature/remaining');
            await waitUntil(() => /locked agent B is running/.test(git(repo.main, 'worktree', 'list', '--porcelain')), 'git to record the lock');
            const locked = await statusItemTooltip(page, (t) => /locked: agent B is running/.test(t));
            await runCommand(page, 'Worktrees: Unlock Worktree…');
            await pickQuickItem(page, 'feature/remaining');
            await waitUntil(() => !/locked/.test(git(repo.main, 'worktree', 'list', '--porcelain')), 'git to drop the lock');
            return `tooltip while locked: ${JSON.stringify(locked.match(/[^\n]*locked: agent B is running[^\n]*/)?.[0] ?? '')}`;
        });

        if (spawnOk) {
            await step('remove a dirty worktree: the confirmation lists what is backed up', page, async () => {
                await page.bringToFront();
                writeFileSync(join(spawnedPath, 'notes.txt'), 'unsaved thoughts\n');
                await waitForViewRow(page, (r) => /agent\/wipe-tests.*●1/.test(r), 'agent/wipe-tests with one change');
                await runCommand(page, 'Worktrees: Remove Worktree…');
                await pickQuickItem(page, 'agent/wipe-tests');
                const dialog = page.locator('.monaco-dialog-box');
                await dialog.waitFor({ state: 'visible', timeout: TIMEOUT });
                const text = (await dialog.innerText()).replace(/\s+/g, ' ');
                if (!text.includes('notes.txt')) {
                    throw new Error(`the confirmation does not list notes.txt: ${text}`);
                }
                await page.screenshot({ path: join(ARTIFACTS, `${String(results.length + 1).padStart(2, '0')}-remove-confirmation.png`) });
                await dialog.locator('.monaco-button', { hasText: /^Remove$/ }).click();
                await waitUntil(() => !existsSync(spawnedPath), `${spawnedPath} to be removed`);
                const backups = git(repo.main, 'for-each-ref', '--format=%(refname)', 'refs/wtls/backup/').trim();
                if (!backups) {
                    throw new Error('no backup ref was made for the uncommitted work');
                }
                const deadline = Date.now() + TIMEOUT;
                let rows = await viewRows(page);
                while (rows.some((r) => r.includes('agent/wipe-tests')) && Date.now() < deadline) {
                    await page.waitForTimeout(250);
                    rows = await viewRows(page);
                }
                if (rows.some((r) => r.includes('agent/wipe-tests'))) {
                    throw new Error(`the view still lists agent/wipe-tests: ${JSON.stringify(rows)}`);
                }
                return `dialog: ${JSON.stringify(text.slice(0, 200))}; backup ${backups}`;
            });
        }

        await step('merge a worktree back into main', page, async () => {
            await page.bringToFront();
            await runCommand(page, 'Worktrees: Merge Worktree Back…');
            await pickQuickItem(page, 'feature/wipe');
            await pickQuickItem(page, 'Merge feature/wipe into main');
            await waitUntil(() => git(repo.main, 'show', 'main:cli.py').includes('add|list|done|wipe'), 'main to contain the wipe change');
            const note = await waitForNotification(page, /Merged feature\/wipe into main/, 'the merge message');
            return JSON.stringify(note);
        });

        const workspaceFile = join(dirs.work, 'two-repos.code-workspace');
        writeFileSync(workspaceFile, JSON.stringify({ folders: [{ path: repo.remaining }, { path: repo.otherDraft }] }));
        const multi = await context.newPage();
        await step('multi-root: worktrees of two repositories', multi, async () => {
            await openWorkspace(multi, `${url}/?workspace=${encodeURIComponent(workspaceFile)}`);
            await statusItem(multi, (t) => t.includes('feature/remaining'), 'the first folder\'s worktree in the status bar');
            await runCommand(multi, 'Focus on Worktrees View');
            // One node per repository, each with its worktrees.
            const first = await waitForViewRow(multi, (r) => r.startsWith('notes-app'), 'the second repository');
            if (!first.some((r) => r.startsWith('tasks-app')) || !first.some((r) => r.includes('feature/remaining'))) {
                throw new Error(`the first repository is missing: ${JSON.stringify(first)}`);
            }
            // The list is virtual and the pane small: fold the first repository to see the second's.
            const pane = multi.locator('.pane').filter({ has: multi.locator('.pane-header', { hasText: /^Worktrees/i }) });
            await pane.locator('.monaco-list-row', { hasText: /^tasks-app/ }).first().click();
            const rows = await waitForViewRow(multi, (r) => r.includes('feature/draft'), 'the second repository\'s worktrees');
            // The status bar follows the active editor's repository.
            await quickOpen(multi, 'draft.md');
            const text = await statusItem(multi, (t) => /feature\/draft\s+↑1/.test(t), 'feature/draft in the status bar');
            return `view ${JSON.stringify([...first, ...rows])}; status with draft.md open ${JSON.stringify(text.trim())}`;
        });
        await context.close();
        stopAll('SIGKILL');
        await untrustedPhase({ browser, startCodeServer, repo, dirs, wtls });
    } finally {
        if (browser) {
            await browser.close().catch(() => {});
        }
        for (const cs of running) {
            try {
                process.kill(-cs.pid, 'SIGTERM');
            } catch {
                // already gone
            }
        }
        await new Promise((r) => setTimeout(r, 500));
        stopAll('SIGKILL');
        writeFileSync(serverLog, csLog.join(''));
        copyExtensionLogs(dirs.userData);
    }
}

/**
 * Pids of wtls servers in code-server's process group whose working directory is `cwd`. A
 * server's own children (a fork about to exec git still shows the server's command line) are
 * left out.
 */
function serverPids(pgid, wtls, cwd) {
    const found = new Map();
    for (const entry of readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) {
            continue;
        }
        try {
            const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
            const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
            if (Number(fields[2]) !== pgid) {
                continue;
            }
            const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
            if (argv.includes(wtls) && argv.includes('serve') && readlinkSync(`/proc/${entry}/cwd`) === cwd) {
                found.set(Number(entry), Number(fields[1]));
            }
        } catch {
            // the process ended meanwhile
        }
    }
    return [...found].filter(([, ppid]) => !found.has(ppid)).map(([pid]) => pid);
}

/** Waits until the wtls output channel logs (of windows whose log path contains `only`) satisfy `predicate`. */
async function waitForLog(userData, predicate, what, only = 'exthost1') {
    const deadline = Date.now() + TIMEOUT;
    let text = '';
    while (Date.now() < deadline) {
        const logs = [];
        const walk = (dir) => {
            for (const e of readdirSync(dir, { withFileTypes: true })) {
                const p = join(dir, e.name);
                if (e.isDirectory()) {
                    walk(p);
                } else if (e.name === 'wtls.log' && p.includes(only)) {
                    logs.push(p);
                }
            }
        };
        walk(join(userData, 'logs'));
        text = logs.map((p) => readFileSync(p, 'utf8')).join('\n');
        if (predicate(text)) {
            return text;
        }
        await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`timed out waiting for ${what}; log:\n${text.slice(-2000)}`);
}

/** Copies the extension's output channel logs next to the screenshots. */
function copyExtensionLogs(userData) {
    const logs = join(userData, 'logs');
    if (!existsSync(logs)) {
        return;
    }
    const found = [];
    const walk = (dir) => {
        for (const entry of readdirSync(dir, { withFileTypes: true })) {
            const p = join(dir, entry.name);
            if (entry.isDirectory()) {
                walk(p);
            } else if (/wtls\.log$|exthost\.log$/.test(entry.name)) {
                found.push(p);
            }
        }
    };
    walk(logs);
    found.forEach((p, i) => {
        const name = p.endsWith('exthost.log') ? `exthost-${i}.log` : `wtls-output-${i}.log`;
        writeFileSync(join(ARTIFACTS, name), readFileSync(p));
    });
}

let failed = false;
try {
    await main();
} catch (err) {
    failed = true;
    log(`ERROR: ${err instanceof Error ? err.stack : err}`);
}
const passed = results.filter((r) => r.ok).length;
const failures = results.filter((r) => !r.ok);
for (const r of results) {
    console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name}${r.detail ? ` — ${r.detail}` : ''}`);
}
console.log(`e2e took ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${ARTIFACTS}`);
console.log(`e2e: ${passed} passed, ${failures.length + (failed ? 1 : 0)} failed`);
process.exit(failed || failures.length > 0 || results.length === 0 ? 1 : 0);
