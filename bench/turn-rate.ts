/**
 * A character turn at fixed request rates, side by side with a bare gateway (issue 14). One run
 * drives POST /v1/chat/completions open-loop (each request leaves at its scheduled time, whatever
 * the earlier ones do; latency counts from that time) against a loopback OpenAI-compatible fake
 * that answers at once, through:
 *   (a) nothing: the fake called directly (the baseline; always run),
 *   (b) Portkey's open-source gateway (@portkey-ai/gateway, its own process) pointed at the fake,
 *   (c) Anima on the embedded default (its own process),
 *   (d) Anima on PostgreSQL + Redis (its own process; a scratch database).
 * Per target and rate: added p50/p99 over direct, errors, the achieved rate, CPU per request of the
 * target's process tree (from /proc) and of this process (the load generator and the fake); then
 * time to first token (streamed) at the first rate, and the highest rate sustained without errors,
 * searched up the steps until each target's first failing step.
 *
 *   npx tsx bench/turn-rate.ts [--rates 100,200,500] [--seconds 4] [--search 100,200,300,500,750,1000,1500,2000,3000]
 *                              [--only portkey,embedded,postgres] [--no-postgres] [--max-minutes 10] [--portkey-as-shipped]
 *                              [--users 64] [--database-url postgres://postgres@127.0.0.1:5432/postgres] [--redis-url redis://127.0.0.1:6379] [--card short|long] [--memories 0]
 *                              [--dump requests.tsv] [--questions fixed|varied] [--disk-probe /tmp]
 *
 * --dump appends every answered request (series start as epoch ms, target, rate, streamed or not,
 * index, scheduled offset ms, latency ms) to a file, for bench/stall-report.ts to set beside the
 * server's stalls (bench/stall-watch.mjs).
 *
 * --disk-probe DIR (thirteenth pass) runs bench/disk-probe.ts during the run: 8 KB written and
 * fdatasync'ed every 20 ms on DIR's file system (give one on the database's disk); the fixed-rate
 * table then shows each series' slowest sync and how many took over 50 ms. PostgreSQL acknowledges a
 * commit once its WAL is synced, so a stall of the disk is a stall of every turn committing then.
 * With --dump FILE too, syncs over 5 ms go to FILE.disk.tsv, a stall file for bench/stall-report.ts.
 *
 * Anima's turns are full turns: auth, character, key, history, memory recall, storage and metering
 * (bench users on the enterprise plan: limits on, but not reached). Memory formation is deferred.
 * Portkey runs with bench/portkey-preload.mjs, without which its streamed answers fail on Node
 * (see that file); --portkey-as-shipped leaves it out.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createScratchDatabase, type ScratchDatabase } from '../test/helpers/scratch-database.js';
import { startOpenRouterFake } from '../test/fakes/index.js';
import { dropRedisKeys } from '../test/helpers/redis-keys.js';
import { projectFile } from '../src/infra/project-files.js';
import { benchCharacter, benchMemories, benchQuestions, enterpriseUsers, startBenchAnima } from './anima-setup.js';
import { buildAnima, cleanUpOnce, commandLine, freePort, machineLine, namedCpuMs, ownCpuMs, treeCpuMs, VENDOR_KEEP_ALIVE_MS } from './harness.js';
import { startDiskProbe } from './disk-probe.js';
import { percentile } from './stats.js';

const OPTIONAL_TARGETS = ['portkey', 'embedded', 'postgres'] as const;
type OptionalTarget = (typeof OPTIONAL_TARGETS)[number];

const { values } = parseArgs({
  options: {
    rates: { type: 'string', default: '100,200,500' },
    search: { type: 'string', default: '100,200,300,500,750,1000,1500,2000,3000' },
    seconds: { type: 'string', default: '4' },
    users: { type: 'string', default: '64' },
    /** Comma-separated subset of portkey, embedded, postgres (the fake called directly always runs). */
    only: { type: 'string', default: OPTIONAL_TARGETS.join(',') },
    'database-url': { type: 'string', default: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
    'redis-url': { type: 'string', default: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379' },
    'no-postgres': { type: 'boolean', default: false },
    /** The search stops taking new steps once the run has lasted this long. */
    'max-minutes': { type: 'string', default: '10' },
    'portkey-as-shipped': { type: 'boolean', default: false },
    /** The bench character's card: short (one line) or long (the size of a real Character Card, ≈ 1,600 tokens). */
    card: { type: 'string', default: 'short' },
    /** Memories imported for every bench user (and half as many core memories) before the run; 0: none. */
    memories: { type: 'string', default: '0' },
    /** Appends every answered request to this file (see the header). */
    dump: { type: 'string' },
    /** fixed: one sentence with the request's number; varied: six words a request the server has mostly not met (see benchQuestions). */
    questions: { type: 'string', default: 'fixed' },
    /** A directory on the database's file system: its disk's sync latency is probed during the run (see the header). */
    'disk-probe': { type: 'string' },
  },
});
if (values.card !== 'short' && values.card !== 'long') throw new Error('--card takes short or long');
const card = values.card;
const memoriesPerUser = Number(values.memories);
const numbers = (list: string) => list.split(',').filter(Boolean).map(Number);
const rates = numbers(values.rates);
const searchRates = numbers(values.search).sort((a, b) => a - b);
const seconds = Number(values.seconds);
const userCount = Number(values.users);
const maxMs = Number(values['max-minutes']) * 60_000;
const selected = new Set(values.only.split(',').filter(Boolean));
for (const name of selected) {
  if (!(OPTIONAL_TARGETS as readonly string[]).includes(name)) throw new Error(`--only takes ${OPTIONAL_TARGETS.join(', ')} (comma-separated), not ${name}`);
}
if (values['no-postgres']) selected.delete('postgres');
const runs = (name: OptionalTarget) => selected.has(name);
if ([...rates, ...searchRates, seconds, userCount, maxMs].some((value) => !Number.isFinite(value) || value <= 0) || rates.length === 0 || !(memoriesPerUser >= 0)) {
  throw new Error('--rates, --search, --seconds, --users and --max-minutes take positive numbers');
}

