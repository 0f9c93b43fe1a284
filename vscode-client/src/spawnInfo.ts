/**
 * The spawn record a window reads to start its agent: `.wtls/spawn.json` and the task prompt it
 * names, read with bounds (no vscode import, so it is unit-tested under node).
 */

import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** Where spawn records its work, relative to the worktree (wtls.lifecycle.SPAWN_INFO_FILE). */
export const SPAWN_INFO_FILE = '.wtls/spawn.json';

/** The parts of `.wtls/spawn.json` the agent launch needs. */
export interface SpawnInfo {
    branch: string;
    promptFile: string;
    created: string;
}

/** The most wtls reads of a spawn record or a task prompt (a committed link could name /dev/zero). */
export const MAX_SMALL_FILE = 1024 * 1024;

/**
 * Reads a small regular file (not a link, FIFO or device), at most {@link MAX_SMALL_FILE} bytes;
 * undefined otherwise.
 */
export async function readSmallFile(file: string): Promise<string | undefined> {
    try {
        const info = await fs.lstat(file);
        if (!info.isFile() || info.size > MAX_SMALL_FILE) {
            return undefined;
        }
        return await fs.readFile(file, 'utf8');
    } catch {
        return undefined;
    }
}

/**
 * Reads a worktree's spawn record; undefined when it has none, no task prompt, or one that is not
 * a small file inside the worktree's `.wtls/` folder (where spawn writes it).
 */
export async function readSpawnInfo(worktree: string): Promise<SpawnInfo | undefined> {
    const text = await readSmallFile(path.join(worktree, SPAWN_INFO_FILE));
    if (text === undefined) {
        return undefined;
    }
    try {
        const raw = JSON.parse(text) as Record<string, unknown>;
        if (typeof raw.promptFile !== 'string' || raw.promptFile === '') {
            return undefined;
        }
        const promptFile = path.resolve(worktree, raw.promptFile);
        const own = path.join(path.resolve(worktree), path.dirname(SPAWN_INFO_FILE)) + path.sep;
        if (!promptFile.startsWith(own)) {
            return undefined;
        }
        return {
            branch: typeof raw.branch === 'string' ? raw.branch : path.basename(worktree),
            promptFile,
            created: typeof raw.created === 'string' ? raw.created : '',
        };
    } catch {
        return undefined;
    }
}

