// The runtime build: esbuild bundles the four entry points into dist/src/ in seconds.
// Type checking is separate (`npm run typecheck`, tsc --noEmit): esbuild only strips types.
//
// Every package under node_modules stays external (imported at run time, not bundled): native and
// optional parts (PGlite's WebAssembly, onnxruntime-node via @huggingface/transformers, BullMQ's
// msgpackr-extract) load from where npm put them. Data files (drizzle/, config/, package.json) are
// read from the project root, which src/infra/project-files.ts finds by walking up from dist/src/.
import { rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, 'dist', 'src');
// The four programs, and the embedded database's worker thread (src/infra/db/pglite-thread.ts → dist/src/pglite-thread.js).
const entryPoints = [
  ...['server', 'worker', 'cli', 'bot'].map((name) => ({ in: path.join(root, 'src', `${name}.ts`), out: name })),
  { in: path.join(root, 'src', 'infra', 'db', 'pglite-thread.ts'), out: 'pglite-thread' },
];

const started = performance.now();
process.stderr.write('Building Anima with esbuild (src/server.ts, src/worker.ts, src/cli.ts, src/bot.ts and the database thread → dist/src/)…\n');
rmSync(path.join(root, 'dist'), { recursive: true, force: true });
const result = await build({
  entryPoints,
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  chunkNames: 'chunks/[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
});
const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
const modules = Object.keys(result.metafile.inputs).length;
process.stderr.write(`Built ${modules} modules into dist/ (${Math.round(bytes / 1024)} KiB) in ${((performance.now() - started) / 1000).toFixed(1)} s.\n`);
