// What a scenario runs against: the tools (code-server, the wtls server, Chromium, the built
// .vsix), throwaway repositories with worktrees, the user settings, and code-server processes
// started in their own process group and always stopped. Knows nothing of the browser.

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { CLIENT_DIR, REPO_ROOT, TIMEOUT, log, sleep } from './common.mjs';

const CODE_SERVER_VERSION = '4.100.3';

// --- the tools -------------------------------------------------------------------------------
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

/** code-server, the `wtls` executable and Chromium, from the environment or where setup puts them. */
export function findTools() {
    return {
        codeServer: codeServerPath(),
        wtls: serverPath(),
        chromium: process.env.CHROMIUM ?? need(which('chromium') ?? which('chromium-browser'), 'chromium'),
    };
}

/** Builds the .vsix into `outDir` (not the checkout, which a developer may be packaging too). */
export function buildVsix(outDir) {
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

// --- the test repositories --------------------------------------------------------------------
export const GIT_ENV = {
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

export function git(cwd, ...args) {
    return execFileSync('git', args, { cwd, env: { ...process.env, ...GIT_ENV }, encoding: 'utf8' });
}

export const CLI_PY = `"""tasks-app: a tiny task list."""
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

/**
 * tasks-app (main), tasks-app-wipe (feature/wipe, one commit ahead) and tasks-app-remaining
 * (feature/remaining); notes-app (main) and notes-app-draft (feature/draft, one commit ahead),
 * for a multi-root workspace.
 */
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

/** feature/remaining edits (uncommitted) the same usage line as feature/wipe's commit. */
export function writeConflictingEdit(repo) {
    writeFileSync(join(repo.remaining, 'cli.py'), CLI_PY.replace('add|list|done"', 'add|list|done|remaining"'));
}

/** The "agent" prints a marker it computes (so only its output, not the echo, holds it) and its task. */
export const AGENT_MARKER = 'AGENT-42';

function userSettings(wtls) {
    return {
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
        'wtls.agent.command': 'echo AGENT-$((6*7)) {branch}; cat {promptFile}',
    };
}

// --- code-server ------------------------------------------------------------------------------
/** Every code-server started and not yet stopped, so a signal can stop them all. */
const live = new Set();

function killGroup(cs, signal) {
    try {
        process.kill(-cs.pid, signal);
    } catch {
        // already gone
    }
}

/** Stops every code-server's whole process group (its file watcher, pty host and shells too). */
export function killAllCodeServers(signal) {
    for (const cs of live) {
        killGroup(cs, signal);
    }
    live.clear();
}

/**
 * One scenario's throwaway world in its own temp dir: HOME, user data (settings, logs),
 * extensions (the .vsix installed), the repositories, and the code-servers it started.
 */
export class Sandbox {
    static create(name, tools, vsix, artifacts) {
        const tmp = mkdtempSync(join(tmpdir(), `wtls-e2e-${name}-`));
        const sandbox = new Sandbox(tmp, tools, artifacts);
        try {
            sandbox.#init(vsix);
        } catch (err) {
            sandbox.#removeTmp();
            throw err;
        }
        return sandbox;
    }

    #running = [];
    #csLog = [];

    constructor(tmp, tools, artifacts) {
        this.tmp = tmp;
        this.tools = tools;
        this.artifacts = artifacts;
        this.dirs = {
            home: join(tmp, 'home'),
            userData: join(tmp, 'user-data'),
            extensions: join(tmp, 'extensions'),
            work: join(tmp, 'work'),
        };
        this.env = {
            ...process.env,
            HOME: this.dirs.home,
            // Keeps this PATH in the extension host instead of a login shell's.
            VSCODE_CLI: '1',
            ...GIT_ENV,
        };
        delete this.env.GIT_AUTHOR_DATE;
        delete this.env.GIT_COMMITTER_DATE;
        this.common = ['--user-data-dir', this.dirs.userData, '--extensions-dir', this.dirs.extensions, '--config', join(tmp, 'config.yaml')];
    }

    #init(vsix) {
        for (const d of Object.values(this.dirs)) {
            mkdirSync(d, { recursive: true });
        }
        this.repo = makeRepository(this.dirs.work);
        log(`repository: ${this.repo.main} (+ ${this.repo.wipe}, ${this.repo.remaining})`);
        mkdirSync(join(this.dirs.userData, 'User'), { recursive: true });
        writeFileSync(join(this.dirs.userData, 'User', 'settings.json'), JSON.stringify(userSettings(this.tools.wtls), null, 2));
        execFileSync(this.tools.codeServer, [...this.common, '--install-extension', vsix], {
            env: this.env,
            stdio: ['ignore', 'ignore', 'inherit'],
        });
    }

    /**
     * Makes this sandbox a machine where wtls is not installed: no `wtls.server.command` setting
     * and no folder holding a `wtls` executable on PATH (the .vsix's bundled server must do).
     * Call before the first `openFolder`. Returns the PATH folders dropped.
     */
    withoutInstalledServer() {
        const file = join(this.dirs.userData, 'User', 'settings.json');
        const settings = JSON.parse(readFileSync(file, 'utf8'));
        delete settings['wtls.server.command'];
        writeFileSync(file, JSON.stringify(settings, null, 2));
        const dirs = (this.env.PATH ?? '').split(delimiter);
        const dropped = dirs.filter((d) => d && existsSync(join(d, 'wtls')));
        this.env.PATH = dirs.filter((d) => !dropped.includes(d)).join(delimiter);
        return dropped;
    }

    /** Runs the wtls CLI (as a user would in a terminal) in `cwd`; returns its output. */
    wtls(cwd, ...args) {
        return execFileSync(this.tools.wtls, args, { cwd, env: this.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    }

    /**
     * Starts code-server in its own process group; resolves once it answers /healthz. Workspace
     * Trust is off (every folder trusted) unless `trust` is true: then a dialog asks.
     */
    async startCodeServer({ trust = false } = {}) {
        const extraArgs = trust ? [] : ['--disable-workspace-trust'];
        const port = await freePort();
        const url = `http://127.0.0.1:${port}`;
        log(`starting code-server on ${url} ${extraArgs.join(' ')}`);
        const cs = spawn(
            this.tools.codeServer,
            [
                ...this.common,
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
            { env: this.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
        );
        live.add(cs);
        this.#running.push(cs);
        cs.stdout.on('data', (d) => this.#csLog.push(String(d)));
        cs.stderr.on('data', (d) => this.#csLog.push(String(d)));
        const deadline = Date.now() + TIMEOUT;
        for (;;) {
            try {
                if ((await fetch(`${url}/healthz`)).ok) {
                    return { pid: cs.pid, url };
                }
            } catch {
                // not listening yet
            }
            if (cs.exitCode !== null || Date.now() > deadline) {
                throw new Error(`code-server did not start:\n${this.#csLog.join('')}`);
            }
            await sleep(200);
        }
    }

    /** Stops its code-servers, keeps their logs in `artifacts`, removes the temp dir (unless WTLS_E2E_KEEP=1). */
    async close() {
        for (const cs of this.#running) {
            killGroup(cs, 'SIGTERM');
        }
        await sleep(500);
        for (const cs of this.#running.splice(0)) {
            killGroup(cs, 'SIGKILL');
            live.delete(cs);
        }
        try {
            mkdirSync(this.artifacts, { recursive: true });
            writeFileSync(join(this.artifacts, 'code-server.log'), this.#csLog.join(''));
            copyExtensionLogs(this.dirs.userData, this.artifacts);
        } finally {
            this.#removeTmp();
        }
    }

    #removeTmp() {
        if (process.env.WTLS_E2E_KEEP === '1') {
            log(`kept ${this.tmp}`);
        } else {
            rmSync(this.tmp, { recursive: true, force: true });
        }
    }
}

/**
 * Pids of wtls servers in code-server's process group whose working directory is `cwd`. A
 * server's own children (a fork about to exec git still shows the server's command line) are
 * left out.
 */
export function serverPids(pgid, wtls, cwd) {
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

function findLogs(userData, test) {
    const found = [];
    const walk = (dir) => {
        for (const e of readdirSync(dir, { withFileTypes: true })) {
            const p = join(dir, e.name);
            if (e.isDirectory()) {
                walk(p);
            } else if (test(e.name, p)) {
                found.push(p);
            }
        }
    };
    const logs = join(userData, 'logs');
    if (existsSync(logs)) {
        walk(logs);
    }
    return found;
}

/** Waits until the wtls output channel logs (of windows whose log path contains `only`) satisfy `predicate`. */
export async function waitForLog(userData, predicate, what, only = 'exthost1') {
    const deadline = Date.now() + TIMEOUT;
    let text = '';
    while (Date.now() < deadline) {
        const logs = findLogs(userData, (name, p) => name === 'wtls.log' && p.includes(only));
        text = logs.map((p) => readFileSync(p, 'utf8')).join('\n');
        if (predicate(text)) {
            return text;
        }
        await sleep(250);
    }
    throw new Error(`timed out waiting for ${what}; log:\n${text.slice(-2000)}`);
}

/** Copies the extension's output channel logs and the extension hosts' logs into `toDir`. */
function copyExtensionLogs(userData, toDir) {
    findLogs(userData, (name) => /wtls\.log$|exthost\.log$/.test(name)).forEach((p, i) => {
        const name = p.endsWith('exthost.log') ? `exthost-${i}.log` : `wtls-output-${i}.log`;
        writeFileSync(join(toDir, name), readFileSync(p));
    });
}
