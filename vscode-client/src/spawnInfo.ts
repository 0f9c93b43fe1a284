/**
 * Reading the task prompt a window shows when it starts its agent, with bounds (no vscode
 * import, so it is unit-tested under node). The spawn record that names the prompt is read by
 * the server and arrives in the worktree payload (`spawn`).
 */

import { promises as fs } from 'node:fs';

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
