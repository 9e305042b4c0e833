/** Pieces the benchmarks share: the build their servers run, ports, CPU readings, the machine line and closed-loop runs. */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { projectFile } from '../src/infra/project-files.js';

/**
 * Benchmarks run Anima's bundle as `npm start` does, without `--enable-source-maps`, which test children
 * keep for their stack traces (test/helpers/child-server.ts). Measured (issue 14, sixteenth pass): the
 * source maps were ≈ 10 MB of a loaded server's heap after a major collection (70.0 against 59.6 MB).
 */
process.env.CHILD_SOURCE_MAPS ??= '0';

/**
 * Idle keep-alive of the benchmarks' upstream fakes. Vendors keep idle connections open for tens of
 * seconds; the fakes' test default (1 s) makes undici-based clients (Node's fetch, Portkey, Anima)
 * open a new connection per request, which measured connection set-up instead of the gateways.
 */
export const VENDOR_KEEP_ALIVE_MS = 60_000;

/**
 * Builds dist/ (scripts/build.mjs, esbuild, a few seconds): test/helpers/child-server.ts starts
 * `dist/src/<entry>.js`, so a benchmark measures the sources as they are, not an older bundle.
 */
export function buildAnima(): void {
  execFileSync(process.execPath, [projectFile('scripts', 'build.mjs')], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** A TCP port free at the time of asking, on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** CPU time (ms) of a process and all its descendants, from /proc. */
export function treeCpuMs(rootPid: number): number {
  const ticks = 100; // USER_HZ on Linux
  const parents = new Map<number, number>();
  const cpu = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parents.set(Number(entry), Number(fields[1]));
      cpu.set(Number(entry), Number(fields[11]) + Number(fields[12]));
    } catch {
      // the process ended while we looked
    }
  }
  let total = 0;
  const queue = [rootPid];
  while (queue.length > 0) {
    const pid = queue.pop()!;
    total += cpu.get(pid) ?? 0;
    for (const [child, parent] of parents) if (parent === pid) queue.push(child);
  }
  return (total * 1000) / ticks;
}

/**
 * CPU time (ms) of every process whose command name is one of `names` (e.g. the PostgreSQL server and
 * its backends, `postgres`; Redis, `redis-server`), from /proc: services a target uses on this machine.
 */
export function namedCpuMs(names: readonly string[]): number {
  if (names.length === 0) return 0;
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (!names.includes(name)) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += Number(fields[11]) + Number(fields[12]);
    } catch {
      // the process ended while we looked
    }
  }
  return (total * 1000) / 100;
}

/** CPU time (ms, user + system) this process has used so far. */
export function ownCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/** One line naming the machine a run's figures come from: cores, CPU model, Node, platform and the load when it started. */
export function machineLine(): string {
  const cores = cpus();
  const model = cores[0]?.model.trim() ?? 'unknown CPU';
  const load = loadavg().map((value) => value.toFixed(2)).join(' ');
  return `Machine: ${cores.length} cores (${model}), Node ${process.version}, ${process.platform} ${process.arch}; load average at the start ${load}.`;
}

/** The command that produced a run, as typed (tsx and the script's path relative to the project). */
export function commandLine(script: string): string {
  const args = process.argv.slice(2).map((argument) => (/^[\w,./:=@-]+$/.test(argument) ? argument : `'${argument.replace(/'/g, `'\\''`)}'`));
  return ['npx tsx', `bench/${script}`, ...args].join(' ');
}

export interface ClosedLoopOptions {
  latencyMs: number;
  concurrency: number;
  requestCount: number;
  warmupCount: number;
  databaseUrl: string | undefined;
  card: 'short' | 'long';
  memories: number;
}

/** The options of the closed-loop benchmarks (chat-overhead, tts-first-byte): fake latency, workers, requests, warm-up, a PostgreSQL database instead of the embedded default, the character's card size and the memories per user. */
export function closedLoopOptions(defaults: { latency: string; concurrency: string; requests: string; warmup: string }): ClosedLoopOptions {
  const { values } = parseArgs({
    options: {
      latency: { type: 'string', default: defaults.latency },
      concurrency: { type: 'string', default: defaults.concurrency },
      requests: { type: 'string', default: defaults.requests },
      warmup: { type: 'string', default: defaults.warmup },
      /** Run the server on this PostgreSQL database instead of the embedded default. */
      'database-url': { type: 'string' },
      /** The bench character's card: short (one line) or long (the size of a real Character Card, ≈ 1,600 tokens). */
      card: { type: 'string', default: 'short' },
      /** Memories imported for every bench user (and half as many core memories) before the run; 0: none. */
      memories: { type: 'string', default: '0' },
    },
  });
  if (values.card !== 'short' && values.card !== 'long') throw new Error('--card takes short or long');
  return {
    latencyMs: Number(values.latency),
    concurrency: Number(values.concurrency),
    requestCount: Number(values.requests),
    warmupCount: Number(values.warmup),
    databaseUrl: values['database-url'],
    card: values.card,
    memories: Number(values.memories),
  };
}

/** Runs `count` tasks on `concurrency` workers, each taking the next index when its last task ends. */
export async function closedLoop(concurrency: number, count: number, task: (worker: number, index: number) => Promise<void>): Promise<{ wallMs: number }> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (next < count) {
        const index = next++;
        await task(worker, index);
      }
    }),
  );
  return { wallMs: performance.now() - started };
}

/**
 * `cleanUp` made to run once: call the returned function at the end of the run (in `finally`); it also runs when
 * the run is cut short by SIGINT or SIGTERM (Ctrl-C, `timeout`), and the process then exits 130 — servers stopped,
 * scratch databases dropped, Redis keys deleted (issue 14, fifteenth pass: a killed turn-rate left them behind).
 * `on`, not `once`: `timeout` signals the whole process group and tsx relays the signal again, so a second one
 * arrives while cleaning up, and with no listener left it would kill the process halfway through.
 */
export function cleanUpOnce(name: string, cleanUp: () => Promise<void>): () => Promise<void> {
  let cleaned: Promise<void> | undefined;
  const once = () => (cleaned ??= cleanUp());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (cleaned) return;
      console.error(`${name}: ${signal}, cleaning up before exiting`);
      void once().finally(() => process.exit(130));
    });
  }
  return once;
}
