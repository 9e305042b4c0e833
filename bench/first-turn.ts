/**
 * The first chat turns after a restart (embedded default): what the first user after a deploy
 * waits for. Each run prepares a data directory (character, enterprise user, one turn), stops the
 * server, starts it again on that directory and times its first five turns one at a time through
 * POST /v1/chat/completions to a loopback fake that answers at once; the fake called directly, in
 * the same run, is the baseline. Whatever a process builds lazily on its first turn shows as the
 * first turn's excess over the later ones.
 *
 * `--backend postgres` runs it on PostgreSQL + Redis (a scratch database per run, dropped after).
 *
 *   npx tsx bench/first-turn.ts [--runs 3] [--backend embedded|postgres]
 *                               [--database-url postgres://postgres@127.0.0.1:5432/postgres] [--redis-url redis://127.0.0.1:6379]
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { startOpenRouterFake } from '../test/fakes/index.js';
import { dropRedisKeys } from '../test/helpers/redis-keys.js';
import { createScratchDatabase, type ScratchDatabase } from '../test/helpers/scratch-database.js';
import { type BenchAnima, benchCharacter, enterpriseUsers, startBenchAnima } from './anima-setup.js';
import { buildAnima, cleanUpOnce, machineLine, VENDOR_KEEP_ALIVE_MS } from './harness.js';
import { median } from './stats.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    backend: { type: 'string', default: 'embedded' },
    'database-url': { type: 'string', default: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
    'redis-url': { type: 'string', default: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs takes a whole number above 0');
if (values.backend !== 'embedded' && values.backend !== 'postgres') throw new Error('--backend takes embedded or postgres');

const TURNS = 5;

async function timed(url: string, headers: Record<string, string>, model: string, text: string): Promise<number> {
  const started = performance.now();
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: text }] }),
  });
  const body = await response.text();
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${body.slice(0, 200)}`);
  return performance.now() - started;
}

async function main(): Promise<void> {
  const machine = machineLine();
  buildAnima();
  const fake = await startOpenRouterFake({ reply: 'The moon is a loyal companion; it never leaves.', keepAliveMs: VENDOR_KEEP_ALIVE_MS });
  const firsts: number[] = [];
  const laters: number[] = [];
  const directs: number[] = [];
  // The run under way: what a SIGINT/SIGTERM stops and drops before exiting (cleanUpOnce), as the run's own end does.
  let current: { anima?: BenchAnima; scratch?: ScratchDatabase; redisPrefix: string } | undefined;
  const endRun = async () => {
    const run = current;
    current = undefined;
    if (!run) return;
    await run.anima?.stop();
    await run.scratch?.drop();
    if (run.scratch) await dropRedisKeys(values['redis-url'], run.redisPrefix);
  };
  const cleanUp = cleanUpOnce('first-turn', async () => {
    await endRun();
    await fake.close();
  });
  try {
    for (let run = 0; run < runs; run += 1) {
      const scratch = values.backend === 'postgres' ? await createScratchDatabase(values['database-url'], 'anima_bench') : undefined;
      const redisPrefix = `benchfirst${randomBytes(4).toString('hex')}`;
      current = { ...(scratch ? { scratch } : {}), redisPrefix };
      const storage: Record<string, string> = scratch ? { DATABASE_URL: scratch.url, REDIS_URL: values['redis-url'], REDIS_KEY_PREFIX: redisPrefix } : {};
      const anima = await startBenchAnima('first-turn', { OPENROUTER_BASE_URL: fake.url, OPENROUTER_API_KEY: 'test-key', MEMORY_FORMATION_DELAY_MS: '600000', ...storage }).catch(async (error: unknown) => {
        await endRun();
        throw error;
      });
      current.anima = anima;
      const headers = { authorization: `Bearer ${anima.internalKey}`, 'x-user-id': 'first-turn-user' };
      try {
        await benchCharacter(anima.server, anima.adminKey);
        await enterpriseUsers(anima.server, anima, ['first-turn-user']);
        await timed(`${anima.server.url}/v1/chat/completions`, headers, 'character/bench', 'Hello before the restart.');
        await anima.restart();
        const turns: number[] = [];
        for (let turn = 0; turn < TURNS; turn += 1) turns.push(await timed(`${anima.server.url}/v1/chat/completions`, headers, 'character/bench', `What do you see tonight, turn ${turn}?`));
        firsts.push(turns[0]!);
        laters.push(median(turns.slice(1)));
        for (let call = 0; call < TURNS; call += 1) directs.push(await timed(`${fake.url}/chat/completions`, { authorization: 'Bearer test-key' }, 'openai/gpt-4o-mini', `Direct call ${call}`));
      } finally {
        await endRun();
      }
    }
  } finally {
    await cleanUp();
  }
  const direct = median(directs);
  console.log(`## first-turn (${values.backend === 'postgres' ? 'PostgreSQL + Redis' : 'embedded'}; ${runs} restarts, ${TURNS} turns one at a time after each)`);
  console.log('');
  console.log(machine);
  console.log('');
  console.log('| turn after the restart | median (ms) | added over the fake called directly (ms) | each run (ms) |');
  console.log('| --- | ---: | ---: | --- |');
  console.log(`| first | ${median(firsts).toFixed(1)} | ${(median(firsts) - direct).toFixed(1)} | ${firsts.map((value) => value.toFixed(1)).join(', ')} |`);
  console.log(`| second to fifth (median of each run's) | ${median(laters).toFixed(1)} | ${(median(laters) - direct).toFixed(1)} | ${laters.map((value) => value.toFixed(1)).join(', ')} |`);
  console.log('');
  console.log(`The fake called directly: ${direct.toFixed(1)} ms median over ${directs.length} calls.`);
  console.log('');
  console.log(`Command: \`npx tsx bench/first-turn.ts --runs ${runs}${values.backend === 'postgres' ? ' --backend postgres' : ''}\``);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