/** A request slower than this fails the sustained-rate search (its p99 must stay under it). */
const SUSTAINED_P99_MS = 1000;
/** In the fixed-rate table, a request not answered after this long is an error, and a series stops once 1 % of its requests are that late. */
const TABLE_GIVE_UP_MS = 10_000;

interface Target {
  name: string;
  url: string;
  /** Process whose tree's CPU is measured (undefined: the fake, in this process). */
  pid: number | undefined;
  /** Services it uses on this machine whose CPU counts as its own (by process name): PostgreSQL's, Redis's. */
  services?: readonly string[];
  headers: (index: number) => Record<string, string>;
  model: string;
  direct?: boolean;
}

interface Series {
  rate: number;
  /** Requests sent (fewer than planned when the series stopped early). */
  sent: number;
  latencies: number[];
  firsts: number[];
  errors: number;
  errorSample: string | undefined;
  /** Requests answered per second of the series' wall time (from the first send to the last answer). */
  achievedRate: number;
  /** Requests sent per second of the schedule's span: below the asked rate when the load generator fell behind. */
  sentRate: number;
  /** How late the load generator sent a request at the most (ms). */
  maxLagMs: number;
  /** Target process tree's CPU ms per request sent (undefined for the fake, which runs in this process). */
  cpuMsPerRequest: number | undefined;
  /** This process's CPU ms per request sent: the load generator and the fake answering. */
  benchCpuMsPerRequest: number;
  /** Why the series stopped before its last request, if it did. */
  stopped: string | undefined;
  /** The series' span as epoch ms (for the disk probe). */
  span: [number, number];
}

interface DriveOptions {
  stream: boolean;
  offset: number;
  seconds: number;
  /** A request unanswered after this long is aborted (an error); once 1 % of the planned requests are that late, the series stops. */
  giveUpMs: number;
  /** Stop at the first error (the search: one error fails the step anyway). */
  stopOnError: boolean;
}

if (values.questions !== 'fixed' && values.questions !== 'varied') throw new Error('--questions takes fixed or varied');
const question = benchQuestions(values.questions, (index) => `Question ${index}: what is the moon made of?`);

