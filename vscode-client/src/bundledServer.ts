/**
 * The server the .vsix carries (`bundled/libs`, made by scripts/bundle-server.mjs) and a Python
 * to run it: the Python extension's interpreter when it is installed, else the first Python
 * >= 3.11 on PATH. Nothing is installed: the libraries are put first on that Python's path.
 */

import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';

/** The oldest Python the server runs on (pyproject.toml's requires-python). */
export const MIN_PYTHON = [3, 11] as const;
/** Pythons looked for on PATH, best first. */
const PATH_PYTHONS = process.platform === 'win32' ? ['python', 'python3'] : ['python3.13', 'python3.12', 'python3.11', 'python3', 'python'];
/** Runs `python -m wtls ARGS` with the bundled libraries ahead of everything else on sys.path. */
export const BOOTSTRAP =
    "import os, runpy, sys; sys.path.insert(0, os.environ['WTLS_BUNDLED_LIBS']); runpy.run_module('wtls', run_name='__main__', alter_sys=True)";

/** Where the bundled libraries are, if this extension was packaged with them. */
export async function bundledLibs(extensionPath: string): Promise<string | undefined> {
    const libs = path.join(extensionPath, 'bundled', 'libs');
    try {
        await fs.access(path.join(libs, 'wtls', '__main__.py'));
        return libs;
    } catch {
        return undefined;
    }
}

/** `major.minor` of a Python executable, or undefined when it does not run. */
export function pythonVersion(command: string): Promise<string | undefined> {
    return new Promise((resolve) => {
        execFile(command, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { timeout: 15_000 }, (err, stdout) => {
            const text = String(stdout).trim();
            resolve(!err && /^\d+\.\d+$/.test(text) ? text : undefined);
        });
    });
}

function isRecentEnough(version: string): boolean {
    const [major, minor] = version.split('.').map(Number);
    return major > MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor >= MIN_PYTHON[1]);
}

/** The Python extension's interpreter for `folder`, when that extension is installed. */
async function pythonExtensionInterpreter(folder: vscode.Uri | undefined): Promise<string | undefined> {
    const extension = vscode.extensions.getExtension('ms-python.python');
    if (!extension) {
        return undefined;
    }
    try {
        type Api = { environments?: { getActiveEnvironmentPath?: (resource?: vscode.Uri) => { path?: string } | undefined } };
        const api = (await extension.activate()) as Api;
        return api.environments?.getActiveEnvironmentPath?.(folder)?.path;
    } catch {
        return undefined;
    }
}

/** A Python >= 3.11 to run the bundled server, or what was tried (for the error message). */
export async function findPython(folder: vscode.Uri | undefined): Promise<{ python?: string; tried: string[] }> {
    const tried: string[] = [];
    const fromExtension = await pythonExtensionInterpreter(folder);
    for (const candidate of [...(fromExtension ? [fromExtension] : []), ...PATH_PYTHONS]) {
        const version = await pythonVersion(candidate);
        const origin = candidate === fromExtension ? ' (the Python extension\'s interpreter)' : '';
        if (version === undefined) {
            tried.push(`${candidate}${origin}: not found`);
        } else if (!isRecentEnough(version)) {
            tried.push(`${candidate}${origin}: Python ${version}, too old`);
        } else {
            return { python: candidate, tried };
        }
    }
    return { tried };
}
