// Runs one scenario in its own sandbox (fixtures.mjs) and browser context: records its steps,
// takes a screenshot after each, and always tears everything down, so the next scenario starts
// from nothing whatever this one left behind.

import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ARTIFACTS, elapsed, log, slug } from './common.mjs';
import { Sandbox } from './fixtures.mjs';
import { newContext, waitForWorkbench } from './workbench.mjs';

/** What a scenario module's `run(t)` receives. */
class ScenarioContext {
    #contexts = [];
    #lastPage;

    constructor(name, sandbox, browser, steps) {
        this.name = name;
        this.sandbox = sandbox;
        this.repo = sandbox.repo;
        this.dirs = sandbox.dirs;
        this.tools = sandbox.tools;
        this.artifacts = sandbox.artifacts;
        this.browser = browser;
        this.codeServer = undefined;
        /** @type {{name: string, ok: boolean, detail: string | undefined}[]} */
        this.steps = steps;
    }

    /**
     * Starts this scenario's code-server (Workspace Trust on only with `trust`), opens a new
     * browser context on `folder` and waits for the workbench. Returns the page, the context's
     * `pages` (new windows are appended), and code-server's `url` and `pid`.
     */
    async openFolder(folder, { trust = false } = {}) {
        this.codeServer ??= await this.sandbox.startCodeServer({ trust });
        const { context, pages } = await this.newContext();
        const page = await context.newPage();
        this.#lastPage = page;
        await page.goto(`${this.codeServer.url}/?folder=${encodeURIComponent(folder)}`);
        await waitForWorkbench(page);
        return { page, pages, context, ...this.codeServer };
    }

    /** A new browser context against this scenario's code-server (started if need be). */
    async newContext() {
        this.codeServer ??= await this.sandbox.startCodeServer();
        const made = await newContext(this.browser);
        this.#contexts.push(made.context);
        return made;
    }

    /**
     * Runs one check named `name`, records ok or the error, then screenshots `page` (or what a
     * function `page` returns). A step whose `needs` (names of earlier steps) did not all pass
     * is recorded as failed without running. Returns whether it passed.
     */
    async step(name, page, fn, { needs = [] } = {}) {
        log(`step: ${name}`);
        const missing = needs.filter((n) => !this.steps.some((s) => s.name === n && s.ok));
        let result;
        if (missing.length > 0) {
            result = { name, ok: false, detail: `not run: needs ${missing.map((n) => JSON.stringify(n)).join(', ')}` };
            log(`FAILED - ${name}: ${result.detail}`);
        } else {
            try {
                const detail = await fn();
                result = { name, ok: true, detail };
                log(`ok - ${name}${detail ? `: ${detail}` : ''}`);
            } catch (err) {
                result = { name, ok: false, detail: err instanceof Error ? err.message : String(err) };
                log(`FAILED - ${name}: ${err instanceof Error ? err.stack : err}`);
            }
        }
        const target = typeof page === 'function' ? page() : page;
        if (target && missing.length === 0) {
            this.#lastPage = target;
            await this.screenshot(target, `${slug(name)}${result.ok ? '' : '-FAILED'}`);
        }
        this.steps.push(result);
        return result.ok;
    }

    /** Saves a screenshot of `page` as <artifacts>/<NN>-<label>.png, NN the number of the running step. */
    async screenshot(page, label) {
        const file = join(this.artifacts, `${String(this.steps.length + 1).padStart(2, '0')}-${label}.png`);
        await page.screenshot({ path: file }).then(
            () => log(`screenshot ${file}`),
            (e) => log(`screenshot failed: ${e}`),
        );
    }

    /**
     * With WTLS_E2E_PICTURES=DIR (`npm run pictures`), saves `locator` as DIR/<name>.png: the
     * README's pictures, taken from the real workbench by the same steps that test it.
     */
    async picture(locator, name) {
        const dir = process.env.WTLS_E2E_PICTURES;
        if (!dir) {
            return;
        }
        mkdirSync(dir, { recursive: true });
        await locator.screenshot({ path: join(dir, `${name}.png`), animations: 'disabled' });
        log(`picture ${join(dir, `${name}.png`)}`);
    }

    /** The page a failure outside any step is best seen on. */
    get lastPage() {
        return this.#lastPage;
    }

    async closeContexts() {
        for (const context of this.#contexts.splice(0)) {
            await context.close().catch(() => {});
        }
    }
}

/**
 * Runs `scenario` (a module with `name` and `run(t)`) from scratch: a fresh sandbox with the
 * .vsix installed, a fresh browser context. Resolves with its name, whether it passed, how
 * long it took and its steps; an error outside any step becomes a failed entry of its own.
 */
export async function runScenario(scenario, { tools, vsix, browser }) {
    const start = elapsed();
    const artifacts = join(ARTIFACTS, scenario.name);
    rmSync(artifacts, { recursive: true, force: true });
    mkdirSync(artifacts, { recursive: true });
    log(`scenario ${scenario.name}: ${scenario.description}`);
    let sandbox;
    let t;
    const steps = [];
    try {
        sandbox = Sandbox.create(scenario.name, tools, vsix, artifacts);
        t = new ScenarioContext(scenario.name, sandbox, browser, steps);
        await scenario.run(t);
        if (steps.length === 0) {
            throw new Error('the scenario ran no step');
        }
    } catch (err) {
        log(`FAILED - scenario ${scenario.name} outside its steps: ${err instanceof Error ? err.stack : err}`);
        if (t?.lastPage) {
            await t.screenshot(t.lastPage, 'error-FAILED');
        }
        steps.push({ name: `${scenario.name}: outside its steps`, ok: false, detail: err instanceof Error ? err.message : String(err) });
    } finally {
        await t?.closeContexts();
        await sandbox?.close().catch((e) => log(`tear-down of ${scenario.name}: ${e}`));
    }
    const seconds = elapsed() - start;
    const ok = steps.every((s) => s.ok);
    log(`scenario ${scenario.name} ${ok ? 'passed' : 'FAILED'} in ${seconds.toFixed(1)} s`);
    return { name: scenario.name, ok, seconds, steps };
}
