// Puts the wtls server and its Python dependencies into bundled/libs (pip install --target), so
// the .vsix runs the server with any Python >= 3.11 and nothing installed: the layout of
// Microsoft's Python-tools extension template. Run by `vscode:prepublish` (so by `npm run
// package` and `vsce package`). The Python used: $WTLS_BUNDLE_PYTHON, else the repository's
// .venv, else python3. watchfiles is the one compiled dependency (an abi3 wheel, one per
// platform): the .vsix is per platform (scripts/package.mjs passes --target).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLIENT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const REPO_ROOT = resolve(CLIENT_DIR, '..');
const LIBS = join(CLIENT_DIR, 'bundled', 'libs');

function python() {
    if (process.env.WTLS_BUNDLE_PYTHON) {
        return process.env.WTLS_BUNDLE_PYTHON;
    }
    const venv = join(REPO_ROOT, '.venv', process.platform === 'win32' ? 'Scripts/python.exe' : 'bin/python');
    return existsSync(venv) ? venv : 'python3';
}

const py = python();
try {
    execFileSync(py, ['-c', 'import sys, pip; assert sys.version_info >= (3, 11)'], { stdio: 'ignore' });
} catch {
    throw new Error(`${py} is not a Python >= 3.11 with pip: set WTLS_BUNDLE_PYTHON to one (or make the repository's .venv)`);
}
rmSync(join(CLIENT_DIR, 'bundled'), { recursive: true, force: true });
mkdirSync(LIBS, { recursive: true });
console.log(`bundling the wtls server into ${LIBS} with ${py}`);
execFileSync(
    py,
    ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-compile', '--only-binary', ':all:', '--target', LIBS, REPO_ROOT],
    { stdio: ['ignore', 'inherit', 'inherit'] },
);
// Console scripts carry the packaging machine's interpreter path: useless elsewhere.
rmSync(join(LIBS, 'bin'), { recursive: true, force: true });
const version = execFileSync(py, ['-c', 'import sys; sys.path.insert(0, sys.argv[1]); import wtls; print(wtls.__version__)', LIBS], {
    encoding: 'utf8',
}).trim();
const packages = readdirSync(LIBS).filter((f) => f.endsWith('.dist-info'));
for (const needed of ['wtls-', 'pygls-', 'watchfiles-']) {
    if (!packages.some((p) => p.startsWith(needed))) {
        throw new Error(`bundled/libs lacks ${needed}*: ${packages.join(', ')}`);
    }
}
writeFileSync(join(CLIENT_DIR, 'bundled', 'manifest.json'), JSON.stringify({ wtls: version, packages }, null, 2) + '\n');
console.log(`bundled wtls ${version}: ${packages.join(', ')}`);
