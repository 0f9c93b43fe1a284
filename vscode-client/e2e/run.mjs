#!/usr/bin/env node
// End-to-end test of the wtls extension in a real VS Code workbench: code-server serves it,
// Debian's Chromium (driven by playwright-core, headless) is the browser.
//
// Runs the scenarios in scenarios/ in order, each from scratch (harness.mjs): its own temp dir
// with fresh repositories (tasks-app with worktrees feature/wipe and feature/remaining, plus
// notes-app with feature/draft; fixtures.mjs), its own code-server with the .vsix installed, its
// own browser context. A scenario that fails leaves nothing behind for the next one.
//
// A screenshot of each step goes to $WTLS_E2E_ARTIFACTS/<scenario>/ (default: <repo>/artifacts/e2e),
// with that scenario's code-server and extension logs. Exits 0 when every step passed. The
// report ends with one line per scenario ("scenario ok   <name>" or "scenario FAIL <name>"),
// then "e2e: N passed, N failed" (steps).
//
// Environment: CODE_SERVER (code-server executable; default: the one .ci/vscode-setup.sh
// installs), WTLS_SERVER (the `wtls` executable; default <repo>/.venv/bin/wtls, else PATH),
// CHROMIUM (default: `chromium` on PATH), WTLS_E2E_VSIX (use this .vsix instead of building
// one), WTLS_E2E_KEEP=1 (keep the temp dirs), WTLS_E2E_TIMEOUT_MS (per wait, default 60000),
// WTLS_E2E_ONLY=<regexp> (run only the scenarios whose name matches, e.g. '^(spawn|merge)$').

import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ARTIFACTS, elapsed, log } from './common.mjs';
import { buildVsix, findTools, killAllCodeServers } from './fixtures.mjs';
import { runScenario } from './harness.mjs';
import * as agents from './scenarios/agents.mjs';
import * as bundledServer from './scenarios/bundled-server.mjs';
import * as lock from './scenarios/lock.mjs';
import * as merge from './scenarios/merge.mjs';
import * as multiRoot from './scenarios/multi-root.mjs';
import * as predictedConflict from './scenarios/predicted-conflict.mjs';
import * as predictedMerge from './scenarios/predicted-merge.mjs';
import * as processes from './scenarios/processes.mjs';
import * as quickFix from './scenarios/quick-fix.mjs';
import * as remove from './scenarios/remove.mjs';
import * as restart from './scenarios/restart.mjs';
import * as review from './scenarios/review.mjs';
import * as spawn from './scenarios/spawn.mjs';
import * as statusBar from './scenarios/status-bar.mjs';
import * as testMerges from './scenarios/test-merges.mjs';
import * as twoWindows from './scenarios/two-windows.mjs';
import * as untrusted from './scenarios/untrusted.mjs';
import { launchBrowser } from './workbench.mjs';

/** In the order they run; each is independent of the others. */
const SCENARIOS = [statusBar, spawn, predictedConflict, predictedMerge, review, quickFix, restart, lock, remove, merge, multiRoot, untrusted, bundledServer, agents, testMerges, processes, twoWindows];

/** The scenarios WTLS_E2E_ONLY selects (all by default). */
function selectScenarios() {
    const only = process.env.WTLS_E2E_ONLY ? new RegExp(process.env.WTLS_E2E_ONLY) : undefined;
    const selected = SCENARIOS.filter((s) => !only || only.test(s.name));
    if (selected.length === 0) {
        throw new Error(`WTLS_E2E_ONLY=${process.env.WTLS_E2E_ONLY} matches no scenario of ${SCENARIOS.map((s) => s.name).join(', ')}`);
    }
    return selected;
}

/** Runs `selected` in order, appending each one's report to `reports` as it ends. */
async function main(selected, reports) {
    const tools = findTools();
    mkdirSync(ARTIFACTS, { recursive: true });
    // Screenshots and logs of an earlier layout (one flat folder) would mislead.
    for (const f of readdirSync(ARTIFACTS)) {
        if (f.endsWith('.png') || f.endsWith('.log')) {
            rmSync(join(ARTIFACTS, f));
        }
    }
    const tmp = mkdtempSync(join(tmpdir(), 'wtls-e2e-vsix-'));
    let browser;
    try {
        const vsix = buildVsix(tmp);
        for (const scenario of selected) {
            // One browser for all; a new one if the last scenario lost it.
            if (!browser?.isConnected()) {
                browser = await launchBrowser(tools.chromium);
            }
            reports.push(await runScenario(scenario, { tools, vsix, browser }));
        }
    } finally {
        await browser?.close().catch(() => {});
        killAllCodeServers('SIGKILL');
        rmSync(tmp, { recursive: true, force: true });
    }
}

// Killed from outside (a test runner's timeout): stop code-server's process groups first.
for (const signal of ['SIGTERM', 'SIGINT']) {
    process.once(signal, () => {
        log(`${signal}: stopping code-server`);
        killAllCodeServers('SIGKILL');
        process.exit(1);
    });
}

let selected = [];
const reports = [];
let error;
try {
    selected = selectScenarios();
    await main(selected, reports);
} catch (err) {
    error = err;
    log(`ERROR: ${err instanceof Error ? err.stack : err}`);
}
const steps = reports.flatMap((r) => r.steps.map((s) => ({ ...s, scenario: r.name })));
for (const s of steps) {
    console.log(`${s.ok ? 'ok  ' : 'FAIL'} [${s.scenario}] ${s.name}${s.detail ? ` — ${s.detail}` : ''}`);
}
for (const r of reports) {
    const failedSteps = r.steps.filter((s) => !s.ok).length;
    console.log(`scenario ${r.ok ? 'ok  ' : 'FAIL'} ${r.name} (${r.seconds.toFixed(1)} s, ${r.steps.length} steps${failedSteps ? `, ${failedSteps} failed` : ''})`);
}
// A scenario the run never reached (it stopped on an error) is a failure too, named so it can be run again.
const notRun = selected.filter((s) => !reports.some((r) => r.name === s.name));
for (const s of notRun) {
    console.log(`scenario FAIL ${s.name} (not run)`);
}
const passed = steps.filter((s) => s.ok).length;
const failed = steps.length - passed + notRun.length + (error ? 1 : 0);
console.log(`e2e took ${elapsed().toFixed(1)} s; screenshots in ${ARTIFACTS}`);
console.log(`e2e: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 || steps.length === 0 ? 1 : 0);
