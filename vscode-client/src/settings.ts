/**
 * Reads the `wtls.*` settings: what the client itself uses (server command, agent command,
 * where spawn opens) and what is forwarded to the server (initializationOptions; the server
 * then pulls its section per folder through `workspace/configuration`).
 */

import { constants as fsConstants, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { BOOTSTRAP, bundledLibs, findPython, MIN_PYTHON } from './bundledServer';
import { expandServerCommand, withIdleTimeout } from './format';

export const SECTION = 'wtls';

/** Keys of the `wtls` section that the server reads. */
export const SERVER_KEYS = [
    'baseBranch',
    'worktreePathTemplate',
    'branchTemplate',
    'ignore',
    'openCommand',
    'debounceMs',
    'farBehind',
    'conflictPrediction',
    'testOnSettle',
    'pruneNoticeMB',
] as const;

/**
 * Settings that need a server restart when they change (the rest reach it live).
 * `wtls.engine.idleMinutes` needs none: it only matters when a session starts an engine.
 */
export const RESTART_KEYS = ['wtls.server.command', 'wtls.server.args'] as const;

/** The raw values of {@link RESTART_KEYS}, to tell a real change from a spurious event. */
export function serverCommandSignature(): string {
    const cfg = vscode.workspace.getConfiguration(SECTION);
    return JSON.stringify([cfg.get('server.command'), cfg.get('server.args')]);
}

export type OpenIn = 'newWindow' | 'currentWindow';

/** The settings for the server, as sent in `initializationOptions.settings`. */
export function serverSettings(scope?: vscode.ConfigurationScope): Record<string, unknown> {
    const cfg = vscode.workspace.getConfiguration(SECTION, scope);
    const out: Record<string, unknown> = {};
    for (const key of SERVER_KEYS) {
        out[key] = cfg.get(key);
    }
    return out;
}

/** The agent command template (`wtls.agent.command`); empty means "start nothing". */
export function agentCommand(scope?: vscode.ConfigurationScope): string {
    return (vscode.workspace.getConfiguration(SECTION, scope).get<string>('agent.command') ?? '').trim();
}

/** Whether another worktree's agent starting to wait shows a notification (`wtls.agents.notify`). */
export function agentsNotify(): boolean {
    return vscode.workspace.getConfiguration(SECTION).get<boolean>('agents.notify') !== false;
}

/** Where a spawned worktree opens (`wtls.spawn.openIn`). */
export function spawnOpenIn(): OpenIn {
    const v = vscode.workspace.getConfiguration(SECTION).get<string>('spawn.openIn');
    return v === 'currentWindow' ? 'currentWindow' : 'newWindow';
}

/** How to start the server. */
export interface ServerLaunch {
    command: string;
    args: string[];
    cwd: string;
    /** Where the command came from, for the log. */
    source: 'setting' | 'venv' | 'bundled' | 'PATH';
    /** Variables added to the server's environment. */
    env?: Record<string, string>;
}

/** The server command could not be found; the message says where it was looked for. */
export class ServerNotFound extends Error {}

const IS_WINDOWS = process.platform === 'win32';
const EXE = IS_WINDOWS ? 'wtls.exe' : 'wtls';
const VENV_BIN = IS_WINDOWS ? 'Scripts' : 'bin';

async function isExecutable(file: string): Promise<boolean> {
    try {
        const st = await fs.stat(file);
        if (!st.isFile()) {
            return false;
        }
        await fs.access(file, IS_WINDOWS ? fsConstants.F_OK : fsConstants.X_OK);
        return true;
    } catch {
        return false;
    }
}

/**
 * The main worktree of a linked worktree folder, read from its `.git` file
 * (`gitdir: <main>/.git/worktrees/<name>`), so that a spawned worktree finds the venv that
 * lives only in the main checkout. Undefined for anything else.
 */
async function mainCheckoutOf(folder: string): Promise<string | undefined> {
    try {
        const text = await fs.readFile(path.join(folder, '.git'), 'utf8');
        const m = /^gitdir:\s*(.+?)\s*$/m.exec(text);
        if (!m) {
            return undefined;
        }
        const gitdir = path.resolve(folder, m[1]);
        const worktreesDir = path.dirname(gitdir);
        if (path.basename(worktreesDir) !== 'worktrees') {
            return undefined;
        }
        const common = path.dirname(worktreesDir);
        return path.basename(common) === '.git' ? path.dirname(common) : undefined;
    } catch {
        return undefined;
    }
}

async function findOnPath(name: string): Promise<string | undefined> {
    for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
        if (dir && (await isExecutable(path.join(dir, name)))) {
            return path.join(dir, name);
        }
    }
    return undefined;
}

