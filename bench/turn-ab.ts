/**
 * Two versions of Anima side by side in one run (issue 14, tenth pass): a turn's CPU and latency on
 * the sources as they are (B) against another checkout (A, e.g. a `git worktree` of an earlier commit),
 * both servers running at once and taking turns one request at a time (A then B, B then A, …), so the
 * machine's drift — on this class of VM the fake alone drifts ±25 % between runs minutes apart — falls
 * on both alike. Sequential turns against a loopback fake that answers at once; non-streamed and
 * streamed requests alternate. Reports each side's server CPU per turn (its process, every thread,
 * from /proc; on PostgreSQL + Redis the services' CPU is not in it), added p50/p90 over the fake
 * called directly in the same loop, and the added time to first token of the streamed ones.
 *
 *   git worktree add /tmp/anima-a <commit> && (cd /tmp/anima-a && npm ci)
 *   npx tsx bench/turn-ab.ts --a /tmp/anima-a [--backend embedded|postgres] [--turns 1500] [--warmup 200]
 *                            [--questions fixed|varied] [--answer-words 8] [--memories 0]
 *                            [--database-url postgres://postgres@127.0.0.1:5432/postgres] [--redis-url redis://127.0.0.1:6379]
 *
 * `--questions varied` asks each turn six words drawn in a seeded walk over the built-in word table (as
 * a real chat brings words the process has not met; `fixed`, the default, repeats one sentence as
 * bench/turn-rate.ts does); `--answer-words N` makes the fake answer N words (a streamed answer arrives
 * as N deltas); `--memories N` gives each of the bench's eight users N memories of their own and the
 * character N / 2 core ones (bench/anima-setup.ts benchMemories), on both sides, so that recall has
 * something to rank as it has for real users (the other options leave memory empty).
 *
 * A's bundle is built with A's own scripts/build.mjs; A runs on its own node_modules.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startOpenRouterFake } from '../test/fakes/index.js';
import { dropRedisKeys } from '../test/helpers/redis-keys.js';
import { createScratchDatabase, type ScratchDatabase } from '../test/helpers/scratch-database.js';
import { benchCharacter, benchMemories, benchQuestions, enterpriseUsers, startBenchAnima, type BenchAnima } from './anima-setup.js';
import { buildAnima, cleanUpOnce, machineLine, VENDOR_KEEP_ALIVE_MS } from './harness.js';
import { percentile } from './stats.js';

const { values } = parseArgs({
  options: {
    a: { type: 'string' },
    backend: { type: 'string', default: 'embedded' },
    turns: { type: 'string', default: '1500' },
    warmup: { type: 'string', default: '200' },
    questions: { type: 'string', default: 'fixed' },
    'answer-words': { type: 'string', default: '8' },
    memories: { type: 'string', default: '0' },
    'database-url': { type: 'string', default: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
    'redis-url': { type: 'string', default: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
});
const aTree = values.a ? path.resolve(values.a) : undefined;
if (!aTree || !existsSync(path.join(aTree, 'scripts', 'build.mjs')) || !existsSync(path.join(aTree, 'node_modules'))) {
  throw new Error('--a takes another checkout of Anima with its node_modules installed (see the header of bench/turn-ab.ts)');
}
if (values.backend !== 'embedded' && values.backend !== 'postgres') throw new Error('--backend takes embedded or postgres');
const turns = Number(values.turns);
const warmup = Number(values.warmup);
if (!Number.isInteger(turns) || turns < 10 || !Number.isInteger(warmup) || warmup < 0) throw new Error('--turns takes a whole number ≥ 10, --warmup one ≥ 0');
if (values.questions !== 'fixed' && values.questions !== 'varied') throw new Error('--questions takes fixed or varied');
const answerWords = Number(values['answer-words']);
if (!Number.isInteger(answerWords) || answerWords < 1) throw new Error('--answer-words takes a whole number ≥ 1');
const memories = Number(values.memories);
if (!Number.isInteger(memories) || memories < 0) throw new Error('--memories takes a whole number ≥ 0');

const question = benchQuestions(values.questions, (index) => `What do you see tonight, turn ${index}?`);
const ANSWER = Array.from({ length: answerWords }, (_, index) => ['The', 'moon', 'is', 'a', 'loyal', 'companion;', 'it', 'never', 'leaves.'][index % 9]).join(' ');

/** CPU ms of one process (all its threads), from /proc. */
function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

interface Side {
  name: string;
  anima: BenchAnima;
  scratch: ScratchDatabase | undefined;
  /** The server's Redis key prefix (PostgreSQL + Redis only), dropped when it stops. */
  redisPrefix: string | undefined;
}

const USERS = Array.from({ length: 8 }, (_, index) => `ab-user-${index}`);

