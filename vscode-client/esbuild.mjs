// Bundles the extension into dist/extension.js (one file, `vscode` external), or, with
// --tests, compiles the unit tests to out/test/*.test.js for `node --test`.
import * as esbuild from 'esbuild';
import { readdirSync } from 'node:fs';

const args = new Set(process.argv.slice(2));
const production = args.has('--production');

if (args.has('--tests')) {
    const entryPoints = readdirSync('test')
        .filter((f) => f.endsWith('.test.ts'))
        .map((f) => `test/${f}`);
    await esbuild.build({
        entryPoints,
        outdir: 'out/test',
        bundle: true,
        platform: 'node',
        format: 'cjs',
        target: 'node20',
        sourcemap: 'inline',
        // The units under test are pure: a `vscode` import there is a bug the build must catch.
        logLevel: 'warning',
    });
} else {
    const options = {
        entryPoints: ['src/extension.ts'],
        outfile: 'dist/extension.js',
        bundle: true,
        platform: 'node',
        format: 'cjs',
        target: 'node20',
        external: ['vscode'],
        minify: production,
        sourcemap: production ? false : 'linked',
        sourcesContent: false,
        logLevel: 'warning',
    };
    if (args.has('--watch')) {
        const ctx = await esbuild.context(options);
        await ctx.watch();
        console.log('esbuild: watching src/ for changes');
    } else {
        await esbuild.build(options);
    }
}
