/**
 * The spawn record is read with bounds, from real files: a committed link to /dev/zero, a FIFO or
 * a prompt outside the worktree's `.wtls/` must never hang or mislead the extension.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { MAX_SMALL_FILE, readSmallFile, readSpawnInfo, SPAWN_INFO_FILE } from '../src/spawnInfo';

async function worktree(record: unknown): Promise<string> {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'wtls-spawninfo-'));
    await fs.mkdir(path.join(root, '.wtls'));
    if (record !== undefined) {
        await fs.writeFile(path.join(root, SPAWN_INFO_FILE), JSON.stringify(record));
    }
    return root;
}

describe('readSpawnInfo', () => {
    it('reads a record whose prompt lies in .wtls/', async () => {
        const root = await worktree({ branch: 'agent/x', promptFile: '.wtls/task.md', created: 't' });
        const info = await readSpawnInfo(root);
        assert.deepEqual(info, { branch: 'agent/x', promptFile: path.join(root, '.wtls', 'task.md'), created: 't' });
    });

    it('ignores a prompt file outside .wtls/', async () => {
        for (const promptFile of ['/dev/zero', '../outside.md', 'README.md', '.wtls/../x.md']) {
            const root = await worktree({ branch: 'agent/x', promptFile });
            assert.equal(await readSpawnInfo(root), undefined, promptFile);
        }
    });

    it('never reads a record that is a link to /dev/zero, a FIFO or too large', async () => {
        const linked = await worktree(undefined);
        await fs.symlink('/dev/zero', path.join(linked, SPAWN_INFO_FILE));
        assert.equal(await readSpawnInfo(linked), undefined);
        const fifo = await worktree(undefined);
        execFileSync('mkfifo', [path.join(fifo, SPAWN_INFO_FILE)]);
        assert.equal(await readSpawnInfo(fifo), undefined);
        const big = await worktree(undefined);
        await fs.writeFile(path.join(big, SPAWN_INFO_FILE), ' '.repeat(MAX_SMALL_FILE + 1));
        assert.equal(await readSpawnInfo(big), undefined);
        assert.equal(await readSmallFile(path.join(big, 'missing')), undefined);
    });
});
