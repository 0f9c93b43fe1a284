// What every part of the VS Code end-to-end test shares: where things are, how long a wait
// may last, the log line format, and polling a condition outside the browser.

import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLIENT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = resolve(CLIENT_DIR, '..');
export const ARTIFACTS = resolve(process.env.WTLS_E2E_ARTIFACTS ?? join(REPO_ROOT, 'artifacts', 'e2e'));
/** The bound of every single wait (WTLS_E2E_TIMEOUT_MS). */
export const TIMEOUT = Number(process.env.WTLS_E2E_TIMEOUT_MS ?? 60_000);

const started = Date.now();

/** Seconds since the run began, as the log shows them. */
export function elapsed() {
    return (Date.now() - started) / 1000;
}

export function log(message) {
    console.log(`[e2e ${elapsed().toFixed(1).padStart(5)}s] ${message}`);
}

/** A name made safe for a file name. */
export function slug(name) {
    return name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

export function sleep(ms) {
    return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls `predicate` (a synchronous check of the disk or git) until it holds. `what` says what
 * was awaited; a function is called only for the error, so it can report the last state seen.
 */
export async function waitUntil(predicate, what) {
    const deadline = Date.now() + TIMEOUT;
    while (Date.now() < deadline) {
        if (predicate()) {
            return;
        }
        await sleep(250);
    }
    throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}`);
}
