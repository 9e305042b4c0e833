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
 *
 * A second table (sixteenth pass) sets every young collection beside the young generation's size when it
 * ran (V8 shrinks it after a major collection and grows it again 1 → 2 → 4 → 8 → 16 MB): how long the
 * program ran between collections and what share of the bytes allocated in that time was still alive. A
 * share that stays the same from a 40 ms interval to a 450 ms one says the survivors are objects that
 * live longer than either (caches, queues), not a turn that happened to be in flight.
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

console.log('\nYoung collections under load (over 5 MB allocated a second), by the young generation\'s size:\n');
console.log('| file | MB allocated between | collections | ms of program between (mean) | KB kept young each | kept young, % of allocated | KB promoted each |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
const buckets: Array<[number, number, string]> = [
  [0.5e6, 1.5e6, '0.5–1.5'],
  [1.5e6, 3e6, '1.5–3'],
  [3e6, 6e6, '3–6'],
  [6e6, 12e6, '6–12'],
  [12e6, Number.POSITIVE_INFINITY, '12 and over'],
];
for (const file of files) {
  // Under load only: the program allocating over 5 MB a second since the last collection (idle gaps between series and
  // the start, whose survivors are the modules being loaded, left out).
  const young = collections(readFileSync(file, 'utf8'), 's').filter((row) => (row.allocated ?? 0) / Math.max(row.mutator ?? 0, 1) > 5_000);
  for (const [low, high, label] of buckets) {
    const rows = young.filter((row) => (row.allocated ?? 0) >= low && (row.allocated ?? 0) < high);
    if (rows.length === 0) continue;
    const share = (100 * rows.reduce((sum, row) => sum + (row.new_space_survived ?? 0), 0)) / rows.reduce((sum, row) => sum + (row.allocated ?? 0), 0);
    console.log(
      `| ${file} | ${label} | ${rows.length} | ${mean(rows, 'mutator').toFixed(0)} | ${(mean(rows, 'new_space_survived') / 1e3).toFixed(0)} | ${share.toFixed(1)} | ${(mean(rows, 'promoted') / 1e3).toFixed(0)} |`,
    );
  }
}
