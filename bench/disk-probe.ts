/**
 * A disk-latency probe for the rate benchmarks (issue 14, thirteenth pass). PostgreSQL acknowledges a
 * commit only once its WAL is on disk (fsync on, synchronous_commit on — the durability the crash
 * test holds Anima to), so a stall of the machine's disk is a stall of every turn committing then.
 * This thread writes 8 KB and `fdatasync`s it every `intervalMs` to a scratch file on the file system
 * of `directory` (use the database's), and keeps each sync's start and duration, so that a series'
 * slow requests can be set beside the disk's own slow syncs. A thread, so that a stalled sync never
 * holds the load generator's event loop.
 */
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

export interface DiskProbe {
  /** Syncs that started in [from, to) (performance.timeOrigin-based epoch ms): how many, the slowest, and how many took over `slowMs`. */
  between(from: number, to: number, slowMs?: number): { syncs: number; slowestMs: number; slow: number };
  stop(): Promise<void>;
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { openSync, writeSync, fdatasyncSync, closeSync } = require('node:fs');
const fd = openSync(workerData.file, 'w');
const block = Buffer.alloc(8192, 7);
let stopped = false;
parentPort.on('message', () => { stopped = true; });
const tick = () => {
  if (stopped) { closeSync(fd); parentPort.postMessage({ done: true }); return; }
  const startedAt = performance.timeOrigin + performance.now();
  writeSync(fd, block, 0, block.length, 0);
  fdatasyncSync(fd);
  parentPort.postMessage({ at: startedAt, ms: performance.timeOrigin + performance.now() - startedAt });
  setTimeout(tick, workerData.intervalMs);
};
tick();
`;

/**
 * `stallFile`: syncs over 5 ms are also appended there in bench/stall-watch.mjs's format (`disk`, epoch
 * ms, `fdatasync`, ms), for bench/stall-report.ts to set beside a series' slow requests.
 */
export function startDiskProbe(directory: string, options: { intervalMs?: number; stallFile?: string } = {}): DiskProbe {
  const intervalMs = options.intervalMs ?? 20;
  const scratch = mkdtempSync(path.join(directory, 'anima-disk-probe-'));
  const samples: Array<{ at: number; ms: number }> = [];
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file: path.join(scratch, 'probe'), intervalMs } });
  let finished: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finished = resolve));
  worker.on('message', (message: { at?: number; ms?: number; done?: boolean }) => {
    if (message.done) finished();
    else {
      samples.push({ at: message.at!, ms: message.ms! });
      if (options.stallFile && message.ms! > 5) appendFileSync(options.stallFile, `disk\t${message.at!.toFixed(0)}\tfdatasync\t${message.ms!.toFixed(1)}\n`);
    }
  });
  worker.on('error', () => finished());
  worker.on('exit', () => finished());
  return {
    between(from, to, slowMs = 50) {
      let syncs = 0;
      let slowestMs = 0;
      let slow = 0;
      for (const sample of samples) {
        // A sync still running when the window closed counts in it too (it started inside).
        if (sample.at < from || sample.at >= to) continue;
        syncs += 1;
        slowestMs = Math.max(slowestMs, sample.ms);
        if (sample.ms > slowMs) slow += 1;
      }
      return { syncs, slowestMs, slow };
    },
    async stop() {
      worker.postMessage('stop');
      await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      await worker.terminate();
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}
