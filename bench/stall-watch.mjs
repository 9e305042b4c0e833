/**
 * A preload for a benchmark's server (`CHILD_NODE_ARGS="--import $PWD/bench/stall-watch.mjs"`): appends
 * the process's stalls to `<tmpdir>/anima-stalls-<pid>-main.tsv` (worker threads: `-thread<id>`) — every GC pause over 1.5 ms as
 * `kind/flags` the way Node reports them (kind 1 scavenge, 4 mark-compact, 8 incremental marking,
 * 16 weak callbacks; flags in `perf_hooks.constants`, e.g. 32 all external memory, 64 schedule idle)
 * and every event-loop lag over 5 ms (a 10 ms timer that fired late) — as
 * `gc|lag <TAB> epoch ms <TAB> kind/flags or - <TAB> ms`. bench/stall-report.ts sets them beside the slow
 * requests of `bench/turn-rate.ts --dump`. Costs a timer every 10 ms; for investigations, not figures.
 */
import { appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { setInterval } from 'node:timers';
import { isMainThread, threadId } from 'node:worker_threads';

// Preloads run in worker threads too (the embedded database's thread): each thread gets its own file.
const out = path.join(tmpdir(), `anima-stalls-${process.pid}-${isMainThread ? 'main' : `thread${threadId}`}.tsv`);
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (entry.duration > 1.5) appendFileSync(out, `gc\t${(performance.timeOrigin + entry.startTime).toFixed(0)}\t${entry.detail?.kind ?? '?'}/${entry.detail?.flags ?? 0}\t${entry.duration.toFixed(1)}\n`);
  }
}).observe({ entryTypes: ['gc'] });
let last = performance.now();
setInterval(() => {
  const now = performance.now();
  const lag = now - last - 10;
  if (lag > 5) appendFileSync(out, `lag\t${(performance.timeOrigin + last).toFixed(0)}\t-\t${lag.toFixed(1)}\n`);
  last = now;
}, 10).unref();
