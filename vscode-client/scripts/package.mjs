// `npm run package`: the .vsix for this platform (the bundled server's watchfiles is compiled),
// e.g. wtls-linux-x64-0.1.0.vsix. vsce runs `vscode:prepublish`, which builds and bundles.
import { execFileSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLIENT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const target = `${process.platform}-${process.arch}`;
execFileSync(join(CLIENT_DIR, 'node_modules', '.bin', 'vsce'), ['package', '--no-dependencies', '--target', target, ...process.argv.slice(2)], {
    cwd: CLIENT_DIR,
    stdio: 'inherit',
});
