/**
 * Precomputes every word's neighbour pool for the built-in word vectors (assets/word-vectors/):
 * memory recall widens its full-text query with the nearest words of the query's words, and finding
 * them is a scan of the whole table, ≈ 8 ms of CPU a word — on the chat turn's thread, for every word
 * the process had not met yet (issue 14, tenth pass). With this file a word's pool is read, not scanned.
 *
 *   npx tsx scripts/build-word-neighbours.ts [--threads 2]
 *
 * Output (deterministic: the same vectors give the same bytes), next to the vectors:
 * - `neighbours.u16.bin`: per word, in the table's order, `NEIGHBOUR_POOL` uint16 little-endian word
 *   rows — its pool as `neighbourPool` (src/providers/embeddings/word-vectors.ts) computes it, nearest
 *   first — padded with 0xffff; all 0xffff for a word without neighbours (a function word, digits);
 * - `neighbours.json`: the format, the sha256 of the `vectors.i8.bin` it was computed from, the pool
 *   size and the function-word rank; the embedder ignores the file when any of them differs.
 * About 4 minutes on 2 cores for 50,000 words.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { FUNCTION_WORD_RANK, hasNeighbours, loadWordVectors, NEIGHBOUR_POOL, neighbourPool, NO_NEIGHBOUR } from '../src/providers/embeddings/word-vectors.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const directory = path.join(root, 'assets', 'word-vectors');

/** The pools of rows [from, to) of the table, as one block of slots. */
function pools(from: number, to: number): Uint16Array {
  const table = loadWordVectors(directory);
  const out = new Uint16Array((to - from) * NEIGHBOUR_POOL).fill(NO_NEIGHBOUR);
  for (let row = from; row < to; row += 1) {
    if (!hasNeighbours(table, row)) continue;
    neighbourPool(table, row).forEach((entry, slot) => (out[(row - from) * NEIGHBOUR_POOL + slot] = entry.row));
  }
  return out;
}

if (!isMainThread) {
  const { from, to } = workerData as { from: number; to: number };
  parentPort!.postMessage(pools(from, to));
} else {
  const index = process.argv.indexOf('--threads');
  const threads = Math.max(1, index >= 0 ? Number(process.argv[index + 1]) : 2);
  const table = loadWordVectors(directory);
  const count = table.words.size;
  if (count > NO_NEIGHBOUR) throw new Error(`${count} words do not fit uint16 rows`);
  const started = performance.now();
  const bounds = Array.from({ length: threads + 1 }, (_, part) => Math.round((count * part) / threads));
  const parts = await Promise.all(
    bounds.slice(0, -1).map(
      (from, part) =>
        new Promise<Uint16Array>((resolve, reject) => {
          // This file is TypeScript: each thread registers tsx's loader before importing it.
          const loader = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(import.meta.url)}); })`;
          const worker = new Worker(loader, { eval: true, workerData: { from, to: bounds[part + 1] } });
          worker.once('message', resolve);
          worker.once('error', reject);
        }),
    ),
  );
  const body = Buffer.alloc(count * NEIGHBOUR_POOL * 2);
  let slot = 0;
  for (const part of parts) for (const value of part) body.writeUInt16LE(value, 2 * slot++);
  const vectors = createHash('sha256').update(readFileSync(path.join(directory, 'vectors.i8.bin'))).digest('hex');
  writeFileSync(path.join(directory, 'neighbours.u16.bin'), body);
  const about = { format: 'anima-word-neighbours/1', build: 'scripts/build-word-neighbours.ts', vectors, pool: NEIGHBOUR_POOL, functionWordRank: FUNCTION_WORD_RANK, sha256: createHash('sha256').update(body).digest('hex') };
  writeFileSync(path.join(directory, 'neighbours.json'), `${JSON.stringify(about)}\n`);
  console.log(`${count} words' neighbour pools in ${((performance.now() - started) / 1000).toFixed(0)} s → ${path.relative(root, directory)}/neighbours.u16.bin (${body.length} bytes)`);
}