async function once(target: Target, index: number, stream: boolean, scheduled: number, signal: AbortSignal): Promise<[number, number]> {
  const response = await fetch(target.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...target.headers(index) },
    body: JSON.stringify({ model: target.model, messages: [{ role: 'user', content: question(index) }], stream }),
    signal,
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
  if (Number.isNaN(first)) throw new Error(`stream without content: ${buffered.slice(0, 200)}`);
  return [performance.now() - scheduled, first];
}

/** One open-loop series at `rate` for `options.seconds`. */
async function drive(target: Target, rate: number, options: DriveOptions): Promise<Series> {
  const count = Math.max(1, Math.round(rate * options.seconds));
  const lateLimit = Math.max(1, Math.floor(count * 0.01));
  const latencies: number[] = [];
  const firsts: number[] = [];
  let errors = 0;
  let errorSample: string | undefined;
  let slow = 0;
  let maxLagMs = 0;
  let stopped: string | undefined;
  const pending = new Map<number, number>(); // index → scheduled time, oldest first
  const stop = new AbortController();
  const targetCpu = () => (target.pid ? treeCpuMs(target.pid) + namedCpuMs(target.services ?? []) : 0);
  const cpuBefore = targetCpu();
  const benchCpuBefore = ownCpuMs();
  const started = performance.now();
  const inFlight: Array<Promise<void>> = [];
  const dumped: string[] = [];
  let sent = 0;
  let lastSentAt = started;
  for (let index = 0; index < count; index += 1) {
    const scheduled = started + (index * 1000) / rate;
    const wait = scheduled - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const now = performance.now();
    maxLagMs = Math.max(maxLagMs, now - scheduled);
    if (options.stopOnError && errors > 0) stopped = 'an error';
    else {
      let late = slow;
      for (const sentAt of pending.values()) {
        if (now - sentAt < options.giveUpMs || late > lateLimit) break;
        late += 1;
      }
      if (late > lateLimit) stopped = `over 1 % of requests slower than ${options.giveUpMs / 1000} s`;
    }
    if (stopped) {
      stop.abort();
      break;
    }
    sent += 1;
    lastSentAt = now;
    pending.set(index, scheduled);
    const signal = AbortSignal.any([stop.signal, AbortSignal.timeout(options.giveUpMs * 3)]);
    inFlight.push(
      once(target, options.offset + index, options.stream, scheduled, signal).then(
        ([total, first]) => {
          pending.delete(index);
          latencies.push(total);
          firsts.push(first);
          if (values.dump) dumped.push(`${(performance.timeOrigin + started).toFixed(0)}\t${target.name}\t${rate}\t${options.stream ? 'streamed' : 'whole'}\t${index}\t${(scheduled - started).toFixed(1)}\t${total.toFixed(2)}`);
          if (total >= options.giveUpMs) slow += 1;
        },
        (error: unknown) => {
          pending.delete(index);
          if (stop.signal.aborted) return; // abandoned when the series stopped: not the target's error
          errors += 1;
          errorSample ??= error instanceof Error ? error.message : String(error);
        },
      ),
    );
  }
  await Promise.all(inFlight);
  if (values.dump && dumped.length > 0) appendFileSync(values.dump, `${dumped.join('\n')}\n`);
  const wallMs = performance.now() - started;
  const cpuAfter = targetCpu();
  const span: [number, number] = [performance.timeOrigin + started, performance.timeOrigin + started + wallMs];
  return {
    rate,
    sent,
    latencies,
    firsts,
    errors,
    errorSample,
    achievedRate: (latencies.length / wallMs) * 1000,
    sentRate: (sent / (lastSentAt - started + 1000 / rate)) * 1000,
    maxLagMs,
    cpuMsPerRequest: target.pid ? (cpuAfter - cpuBefore) / sent : undefined,
    benchCpuMsPerRequest: (ownCpuMs() - benchCpuBefore) / sent,
    stopped,
    span,
  };
}

/**
 * After a series that stopped early or gave up on requests, the target may still be working off what
 * it was sent (the client's abort does not stop a turn already under way): wait until its process tree
 * uses under a tenth of a core for half a second (30 s at the most), so the next series starts clean.
 */
