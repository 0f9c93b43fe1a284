/**
 * The task prompt is read with bounds, from real files: a committed link to /dev/zero, a FIFO or a
 * huge file must never hang or mislead the extension. (The spawn record that names the prompt is
 * read by the server: tests/core/test_spawn_record.py.)
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { MAX_SMALL_FILE, readSmallFile } from '../src/spawnInfo';

describe('readSmallFile', () => {
    it('reads a small regular file', async () => {
        const root = await fs.mkdtemp(path.join(os.tmpdir(), 'wtls-prompt-'));
        await fs.writeFile(path.join(root, 'task.md'), 'Do it.\n');
        assert.equal(await readSmallFile(path.join(root, 'task.md')), 'Do it.\n');
    });

    it('never reads a link to /dev/zero, a FIFO, a too large or a missing file', async () => {
        const root = await fs.mkdtemp(path.join(os.tmpdir(), 'wtls-prompt-'));
        await fs.symlink('/dev/zero', path.join(root, 'linked'));
        assert.equal(await readSmallFile(path.join(root, 'linked')), undefined);
        execFileSync('mkfifo', [path.join(root, 'fifo')]);
        assert.equal(await readSmallFile(path.join(root, 'fifo')), undefined);
        await fs.writeFile(path.join(root, 'big'), ' '.repeat(MAX_SMALL_FILE + 1));
        assert.equal(await readSmallFile(path.join(root, 'big')), undefined);
        assert.equal(await readSmallFile(path.join(root, 'missing')), undefined);
    });
});