async function startSide(name: string, checkout: string | undefined, fakeUrl: string): Promise<Side> {
  const scratch = values.backend === 'postgres' ? await createScratchDatabase(values['database-url'], 'anima_bench') : undefined;
  const redisPrefix = `benchab${randomBytes(4).toString('hex')}`;
  const storage: Record<string, string> = scratch ? { DATABASE_URL: scratch.url, REDIS_URL: values['redis-url'], REDIS_KEY_PREFIX: redisPrefix } : {};
  try {
    const anima = await startBenchAnima(`ab-${name}`, { OPENROUTER_BASE_URL: fakeUrl, OPENROUTER_API_KEY: 'test-key', MEMORY_FORMATION_DELAY_MS: '600000', ...storage }, checkout);
    await benchCharacter(anima.server, anima.adminKey);
    await enterpriseUsers(anima.server, anima, USERS);
    await benchMemories(anima.server, anima, USERS, memories);
    return { name, anima, scratch, redisPrefix: scratch ? redisPrefix : undefined };
  } catch (error) {
    await scratch?.drop();
    throw error;
  }
}

async function stopSide(side: Side): Promise<void> {
  await side.anima.stop();
  await side.scratch?.drop();
  if (side.redisPrefix) await dropRedisKeys(values['redis-url'], side.redisPrefix);
}

/** One request, read to its end: total time, and time to its first body chunk. */
async function timed(url: string, headers: Record<string, string>, model: string, text: string, stream: boolean): Promise<{ total: number; first: number }> {
  const started = performance.now();
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ model, messages: [{ role: 'user', content: text }], stream }) });
  const reader = response.body!.getReader();
  let first = 0;
  for (;;) {
    const { done } = await reader.read();
    if (first === 0) first = performance.now() - started;
    if (done) break;
  }
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return { total: performance.now() - started, first };
}

async function main(): Promise<void> {
  const machine = machineLine();
  buildAnima();
  execFileSync(process.execPath, [path.join(aTree!, 'scripts', 'build.mjs')], { cwd: aTree, stdio: ['ignore', 'ignore', 'inherit'] });
  const fake = await startOpenRouterFake({ reply: ANSWER, keepAliveMs: VENDOR_KEEP_ALIVE_MS });
  const forget = setInterval(() => fake.requests.splice(0), 1000);
  const sides: Side[] = [];
  const cleanUp = cleanUpOnce('turn-ab', async () => {
    clearInterval(forget);
    for (const side of sides) await stopSide(side);
    await fake.close();
  });
  try {
    sides.push(await startSide('A', aTree, fake.url), await startSide('B', undefined, fake.url));
    const samples = new Map(sides.map((side) => [side.name, { total: [] as number[], first: [] as number[] }]));
    const direct = { total: [] as number[], first: [] as number[] };
    const turn = (side: Side, index: number, stream: boolean) =>
      timed(`${side.anima.server.url}/v1/chat/completions`, { authorization: `Bearer ${side.anima.internalKey}`, 'x-user-id': USERS[index % USERS.length]! }, 'character/bench', question(index), stream);
    for (let index = 0; index < warmup; index += 1) for (const side of sides) await turn(side, index, index % 2 === 1);
    const cpuBefore = sides.map((side) => processCpuMs(side.anima.server.process.pid!));
    for (let index = 0; index < turns; index += 1) {
      const stream = index % 2 === 1;
      const order = index % 4 < 2 ? sides : [...sides].reverse();
      for (const side of order) {
        const result = await turn(side, warmup + index, stream);
        (stream ? samples.get(side.name)!.first : samples.get(side.name)!.total).push(stream ? result.first : result.total);
      }
      const baseline = await timed(`${fake.url}/chat/completions`, { authorization: 'Bearer test-key' }, 'openai/gpt-4o-mini', `Direct call ${index}`, stream);
      (stream ? direct.first : direct.total).push(stream ? baseline.first : baseline.total);
    }
    const cpuPerTurn = sides.map((side, index) => (processCpuMs(side.anima.server.process.pid!) - cpuBefore[index]!) / turns);
    const p = (list: number[], fraction: number) => percentile(list, fraction);
    console.log(`## turn-ab (${values.backend === 'postgres' ? 'PostgreSQL + Redis' : 'embedded'}; A = ${aTree}, B = this checkout; ${turns} turns each, one at a time, after ${warmup}; ${values.questions} questions, ${answerWords}-word answers${memories > 0 ? `, ${memories} memories a user` : ''})\n`);
    console.log(`${machine}\n`);
    console.log('| side | server CPU ms / turn | added p50 (ms) | added p90 (ms) | TTFT added p50 (ms) |');
    console.log('| --- | ---: | ---: | ---: | ---: |');
    sides.forEach((side, index) => {
      const own = samples.get(side.name)!;
      console.log(`| ${side.name} | ${cpuPerTurn[index]!.toFixed(2)} | ${(p(own.total, 0.5) - p(direct.total, 0.5)).toFixed(2)} | ${(p(own.total, 0.9) - p(direct.total, 0.9)).toFixed(2)} | ${(p(own.first, 0.5) - p(direct.first, 0.5)).toFixed(2)} |`);
    });
    console.log(`\nThe fake called directly: p50 ${p(direct.total, 0.5).toFixed(2)} ms, first chunk p50 ${p(direct.first, 0.5).toFixed(2)} ms. B / A CPU: ${(cpuPerTurn[1]! / cpuPerTurn[0]!).toFixed(3)}.`);
    console.log(`\nCommand: \`npx tsx bench/turn-ab.ts ${process.argv.slice(2).join(' ')}\``);
  } finally {
    await cleanUp();
  }
}

await main();