async function settle(target: Target, series: Series): Promise<void> {
  if (!target.pid || (!series.stopped && series.errors === 0)) return;
  const deadline = performance.now() + 30_000;
  let before = treeCpuMs(target.pid);
  while (performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const now = treeCpuMs(target.pid);
    if (now - before < 50) return;
    before = now;
  }
  console.error(`${target.name}: still busy 30 s after a stopped series`);
}

/**
 * Why a series does not count as sustained, or undefined when it does: not stopped, no error, the
 * load generator kept ≥ 95 % of the schedule, and every request but 1 % answered within a second of
 * its scheduled time (so the target kept pace: its answers came at the asked rate).
 */
function shortfall(series: Series): string | undefined {
  if (series.stopped) return `stopped: ${series.stopped}`;
  if (series.errors > 0) return `${series.errors} errors`;
  if (series.sentRate < series.rate * 0.95) return `the load generator sent only ${series.sentRate.toFixed(0)} req/s`;
  const p99 = percentile(series.latencies, 0.99);
  if (!(p99 < SUSTAINED_P99_MS)) return `p99 ${p99.toFixed(0)} ms`;
  return undefined;
}

const portkeyPackage = projectFile('node_modules', '@portkey-ai', 'gateway');
const portkeyVersion = (JSON.parse(readFileSync(path.join(portkeyPackage, 'package.json'), 'utf8')) as { version: string }).version;

