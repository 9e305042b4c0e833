/**
 * A character turn at fixed request rates, side by side with a bare gateway (issue 14). One run
 * drives POST /v1/chat/completions open-loop (each request leaves at its scheduled time, whatever
 * the earlier ones do; latency counts from that time) against a loopback OpenAI-compatible fake
 * that answers at once, through:
 *   (a) nothing: the fake called directly (the baseline),
 *   (b) Portkey's open-source gateway (@portkey-ai/gateway, its own process) pointed at the fake,
 *   (c) Anima on the embedded default (its own process),
 *   (d) Anima on PostgreSQL + Redis (its own process; a scratch database), unless --no-postgres.
 * Per target and rate: added p50/p99 over direct, errors, the achieved rate; then time to first
 * token (streamed) at the first rate, the highest rate sustained without errors, and CPU per
 * request of the target's process tree (from /proc).
 *
 *   npx tsx bench/turn-rate.ts [--rates 100,200,500] [--seconds 4] [--search 100,200,300,500,750,1000]
 *                              [--database-url postgres://postgres@127.0.0.1:5432] [--redis-url redis://127.0.0.1:6379] [--no-postgres]
 *
 * Anima's turns are full turns: auth, character, key, history, memory recall, storage and metering
 * (bench users on the enterprise plan: limits on, but not reached). Memory formation is deferred.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createScratchDatabase, type ScratchDatabase } from '../test/helpers/scratch-database.js';
import { startOpenRouterFake } from '../test/fakes/index.js';
import { startChildServer, type ChildServer } from '../test/helpers/child-server.js';
import { projectFile } from '../src/infra/project-files.js';
import { benchCharacter, enterpriseUsers } from './anima-setup.js';
import { percentile } from './stats.js';

const { values } = parseArgs({
  options: {
    rates: { type: 'string', default: '100,200,500' },
    search: { type: 'string', default: '100,200,300,500,750,1000' },
    seconds: { type: 'string', default: '4' },
    users: { type: 'string', default: '64' },
    'database-url': { type: 'string', default: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
    'redis-url': { type: 'string', default: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379' },
    'no-postgres': { type: 'boolean', default: false },
  },
});
const rates = values.rates.split(',').map(Number);
const searchRates = values.search.split(',').map(Number);
const seconds = Number(values.seconds);
const userCount = Number(values.users);

interface Target {
  name: string;
  url: string;
  /** Process whose tree's CPU is measured (undefined: the fake, in this process). */
  pid: number | undefined;
  headers: (index: number) => Record<string, string>;
  model: string;
}

interface Series {
  latencies: number[];
  firsts: number[];
  errors: number;
  errorSample: string | undefined;
  achievedRate: number;
  cpuMsPerRequest: number | undefined;
}

const question = (index: number) => `Question ${index}: what is the moon made of?`;

