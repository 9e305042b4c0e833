/**
 * Garbage collection of a benchmark's server, from V8's own per-collection lines (issue 14, fifteenth
 * pass): run a benchmark with
 *
 *   CHILD_STDOUT_FILE=/tmp/gc.txt CHILD_NODE_ARGS=--trace-gc-nvp npx tsx bench/turn-rate.ts --only postgres --rates 200 --seconds 20 --search 200
 *
 * then `npx tsx bench/gc-report.ts /tmp/gc.txt [more files…]`. For each file: the young generation's
 * collections that ran on a full young generation (the steady state under load: allocated since the
 * last over 10 MB) — bytes allocated between them, promoted to the old generation and kept young, and
 * their pauses; and the major (mark-compact) collections of a heap over 50 MB, not those V8 runs to
 * shrink an idle heap — pause, the helper threads' marking CPU, heap after. The first counts what a
 * turn leaves behind; the second what the heap's size costs.
 */
import { readFileSync } from 'node:fs';

type Fields = Record<string, number>;

function collections(text: string, kind: 's' | 'mc'): Fields[] {
  return text
    .split('\n')
    .filter((line) => line.includes(` gc=${kind} `))
    .map((line) => Object.fromEntries([...line.matchAll(/([\w.]+)=([\d.]+)(?=\s|$)/g)].map((match) => [match[1]!, Number(match[2])])));
}

const mean = (rows: Fields[], key: string) => rows.reduce((sum, row) => sum + (row[key] ?? 0), 0) / rows.length;
const percentile = (values: number[], q: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))] ?? 0;

const files = process.argv.slice(2);
if (files.length === 0) throw new Error('usage: npx tsx bench/gc-report.ts <file of --trace-gc-nvp lines>…');
console.log('| file | young collections (full) | MB allocated between | KB promoted each | KB kept young each | pause mean / p50 / max (ms) | major collections | pause mean / max (ms) | helper marking ms each | heap after (MB) |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  const young = collections(text, 's').filter((row) => (row.allocated ?? 0) > 10e6);
  const major = collections(text, 'mc').filter((row) => row.reduce_memory !== 1 && (row.total_size_after ?? 0) > 50e6);
  const pauses = young.map((row) => row.pause ?? 0);
  const majorPauses = major.map((row) => row.pause ?? 0);
  console.log(
    `| ${file} | ${young.length} | ${(mean(young, 'allocated') / 1e6).toFixed(2)} | ${(mean(young, 'promoted') / 1e3).toFixed(0)} | ${(mean(young, 'new_space_survived') / 1e3).toFixed(0)} | ` +
      `${mean(young, 'pause').toFixed(2)} / ${percentile(pauses, 0.5).toFixed(1)} / ${Math.max(0, ...pauses).toFixed(1)} | ${major.length} | ` +
      `${mean(major, 'pause').toFixed(1)} / ${Math.max(0, ...majorPauses).toFixed(1)} | ${mean(major, 'background.mark').toFixed(0)} | ${(mean(major, 'total_size_after') / 1e6).toFixed(1)} |`,
  );
}