async function startPortkey(): Promise<{ url: string; process: ChildProcess; stop: () => Promise<void> }> {
  const port = await freePort();
  const preload = values['portkey-as-shipped'] ? [] : ['--import', projectFile('bench', 'portkey-preload.mjs')];
  const child = spawn(process.execPath, [...preload, path.join(portkeyPackage, 'build', 'start-server.js'), `--port=${port}`, '--headless'], {
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

async function startAnima(name: string, fakeUrl: string, extra: Record<string, string>, services: readonly string[] = []): Promise<{ target: Target; cleanup: () => Promise<void> }> {
  const anima = await startBenchAnima('rate', { OPENROUTER_BASE_URL: fakeUrl, OPENROUTER_API_KEY: 'test-key', MEMORY_FORMATION_DELAY_MS: '600000', ...extra });
  try {
    await benchCharacter(anima.server, anima.adminKey, { card });
    await enterpriseUsers(anima.server, anima, Array.from({ length: userCount }, (_, user) => `bench-user-${user}`));
    await benchMemories(anima.server, anima, Array.from({ length: userCount }, (_, user) => `bench-user-${user}`), memoriesPerUser);
  } catch (error) {
    await anima.stop();
    throw error;
  }
  return {
    target: {
      name,
      url: `${anima.server.url}/v1/chat/completions`,
      pid: anima.server.process.pid,
      services,
      // Requests spread over the bench users (each one's conversation grows as a real one would).
      headers: (index) => ({ authorization: `Bearer ${anima.internalKey}`, 'x-user-id': `bench-user-${index % userCount}` }),
      model: 'character/bench',
    },
    cleanup: anima.stop,
  };
}

const format = (value: number | undefined) => (value === undefined || Number.isNaN(value) ? '–' : value.toFixed(1));

async function main(): Promise<void> {
  const runStarted = performance.now();
  const machine = machineLine();
  buildAnima();
  const fake = await startOpenRouterFake({ reply: 'The moon is a loyal companion; it never leaves.', keepAliveMs: VENDOR_KEEP_ALIVE_MS });
  const cleanups: Array<() => Promise<void>> = [() => fake.close()];
  let scratch: ScratchDatabase | undefined;
  const cleanUp = cleanUpOnce('turn-rate', async () => {
    for (const cleanup of [...cleanups].reverse()) await cleanup().catch(() => undefined);
    await scratch?.drop().catch(() => undefined);
  });
  try {
    const targets: Target[] = [
      { name: 'direct (fake)', url: `${fake.url}/chat/completions`, pid: undefined, headers: () => ({ authorization: 'Bearer test-key' }), model: 'openai/gpt-4o-mini', direct: true },
    ];
    if (runs('portkey')) {
      const portkey = await startPortkey();
      cleanups.push(portkey.stop);
      targets.push({
        name: 'Portkey gateway',
        url: `${portkey.url}/v1/chat/completions`,
        pid: portkey.process.pid,
        headers: () => ({ authorization: 'Bearer test-key', 'x-portkey-provider': 'openai', 'x-portkey-custom-host': fake.url }),
        model: 'openai/gpt-4o-mini',
      });
    }
    if (runs('embedded')) {
      const embedded = await startAnima('Anima, embedded', fake.url, {});
      cleanups.push(embedded.cleanup);
      targets.push(embedded.target);
    }
    if (runs('postgres')) {
      scratch = await createScratchDatabase(values['database-url'], 'anima_bench');
      const redisPrefix = `bench${randomBytes(4).toString('hex')}`;
      // Runs after the server's own cleanup (cleanups run last first): its Redis keys go too.
      cleanups.push(async () => void (await dropRedisKeys(values['redis-url'], redisPrefix)));
      const postgres = await startAnima('Anima, PostgreSQL + Redis', fake.url, {
        DATABASE_URL: scratch.url,
        REDIS_URL: values['redis-url'],
        REDIS_KEY_PREFIX: redisPrefix,
      }, ['postgres', 'redis-server']);
      cleanups.push(postgres.cleanup);
      targets.push(postgres.target);
    }
    const portkeyTarget = targets.find((target) => target.name.startsWith('Portkey'));
    // The fake keeps every request it receives; a long run does not need them.
    const forget = setInterval(() => fake.requests.splice(0), 1000);
    cleanups.push(async () => clearInterval(forget));
    const disk = values['disk-probe'] ? startDiskProbe(values['disk-probe'], values.dump ? { stallFile: `${values.dump}.disk.tsv` } : {}) : undefined;
    if (disk) cleanups.push(() => disk.stop());
    const diskCell = (series: Series) => {
      if (!disk) return '';
      const seen = disk.between(series.span[0], series.span[1]);
      return ` ${format(seen.slowestMs)} (${seen.slow} of ${seen.syncs}) |`;
    };

    const tableOptions = (offset: number, stream: boolean): DriveOptions => ({ stream, offset, seconds, giveUpMs: TABLE_GIVE_UP_MS, stopOnError: false });
    // Warm-up: connections, JIT, caches (streamed too, so the first streamed series is not the first stream).
    let offset = 0;
    for (const target of targets) {
      const warm = await drive(target, 50, tableOptions(offset, false));
      const warmStream = await drive(target, 50, { ...tableOptions(offset + 500, true), seconds: 1 });
      offset += 1000;
      // A target that answers nothing is broken; one that answers late on a loaded machine is measured as it is.
      if (warm.latencies.length === 0) throw new Error(`${target.name} answers nothing at 50 req/s: ${warm.errorSample}`);
      if (warm.errors > 0) console.error(`${target.name}: warm-up at 50 req/s: ${warm.errors} errors, e.g. ${warm.errorSample}`);
      if (warmStream.errors > 0) console.error(`${target.name}: streamed warm-up at 50 req/s: ${warmStream.errors} errors, e.g. ${warmStream.errorSample}`);
    }

    const rows: string[] = [];
    const notes: string[] = [];
    const direct = new Map<number, Series>();
    for (const rate of rates) {
      for (const target of targets) {
        const series = await drive(target, rate, tableOptions((offset += 10_000), false));
        await settle(target, series);
        if (target.direct) {
          direct.set(rate, series);
          const why = shortfall(series);
          if (why) notes.push(`At ${rate} req/s the fake called directly was not sustained (${why}; the load generator sent up to ${series.maxLagMs.toFixed(0)} ms late): there the machine, not the target, is the limit.`);
        }
        const base = direct.get(rate)!;
        const added = (fraction: number) => (target.direct ? undefined : percentile(series.latencies, fraction) - percentile(base.latencies, fraction));
        rows.push(
          `| ${rate} | ${target.name} | ${format(percentile(series.latencies, 0.5))} | ${format(percentile(series.latencies, 0.99))} | ${format(added(0.5))} | ${format(added(0.99))} | ${series.errors}${series.stopped ? ' (stopped)' : ''} | ${format(series.achievedRate)} | ${format(series.cpuMsPerRequest)} | ${format(series.benchCpuMsPerRequest)} |${diskCell(series)}`,
        );
        if (series.errorSample) console.error(`${target.name} at ${rate}/s: ${series.errors} errors, e.g. ${series.errorSample}`);
        if (series.stopped) console.error(`${target.name} at ${rate}/s: stopped after ${series.sent} requests (${series.stopped})`);
      }
    }

    const ttftRows: string[] = [];
    const ttftRate = rates[0]!;
    let directFirst: number[] = [];
    for (const target of targets) {
      const series = await drive(target, ttftRate, tableOptions((offset += 10_000), true));
      await settle(target, series);
      if (target.direct) directFirst = series.firsts;
      if (series.errorSample) console.error(`${target.name} streamed at ${ttftRate}/s: ${series.errors} errors, e.g. ${series.errorSample}`);
      const p50 = percentile(series.firsts, 0.5);
      const p99 = percentile(series.firsts, 0.99);
      ttftRows.push(
        `| ${target.name} | ${format(p50)} | ${format(p99)} | ${target.direct ? '–' : format(p50 - percentile(directFirst, 0.5))} | ${target.direct ? '–' : format(p99 - percentile(directFirst, 0.99))} | ${series.errors} |`,
      );
    }

    // The search, step by step across the targets still in it, so a time cap cuts every target at the same step.
    interface Search {
      best: Series | undefined;
      failed: { rate: number; why: string } | undefined;
      capped: boolean;
    }
    const searches = new Map<Target, Search>(targets.map((target) => [target, { best: undefined, failed: undefined, capped: false }]));
    let directFailedAt: number | undefined;
    for (const rate of searchRates) {
      // Above the step where the fake called directly failed, the machine is the limit: no target is taken further.
      if (directFailedAt !== undefined && rate > directFailedAt) break;
      for (const target of targets) {
        const search = searches.get(target)!;
        if (search.failed || search.capped) continue;
        if (performance.now() - runStarted + (seconds + 2) * 1000 > maxMs) {
          search.capped = true;
          continue;
        }
        const series = await drive(target, rate, { stream: false, offset: (offset += 10_000), seconds, giveUpMs: SUSTAINED_P99_MS, stopOnError: true });
        await settle(target, series);
        if (series.errorSample) console.error(`${target.name} at ${rate}/s (search): ${series.errors} errors, e.g. ${series.errorSample}`);
        const why = shortfall(series);
        if (why) {
          search.failed = { rate, why };
          if (target.direct) directFailedAt = rate;
        } else search.best = series;
      }
    }
    const sustainedRows: string[] = [];
    const bestRate = (target: Target) => searches.get(target)?.best?.rate ?? 0;
    for (const target of targets) {
      const { best, failed, capped } = searches.get(target)!;
      let rate = `${best?.rate ?? 0}`;
      let next = failed ? `${failed.rate}: ${failed.why}` : capped ? 'time cap (--max-minutes)' : 'none (all steps passed)';
      if (!failed) rate = `≥ ${rate}`;
      else if (!target.direct && directFailedAt !== undefined && failed.rate >= directFailedAt) next += '; the fake called directly failed there too (machine-bound)';
      if (failed === undefined && directFailedAt !== undefined && !target.direct) next = `not tried above ${directFailedAt} (the fake called directly failed there)`;
      sustainedRows.push(`| ${target.name} | ${rate} | ${next} | ${format(best?.cpuMsPerRequest)} | ${format(best?.benchCpuMsPerRequest)} |`);
    }
    const ratios = portkeyTarget && bestRate(portkeyTarget) > 0
      ? targets.filter((target) => target.name.startsWith('Anima')).map((target) => `${target.name}: ${(bestRate(target) / bestRate(portkeyTarget)).toFixed(2)}×`)
      : [];

    const targetNames = targets.map((target) => target.name).join('; ');
    console.log('## turn-rate');
    console.log('');
    console.log(machine);
    console.log('');
    console.log(
      `Settings: rates ${rates.join(', ')} req/s; ${seconds} s per series; search steps ${searchRates.join(', ')} req/s (no new step after ${values['max-minutes']} min); targets: ${targetNames}` +
        (runs('embedded') || runs('postgres') ? `; Anima's turns spread over ${userCount} bench users, character card ${card === 'long' ? 'long (≈ 1,600 tokens)' : 'short (one line)'}, ${memoriesPerUser > 0 ? `${memoriesPerUser} memories per user and ${Math.max(1, Math.floor(memoriesPerUser / 2))} core ones` : 'no memories'}` : '') +
        (portkeyTarget
          ? `; Portkey: @portkey-ai/gateway ${portkeyVersion}${values['portkey-as-shipped'] ? ' as shipped' : ' with bench/portkey-preload.mjs (its streamed answers otherwise fail on Node: TypeError immutable, Portkey-AI/gateway#1389)'}`
          : '') +
        '.',
    );
    console.log('');
    console.log(
      `Open-loop: each request leaves at its scheduled time; latency counts from that time. Upstream: a loopback OpenAI-compatible fake that answers at once, in the bench's own process. ` +
        `Anima: full turns (auth, character, key, history, memory recall, storage, metering; bench users on the enterprise plan, limits on), own process, LOG_LEVEL=info (one log line per request). ` +
        `Portkey: own process, headless, x-portkey-provider openai with x-portkey-custom-host pointed at the fake. ` +
        `Achieved: answers per second over the series' wall time, from the first send to the last answer. ` +
        `CPU: target = the target's process tree, from /proc (for PostgreSQL + Redis, with the database server's and Redis's processes); bench = this process (load generator and fake), from process.cpuUsage; both per request sent. All share the machine's cores.`,
    );
    console.log('');
    console.log(`| rate (req/s) | target | p50 (ms) | p99 (ms) | added p50 | added p99 | errors | achieved (req/s) | target CPU ms / request | bench CPU ms / request |${disk ? ' slowest disk sync, ms (syncs over 50 ms of all) |' : ''}`);
    console.log(`| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |${disk ? ' ---: |' : ''}`);
    for (const row of rows) console.log(row);
    console.log('');
    for (const note of notes) console.log(`${note}\n`);
    console.log(`Time to first token, streamed, at ${ttftRate} req/s, ${seconds} s per target:`);
    console.log('');
    console.log('| target | TTFT p50 (ms) | TTFT p99 (ms) | added p50 | added p99 | errors |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
    for (const row of ttftRows) console.log(row);
    console.log('');
    if (portkeyTarget) {
      console.log("Portkey's stream relay holds the first event of every streamed answer 25 ms (a setTimeout in its build/start-server.js); its TTFT includes that.");
      console.log('');
    }
    console.log(
      `Highest sustained rate: steps ${searchRates.join(', ')} req/s, ${seconds} s each, taken in turn by every target until its first failing step ` +
        `(sustained: no error, ≥ 95 % of the rate sent on schedule, p99 < ${SUSTAINED_P99_MS / 1000} s; a step stops early at its first error or once 1 % of its requests are slower than that):`,
    );
    console.log('');
    console.log('| target | highest sustained (req/s) | first failing step (req/s): why | target CPU ms / request there | bench CPU ms / request there |');
    console.log('| --- | ---: | --- | ---: | ---: |');
    for (const row of sustainedRows) console.log(row);
    console.log('');
    if (directFailedAt !== undefined) {
      console.log(`The fake called directly failed at ${directFailedAt} req/s: from there the load generator and fake (one Node process on the same cores) are the limit, so no target was taken further.`);
      console.log('');
    }
    if (ratios.length > 0) {
      console.log(`Highest sustained rate over Portkey's: ${ratios.join('; ')}.`);
      console.log('');
    }
    console.log(`Command: \`${commandLine('turn-rate.ts')}\` (or \`npm run bench -- turn-rate\` for the defaults); run took ${((performance.now() - runStarted) / 1000).toFixed(0)} s.`);
  } finally {
    await cleanUp();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