/**
 * Resolves `wtls.server.command` / `wtls.server.args`: the setting if given, else `wtls` from
 * a workspace folder's `.venv`/`venv` (or that of its main worktree), else the server bundled in
 * the .vsix run by a Python >= 3.11, else `wtls` on PATH.
 * For debugging the server (`.vscode/launch.json`), `WTLS_DEBUGPY_PORT` in the extension host's
 * environment runs it under debugpy with the Python next to the `wtls` script.
 */
export async function resolveServerLaunch(extensionPath: string): Promise<ServerLaunch> {
    const launch = await resolvePlainLaunch(extensionPath);
    const port = process.env.WTLS_DEBUGPY_PORT;
    if (!port || path.basename(launch.command).replace(/\.exe$/, '') !== 'wtls') {
        return launch;
    }
    const python = path.join(path.dirname(launch.command), IS_WINDOWS ? 'python.exe' : 'python');
    if (!(await isExecutable(python))) {
        return launch;
    }
    return {
        ...launch,
        command: python,
        args: ['-m', 'debugpy', '--listen', `127.0.0.1:${port}`, '-m', 'wtls', ...launch.args],
    };
}

async function resolvePlainLaunch(extensionPath: string): Promise<ServerLaunch> {
    const cfg = vscode.workspace.getConfiguration(SECTION);
    const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file');
    const first = folders[0]?.uri.fsPath;
    const cwd = first ?? os.homedir();
    const args = withIdleTimeout(
        (cfg.get<unknown[]>('server.args') ?? ['serve']).filter((a): a is string => typeof a === 'string'),
        cfg.get<unknown>('engine.idleMinutes'),
    );
    const configured = (cfg.get<string>('server.command') ?? '').trim();
    if (configured) {
        let command = expandServerCommand(configured, first, os.homedir());
        if (!path.isAbsolute(command) && command.includes('/') && first) {
            command = path.resolve(first, command);
        }
        if (path.isAbsolute(command) && !(await isExecutable(command))) {
            throw new ServerNotFound(`wtls.server.command is set to "${configured}", which is not an executable file.`);
        }
        if (!path.isAbsolute(command) && !(await findOnPath(command))) {
            throw new ServerNotFound(`wtls.server.command is set to "${configured}", which is not on PATH.`);
        }
        return { command, args, cwd, source: 'setting' };
    }
    const looked: string[] = [];
    for (const folder of folders) {
        const roots = [folder.uri.fsPath];
        const main = await mainCheckoutOf(folder.uri.fsPath);
        if (main) {
            roots.push(main);
        }
        for (const root of roots) {
            for (const venv of ['.venv', 'venv']) {
                const candidate = path.join(root, venv, VENV_BIN, EXE);
                looked.push(candidate);
                if (await isExecutable(candidate)) {
                    return { command: candidate, args, cwd, source: 'venv' };
                }
            }
        }
    }
    // The server this extension carries, run by a Python >= 3.11: the exact version it was built with.
    const libs = await bundledLibs(extensionPath);
    let pythons: string[] = [];
    if (libs) {
        const found = await findPython(folders[0]?.uri);
        if (found.python) {
            return {
                command: found.python,
                args: ['-c', BOOTSTRAP, ...args],
                cwd,
                source: 'bundled',
                env: { WTLS_BUNDLED_LIBS: libs },
            };
        }
        pythons = found.tried;
    }
    const onPath = await findOnPath(EXE);
    if (onPath) {
        return { command: onPath, args, cwd, source: 'PATH' };
    }
    if (libs) {
        throw new ServerNotFound(
            `wtls needs Python ${MIN_PYTHON.join('.')} or newer to run the server it ships with, and found none ` +
                `(${pythons.join('; ')}). Install Python ${MIN_PYTHON.join('.')}+ (python.org, or your package manager), ` +
                'or select one with the Python extension, or set wtls.server.command to a wtls you installed.',
        );
    }
    throw new ServerNotFound(
        `The wtls server was not found: no "${EXE}" on PATH` +
            (looked.length > 0 ? ` nor in ${looked.join(', ')}` : '') +
            '. Install wtls into the workspace\'s .venv (in the wtls repository: pip install .), ' +
            'or set wtls.server.command.',
    );
}
