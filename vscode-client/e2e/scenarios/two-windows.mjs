// Two VS Code windows on two worktrees of one repository, one wtls engine behind both: window B
// (feature/wipe) and window A (feature/remaining) each run their own `wtls serve` forwarder,
// and exactly one `wtls engine` serves them (`wtls daemon status --json`: 2 clients). A file
// typed and saved in A shows in B's Worktrees view; an UNSAVED edit typed in A on the line B's
// commit changed puts a predicted-conflict warning in B's Problems panel (the engine predicts
// with every session's buffers). Closing A's page drops the engine to one client; B goes on:
// A's unsaved edit no longer counts, and a later change on disk still reaches B.

import { mkdirSync, readFileSync, readdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TIMEOUT, waitUntil } from '../common.mjs';
import { CLI_PY, serverPids, writeConflictingEdit } from '../fixtures.mjs';
import { quickOpen, runCommand, sel, statusItem, waitForText, waitForViewRow, waitForWorkbench } from '../workbench.mjs';

export const name = 'two-windows';
export const description = 'two windows on two worktrees share one engine: saved and unsaved edits of one reach the other; closing one leaves the other working';

/**
 * Pids of the `wtls engine` processes serving the repository whose common git dir is
 * `commonDir` (from /proc: the engine's command line names it after `--repository`). An
 * engine's child caught between fork and exec still shows that command line: left out.
 */
function enginePids(commonDir) {
    const found = new Map();
    for (const entry of readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) {
            continue;
        }
        try {
            const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
            const at = argv.indexOf('--repository');
            if (!argv.includes('engine') || at < 0 || argv[at + 1] !== commonDir) {
                continue;
            }
            const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
            const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
            if (fields[0] !== 'Z') {
                found.set(Number(entry), Number(fields[1]));
            }
        } catch {
            // the process ended meanwhile
        }
    }
    return [...found].filter(([, ppid]) => !found.has(ppid)).map(([pid]) => pid);
}

/** A worktree's row of the Worktrees view (`feature/remaining ●1  tasks-app-remaining`). */
function rowOf(rows, branch) {
    return rows.find((r) => r.includes(branch)) ?? '';
}