async function once(target: Target, index: number, stream: boolean, scheduled: number): Promise<[number, number]> {
  const response = await fetch(target.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...target.headers(index) },
    body: JSON.stringify({ model: target.model, messages: [{ role: 'user', content: question(index) }], stream }),
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${(await response.text()).slice(0, 200)}`);
  if (!stream) {
    await response.arrayBuffer();
    const elapsed = performance.now() - scheduled;
    return [elapsed, elapsed];
  }
  let first = Number.NaN;
  let buffered = '';
  const decoder = new TextDecoder();
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    if (Number.isNaN(first)) {
      buffered += decoder.decode(chunk, { stream: true });
      if (/"content":"[^"]/.test(buffered)) first = performance.now() - scheduled;
    }
  }
  return [performance.now() - scheduled, first];
}

/** CPU time (ms) of a process and all its descendants, from /proc. */
function treeCpuMs(rootPid: number): number {
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

async function drive(target: Target, rate: number, stream: boolean, offset: number): Promise<Series> {
  const count = Math.max(1, Math.round(rate * seconds));
  const latencies: number[] = [];
  const firsts: number[] = [];
  let errors = 0;
  let errorSample: string | undefined;
  const cpuBefore = target.pid ? treeCpuMs(target.pid) : 0;
  const started = performance.now();
  const inFlight: Array<Promise<void>> = [];
  for (let index = 0; index < count; index += 1) {
    const scheduled = started + (index * 1000) / rate;
    const wait = scheduled - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    inFlight.push(
      once(target, offset + index, stream, scheduled).then(
        ([total, first]) => {
          latencies.push(total);
          firsts.push(first);
        },
        (error: unknown) => {
          errors += 1;
          errorSample ??= error instanceof Error ? error.message : String(error);
        },
      ),
    );
  }
  await Promise.all(inFlight);
  const wallMs = performance.now() - started;
  const cpuAfter = target.pid ? treeCpuMs(target.pid) : 0;
  return { latencies, firsts, errors, errorSample, achievedRate: (count / wallMs) * 1000, cpuMsPerRequest: target.pid ? (cpuAfter - cpuBefore) / count : undefined };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function startPortkey(): Promise<{ url: string; process: ChildProcess; stop: () => Promise<void> }> {
  const port = await freePort();
  const child = spawn(process.execPath, [projectFile('node_modules', '@portkey-ai', 'gateway', 'build', 'start-server.js'), `--port=${port}`, '--headless'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production' },
  });
  child.stdout?.resume();
  child.stderr?.resume();
  const url = `http://127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 200; attempt += 1) {
    try {
      await fetch(`${url}/`);
      break;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return {
    url,
    process: child,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

async function startAnima(name: string, fakeUrl: string, extra: Record<string, string>): Promise<{ target: Target; server: ChildServer; cleanup: () => Promise<void> }> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'anima-bench-rate-'));
  const adminKey = `admin-${randomBytes(12).toString('hex')}`;
  const internalKey = `internal-${randomBytes(12).toString('hex')}`;
  const server = await startChildServer(
    {
      DATA_DIR: dataDir,
      ADMIN_API_KEY: adminKey,
      INTERNAL_API_KEY: internalKey,
      ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      OPENROUTER_BASE_URL: fakeUrl,
      OPENROUTER_API_KEY: 'test-key',
      MEMORY_FORMATION_DELAY_MS: '600000',
      ...extra,
    },
    'src/server.ts',
    180_000,
  );
  await benchCharacter(server, adminKey);
  await enterpriseUsers(server, { internalKey, adminKey }, Array.from({ length: userCount }, (_, user) => `bench-user-${user}`));
  const pid = server.process.pid;
  return {
    server,
    target: {
      name,
      url: `${server.url}/v1/chat/completions`,
      pid,
      // Requests spread over the bench users (each one's conversation grows as a real one would).
      headers: (index) => ({ authorization: `Bearer ${internalKey}`, 'x-user-id': `bench-user-${index % userCount}` }),
      model: 'character/bench',
    },
    cleanup: async () => {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const format = (value: number | undefined) => (value === undefined || Number.isNaN(value) ? '–' : value.toFixed(1));

async function main(): Promise<void> {
  const fake = await startOpenRouterFake({ reply: 'The moon is a loyal companion; it never leaves.' });
  const cleanups: Array<() => Promise<void>> = [() => fake.close()];
  let scratch: ScratchDatabase | undefined;
  try {
    const portkey = await startPortkey();
    cleanups.push(portkey.stop);
    const targets: Target[] = [
      { name: 'direct (fake)', url: `${fake.url}/chat/completions`, pid: undefined, headers: () => ({ authorization: 'Bearer test-key' }), model: 'openai/gpt-4o-mini' },
      {
        name: 'Portkey gateway',
        url: `${portkey.url}/v1/chat/completions`,
        pid: portkey.process.pid,
        headers: () => ({ authorization: 'Bearer test-key', 'x-portkey-provider': 'openai', 'x-portkey-custom-host': fake.url }),
        model: 'openai/gpt-4o-mini',
      },
    ];
    const embedded = await startAnima('Anima, embedded', fake.url, {});
    cleanups.push(embedded.cleanup);
    targets.push(embedded.target);
    if (!values['no-postgres']) {
      scratch = await createScratchDatabase(values['database-url'], 'anima_bench');
      const postgres = await startAnima('Anima, PostgreSQL + Redis', fake.url, {
        DATABASE_URL: scratch.url,
        REDIS_URL: values['redis-url'],
        REDIS_KEY_PREFIX: `bench${randomBytes(4).toString('hex')}`,
      });
      cleanups.push(postgres.cleanup);
      targets.push(postgres.target);
    }

    // Warm-up: connections, JIT, caches.
    let offset = 0;
    for (const target of targets) {
      const warm = await drive(target, 50, false, offset);
      offset += 1000;
      if (warm.errors > 0) throw new Error(`${target.name} fails at 50 req/s: ${warm.errorSample}`);
    }

    const rows: string[] = [];
    const direct = new Map<number, Series>();
    for (const rate of rates) {
      for (const target of targets) {
        const series = await drive(target, rate, false, (offset += 10_000));
        if (target.name.startsWith('direct')) direct.set(rate, series);
        const base = direct.get(rate)!;
        const added = (fraction: number) => (target.name.startsWith('direct') ? undefined : percentile(series.latencies, fraction) - percentile(base.latencies, fraction));
        rows.push(
          `| ${rate} | ${target.name} | ${format(percentile(series.latencies, 0.5))} | ${format(percentile(series.latencies, 0.99))} | ${format(added(0.5))} | ${format(added(0.99))} | ${series.errors} | ${format(series.achievedRate)} | ${format(series.cpuMsPerRequest)} |`,
        );
        if (series.errorSample) console.error(`${target.name} at ${rate}/s: ${series.errors} errors, e.g. ${series.errorSample}`);
      }
    }

    const ttftRows: string[] = [];
    const ttftRate = rates[0]!;
    let directFirst: number[] = [];
    for (const target of targets) {
      const series = await drive(target, ttftRate, true, (offset += 10_000));
      if (target.name.startsWith('direct')) directFirst = series.firsts;
      const p50 = percentile(series.firsts, 0.5);
      const p99 = percentile(series.firsts, 0.99);
      ttftRows.push(
        `| ${target.name} | ${format(p50)} | ${format(p99)} | ${target.name.startsWith('direct') ? '–' : format(p50 - percentile(directFirst, 0.5))} | ${target.name.startsWith('direct') ? '–' : format(p99 - percentile(directFirst, 0.99))} | ${series.errors} |`,
      );
    }

    const sustained: string[] = [];
    for (const target of targets) {
      let best = 0;
      for (const rate of searchRates) {
        const series = await drive(target, rate, false, (offset += 10_000));
        // Sustained: no error, the schedule kept (≥ 95 % of the asked rate), and p99 under a second.
        if (series.errors === 0 && series.achievedRate >= rate * 0.95 && percentile(series.latencies, 0.99) < 1000) best = rate;
        else break;
      }
      sustained.push(`| ${target.name} | ${best === searchRates.at(-1) ? `≥ ${best}` : best} |`);
    }

    console.log('## turn-rate');
    console.log('');
    console.log(
      `Open-loop: each request leaves at its scheduled time; latency counts from that time. ${seconds} s per series; upstream: a loopback OpenAI-compatible fake that answers at once. ` +
        `Anima: full turns (auth, character, key, history, memory recall, storage, metering; ${userCount} bench users on the enterprise plan, limits on), own process, LOG_LEVEL=info (one log line per request). ` +
        `Portkey: @portkey-ai/gateway (own process, headless) with x-portkey-custom-host pointed at the fake. CPU: the target's process tree, from /proc.`,
    );
    console.log('');
    console.log('| rate (req/s) | target | p50 (ms) | p99 (ms) | added p50 | added p99 | errors | achieved (req/s) | CPU ms / request |');
    console.log('| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const row of rows) console.log(row);
    console.log('');
    console.log(`Time to first token, streamed, at ${ttftRate} req/s:`);
    console.log('');
    console.log('| target | TTFT p50 (ms) | TTFT p99 (ms) | added p50 | added p99 | errors |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
    for (const row of ttftRows) console.log(row);
    console.log('');
    console.log(`Highest sustained rate (steps ${searchRates.join(', ')} req/s; no error, ≥ 95 % of the rate achieved, p99 < 1 s):`);
    console.log('');
    console.log('| target | req/s |');
    console.log('| --- | ---: |');
    for (const row of sustained) console.log(row);
    console.log('');
    console.log('Command: `npx tsx bench/turn-rate.ts` (or `npm run bench -- turn-rate`)');
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await scratch?.drop().catch(() => undefined);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
