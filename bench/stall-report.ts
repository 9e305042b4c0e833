/**
 * Where a series' slowest requests came from: reads `bench/turn-rate.ts --dump` output and the
 * server stall logs of bench/stall-watch.mjs, and for every series of an Anima target lists its
 * requests at or over the series' p99 in clusters (sends under 300 ms apart) with the server stalls
 * logged from 200 ms before a cluster's first send to its last answer.
 *
 *   CHILD_NODE_ARGS="--import $PWD/bench/stall-watch.mjs" npx tsx bench/turn-rate.ts --only embedded --rates 200 --dump /tmp/requests.tsv
 *   npx tsx bench/stall-report.ts /tmp/requests.tsv /tmp/anima-stalls-*-main.tsv
 */
import { readFileSync } from 'node:fs';

const [dumpFile, ...stallFiles] = process.argv.slice(2);
if (!dumpFile) throw new Error('usage: stall-report.ts <requests.tsv> [anima-stalls-<pid>.tsv …]');

interface Stall {
  what: string;
  at: number;
  kind: string;
  ms: number;
}
const stalls: Stall[] = stallFiles.flatMap((file) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [what, at, kind, ms] = line.split('\t');
      return { what: what!, at: Number(at), kind: kind!, ms: Number(ms) };
    }),
);

const series = new Map<string, { start: number; sends: Array<[number, number]> }>();
for (const line of readFileSync(dumpFile, 'utf8').split('\n').filter(Boolean)) {
  const [start, target, rate, mode, , offset, latency] = line.split('\t');
  if (target!.startsWith('direct')) continue;
  const key = `${target} at ${rate} req/s, ${mode} (series started ${start})`;
  const entry = series.get(key) ?? { start: Number(start), sends: [] };
  entry.sends.push([Number(offset), Number(latency)]);
  series.set(key, entry);
}

for (const [key, { start, sends }] of series) {
  const sorted = sends.map(([, latency]) => latency).sort((left, right) => left - right);
  const p99 = sorted[Math.floor(sorted.length * 0.99)]!;
  const slow = sends.filter(([, latency]) => latency >= p99).sort((left, right) => left[0] - right[0]);
  console.log(`${key}: ${sends.length} requests, p50 ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`);
  const clusters: Array<Array<[number, number]>> = [];
  for (const request of slow) {
    const current = clusters.at(-1);
    if (current && request[0] - current.at(-1)![0] < 300) current.push(request);
    else clusters.push([request]);
  }
  for (const cluster of clusters) {
    const from = start + cluster[0]![0] - 200;
    const to = start + Math.max(...cluster.map(([offset, latency]) => offset + latency));
    const near = stalls.filter((stall) => stall.at >= from && stall.at <= to).map((stall) => `${stall.what}${stall.what === 'gc' ? `(${stall.kind})` : ''} ${stall.ms} ms at +${(stall.at - start).toFixed(0)}`);
    console.log(`  sent +${cluster[0]![0].toFixed(0)}…+${cluster.at(-1)![0].toFixed(0)} ms: ${cluster.length} requests, up to ${Math.max(...cluster.map(([, latency]) => latency)).toFixed(0)} ms; server: ${near.join(', ') || 'no stall logged'}`);
  }
}