export async function run(t) {
    const { wtls } = t.tools;
    const commonDir = realpathSync(join(t.repo.main, '.git'));
    const daemonStatus = () => JSON.parse(t.sandbox.wtls(t.repo.main, 'daemon', 'status', '--json'));
    // VS Code in a browser saves after a delay by default: A's edit must stay unsaved (.vscode/
    // is ignored by git, so this changes nothing wtls counts).
    mkdirSync(join(t.repo.remaining, '.vscode'), { recursive: true });
    writeFileSync(join(t.repo.remaining, '.vscode', 'settings.json'), JSON.stringify({ 'files.autoSave': 'off' }));
    const b = await t.openFolder(t.repo.wipe);
    const pageB = b.page;
    const pageA = await b.context.newPage();
    await pageA.goto(`${b.url}/?folder=${encodeURIComponent(t.repo.remaining)}`);
    await waitForWorkbench(pageA);
    const shared = 'one engine serves both windows, each through its own forwarder';
    let engine;

    await t.step(shared, pageB, async () => {
        await statusItem(pageB, (s) => s.includes('feature/wipe'), "B's wtls status-bar item");
        await statusItem(pageA, (s) => s.includes('feature/remaining'), "A's wtls status-bar item");
        let status = {};
        await waitUntil(
            () => {
                status = daemonStatus();
                return status.running === true && status.clients === 2;
            },
            () => `wtls daemon status to show one engine with 2 clients (last: ${JSON.stringify(status)})`,
        );
        if (status.repository !== commonDir) {
            throw new Error(`the engine serves ${status.repository}, not ${commonDir}`);
        }
        const engines = enginePids(commonDir);
        if (engines.length !== 1 || engines[0] !== status.pid) {
            throw new Error(`expected one wtls engine (pid ${status.pid}) for ${commonDir}, found ${JSON.stringify(engines)}`);
        }
        engine = status.pid;
        const forwarderB = serverPids(b.pid, wtls, t.repo.wipe);
        const forwarderA = serverPids(b.pid, wtls, t.repo.remaining);
        if (forwarderB.length !== 1 || forwarderA.length !== 1) {
            throw new Error(`expected one wtls serve per window, found B ${JSON.stringify(forwarderB)}, A ${JSON.stringify(forwarderA)}`);
        }
        // A forwarder relays: it is not the engine, and it did not fall back to a server of its own.
        for (const pid of [...forwarderA, ...forwarderB]) {
            if (pid === engine) {
                throw new Error(`window forwarder ${pid} is the engine`);
            }
        }
        return `engine pid ${engine} (${status.clients} clients); forwarders A ${forwarderA[0]}, B ${forwarderB[0]}`;
    });

    const saved = "a file saved in A shows in B's Worktrees view";
    await t.step(
        saved,
        pageB,
        async () => {
            await pageB.bringToFront();
            await runCommand(pageB, 'Focus on Worktrees View');
            const before = await waitForViewRow(pageB, (r) => r.includes('feature/remaining'), 'feature/remaining');
            if (/●/.test(rowOf(before, 'feature/remaining'))) {
                throw new Error(`feature/remaining is not clean at the start: ${JSON.stringify(before)}`);
            }
            // Typed and saved in window A, as a user would.
            await pageA.bringToFront();
            await quickOpen(pageA, 'README.md');
            await waitForText(pageA, sel.editorLines, (s) => s.includes('# tasks-app'), 'README.md in an editor of A');
            await pageA.keyboard.press('Control+End');
            await pageA.keyboard.type('Saved in window A.\n');
            await pageA.keyboard.press('Control+S');
            const file = join(t.repo.remaining, 'README.md');
            await waitUntil(() => readFileSync(file, 'utf8').includes('Saved in window A.'), 'README.md saved on disk by window A');
            await pageB.bringToFront();
            const rows = await waitForViewRow(pageB, (r) => /feature\/remaining.*●1/s.test(r), "feature/remaining with ●1 in B's view");
            return `B's row before ${JSON.stringify(rowOf(before, 'feature/remaining'))}, after ${JSON.stringify(rowOf(rows, 'feature/remaining'))}`;
        },
        { needs: [shared] },
    );

    const unsaved = "an unsaved edit in A puts a conflict in B's Problems panel";
    await t.step(
        unsaved,
        pageB,
        async () => {
            await pageA.bringToFront();
            await quickOpen(pageA, 'cli.py');
            await waitForText(pageA, sel.editorLines, (s) => s.includes('USAGE'), 'cli.py in an editor of A');
            // Line 4 is `USAGE = "usage: tasks.py add|list|done"`: the line feature/wipe's commit
            // changed. Type before its closing quote.
            await pageA.keyboard.press('Control+Home');
            for (let i = 0; i < 3; i++) {
                await pageA.keyboard.press('ArrowDown');
            }
            await pageA.keyboard.press('End');
            await pageA.keyboard.press('ArrowLeft');
            await pageA.keyboard.type('|remaining');
            await waitForText(pageA, sel.editorLines, (s) => s.includes('add|list|done|remaining"'), 'the typed edit in A');
            await pageB.bringToFront();
            await runCommand(pageB, 'View: Focus Problems');
            const row = await waitForText(
                pageB,
                sel.problemsRows,
                (s) => /feature\/remaining/.test(s) && /conflict/i.test(s),
                "a predicted-conflict warning naming feature/remaining in B's Problems panel",
            );
            const status = await statusItem(pageB, (s) => /feature\/wipe.*⚠\d/.test(s), "a ⚠ count in B's status bar");
            // Only A's buffer holds the edit: nothing reached the disk.
            const onDisk = readFileSync(join(t.repo.remaining, 'cli.py'), 'utf8');
            if (onDisk !== CLI_PY) {
                await t.screenshot(pageA, 'window-a');
                throw new Error(`A's edit of cli.py reached the disk (the test meant an unsaved buffer): ${JSON.stringify(onDisk)}`);
            }
            return `problem ${JSON.stringify(row.replace(/\s+/g, ' ').slice(0, 160))}; status ${JSON.stringify(status.trim())}`;
        },
        { needs: [shared] },
    );

    const closed = 'closing A leaves one client, and B goes on';
    await t.step(
        closed,
        pageB,
        async () => {
            // As a user closes a tab: the page's unload handlers run (VS Code may ask about the
            // unsaved cli.py: leave anyway).
            pageA.on('dialog', (d) => d.accept().catch(() => {}));
            await pageA.close({ runBeforeUnload: true });
            await waitUntil(() => pageA.isClosed(), "A's page to close");
            await pageB.bringToFront();
            let status = {};
            await waitUntil(
                () => {
                    status = daemonStatus();
                    return status.running === true && status.clients === 1;
                },
                () => `the engine to have 1 client after A closed (last: ${JSON.stringify(status)})`,
            );
            if (status.pid !== engine) {
                throw new Error(`the engine changed: pid ${status.pid}, was ${engine}`);
            }
            let forwarderA = [];
            await waitUntil(
                () => (forwarderA = serverPids(b.pid, wtls, t.repo.remaining)).length === 0,
                () => `A's forwarder to exit (still: ${JSON.stringify(forwarderA)})`,
            );
            const forwarderB = serverPids(b.pid, wtls, t.repo.wipe);
            if (forwarderB.length !== 1) {
                throw new Error(`B's forwarder is gone: ${JSON.stringify(forwarderB)}`);
            }
            // A's unsaved edit went with its window: B's warning about it clears (read in the
            // Problems panel, shown: an empty list of a hidden panel would prove nothing).
            await runCommand(pageB, 'View: Focus Problems');
            await pageB.locator('.markers-panel').waitFor({ state: 'visible', timeout: TIMEOUT });
            const deadline = Date.now() + TIMEOUT;
            let problems = [];
            for (;;) {
                problems = await pageB.locator(sel.problemsRows).allInnerTexts().catch(() => []);
                if (!problems.some((s) => /feature\/remaining/.test(s))) {
                    break;
                }
                if (Date.now() > deadline) {
                    throw new Error(`B still shows a conflict with A's closed, unsaved edit: ${JSON.stringify(problems)}`);
                }
                await pageB.waitForTimeout(250);
            }
            // A further change in A's worktree, on disk, still reaches B: a new file (●2) ...
            writeFileSync(join(t.repo.remaining, 'notes.txt'), 'after A closed\n');
            await runCommand(pageB, 'Focus on Worktrees View');
            const rows = await waitForViewRow(pageB, (r) => /feature\/remaining.*●2/s.test(r), "feature/remaining with ●2 in B's view");
            // ... and the conflicting edit, saved this time, is a conflict in B again.
            writeConflictingEdit(t.repo);
            await runCommand(pageB, 'View: Focus Problems');
            const row = await waitForText(
                pageB,
                sel.problemsRows,
                (s) => /feature\/remaining/.test(s) && /conflict/i.test(s),
                "the conflict in B's Problems panel from the edit on disk",
            );
            const engines = enginePids(commonDir);
            if (engines.length !== 1 || engines[0] !== engine) {
                throw new Error(`expected the same single engine ${engine}, found ${JSON.stringify(engines)}`);
            }
            return `1 client, engine ${engine}; B's row ${JSON.stringify(rowOf(rows, 'feature/remaining'))}; problem ${JSON.stringify(row.replace(/\s+/g, ' ').slice(0, 120))}`;
        },
        { needs: [shared, unsaved] },
    );
}
