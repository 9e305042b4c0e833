/**
 * What each database statement of a chat turn costs on the embedded default, and what batching
 * commits (a group commit) could save. A server runs in this process with PGlite on its own thread
 * (as in production); turns go one at a time through POST /v1/chat/completions to a loopback fake,
 * and every message to the database thread is timed from the main thread (send to answer). One at
 * a time, a round trip is the thread's own work plus the crossing — except where the turn sends two
 * statements at once (recall and the credit reservation): the thread answers in order, so the second
 * one's round trip includes the first's work.
 *
 * Then the commit cost: the same one-row UPDATE run N times on its own (N commits) and N times in
 * transactions of 10 (N/10 commits), on the same thread; the difference per statement is the most a
 * group commit of that many turns could save per write.
 *
 *   npx tsx bench/turn-statements.ts [--turns 400] [--warmup 100] [--memories 0] [--users 16] [--questions fixed|varied]
 *
 * `--questions varied` asks six words a turn from a seeded walk over the word table (as bench/turn-ab.ts does).
 */
import { parseArgs } from 'node:util';
import { ThreadedPglite } from '../src/infra/db/pglite-client.js';
import { startOpenRouterFake } from '../test/fakes/index.js';
import { startTestServer } from '../test/helpers/test-server.js';
import { benchMemories, benchQuestions } from './anima-setup.js';
import { machineLine } from './harness.js';
import { percentile } from './stats.js';

const { values } = parseArgs({
  options: {
    turns: { type: 'string', default: '400' },
    warmup: { type: 'string', default: '100' },
    memories: { type: 'string', default: '0' },
    users: { type: 'string', default: '16' },
    questions: { type: 'string', default: 'fixed' },
  },
});
if (values.questions !== 'fixed' && values.questions !== 'varied') throw new Error('--questions takes fixed or varied');
const question = benchQuestions(values.questions, (index) => `Tell me about Saturn's rings, question ${index}.`);
const turns = Number(values.turns);
const warmup = Number(values.warmup);
const memories = Number(values.memories);
const userCount = Number(values.users);
if (![turns, warmup, memories, userCount].every((value) => Number.isInteger(value) && value >= 0) || turns === 0 || userCount === 0) {
  throw new Error('--turns, --warmup, --memories and --users take whole numbers (turns and users above 0)');
}

/** A statement's name in the table: its first CTE's name, or its first words. */
function labelOf(op: string, text: string | undefined): string {
  if (!text) return op;
  const flat = text.replace(/\s+/g, ' ').trim();
  const cte = /^WITH (\w+) AS/i.exec(flat);
  if (cte) return `WITH ${cte[1]} …`;
  return flat.slice(0, 60);
}

interface Timing {
  samples: number[];
}
const timings = new Map<string, Timing>();
let timing = false;
type Send = (request: { op: string; sql?: string }) => Promise<unknown>;
const prototype = ThreadedPglite.prototype as unknown as { send: Send };
const send = prototype.send;
prototype.send = async function (this: unknown, request) {
  const started = performance.now();
  try {
    return await send.call(this, request);
  } finally {
    if (timing) {
      const label = labelOf(request.op, request.sql);
      const entry = timings.get(label) ?? { samples: [] };
      entry.samples.push(performance.now() - started);
      timings.set(label, entry);
    }
  }
};

const fake = await startOpenRouterFake({ validKeys: ['platform-key'], reply: 'The rings are mostly ice, with a little rock.' });
const server = await startTestServer('embedded', {
  OPENROUTER_BASE_URL: fake.url,
  OPENROUTER_API_KEY: 'platform-key',
  MEMORY_FORMATION_DELAY_MS: '600000',
  EMBEDDED_DATABASE_THREAD: 'true',
  LOG_LEVEL: 'warn',
});
try {
  const created = await server.request('POST', '/v1/characters', { body: { name: 'Bench', slug: 'bench' } });
  if (created.status !== 201) throw new Error(`could not create the bench character: ${created.status} ${created.text}`);
  const users = Array.from({ length: userCount }, (_, index) => `statements-user-${index}`);
  await benchMemories(server, { internalKey: server.internalKey, adminKey: server.adminKey }, users, memories);
  const turn = async (index: number) => {
    const response = await server.request('POST', '/v1/chat/completions', {
      key: server.internalKey,
      headers: { 'x-user-id': users[index % users.length]! },
      body: { model: 'character/bench', messages: [{ role: 'user', content: question(index) }] },
    });
    if (response.status !== 200) throw new Error(`turn ${index}: HTTP ${response.status} ${response.text}`);
  };
  for (let index = 0; index < warmup; index += 1) await turn(index);
  timing = true;
  const walls: number[] = [];
  for (let index = 0; index < turns; index += 1) {
    const started = performance.now();
    await turn(warmup + index);
    walls.push(performance.now() - started);
  }
  timing = false;

  // Commit cost: a one-row UPDATE alone (its own commit), then ten in one transaction, each as one
  // simple-protocol message to the database thread (so only the commits differ).
  const client = (server.container.db as unknown as { $client: ThreadedPglite }).$client;
  const [conversation] = (await client.query('SELECT id FROM conversations LIMIT 1')).rows as Array<{ id: string }>;
  if (!conversation) throw new Error('no conversation to update');
  const update = `UPDATE conversations SET updated_at = now() WHERE id = '${conversation.id}'`;
  const commitRounds = 500;
  for (let index = 0; index < 50; index += 1) await client.exec(update);
  let started = performance.now();
  for (let index = 0; index < commitRounds; index += 1) await client.exec(update);
  const alone = (performance.now() - started) / commitRounds;
  const batch = `BEGIN; ${Array.from({ length: 10 }, () => update).join('; ')}; COMMIT`;
  const tenAlone = Array.from({ length: 10 }, () => update).join('; ');
  started = performance.now();
  for (let round = 0; round < commitRounds / 10; round += 1) await client.exec(batch);
  const batched = (performance.now() - started) / commitRounds;
  // Ten in one message without a transaction (ten commits): what one message instead of ten saves, apart from commits.
  started = performance.now();
  for (let round = 0; round < commitRounds / 10; round += 1) await client.exec(tenAlone);
  const oneMessage = (performance.now() - started) / commitRounds;

  const lines = [
    `## turn-statements (embedded; ${turns} turns one at a time after ${warmup} warm-up; ${memories} memories per user over ${userCount} users${memories > 0 ? ` and ${Math.max(1, Math.floor(memories / 2))} core` : ''}; ${values.questions} questions)`,
    '',
    machineLine(),
    '',
    `A turn, one at a time: p50 ${percentile(walls, 0.5).toFixed(1)} ms, p99 ${percentile(walls, 0.99).toFixed(1)} ms (HTTP to the loopback fake included).`,
    '',
    '| statement | per turn | round trip p50 (ms) | mean (ms) | ms per turn |',
    '| --- | ---: | ---: | ---: | ---: |',
  ];
  const rows = [...timings].map(([label, entry]) => {
    const mean = entry.samples.reduce((sum, value) => sum + value, 0) / entry.samples.length;
    return { label, perTurn: entry.samples.length / turns, p50: percentile(entry.samples, 0.5), mean, total: (mean * entry.samples.length) / turns };
  });
  for (const row of rows.sort((left, right) => right.total - left.total).filter((row) => row.total >= 0.01)) {
    lines.push(`| \`${row.label.replace(/\|/g, '\\|')}\` | ${row.perTurn.toFixed(2)} | ${row.p50.toFixed(2)} | ${row.mean.toFixed(2)} | ${row.total.toFixed(2)} |`);
  }
  lines.push(
    '',
    `Commit cost (a one-row UPDATE, simple protocol, per statement): alone ${alone.toFixed(3)} ms (one message, one commit each); ten in one message ${oneMessage.toFixed(3)} ms (ten commits, one crossing); ten in one transaction in one message ${batched.toFixed(3)} ms (one commit). A commit costs ≈ ${(oneMessage - batched).toFixed(3)} ms here — what a group commit saves per write, next to the turn's statements above (PGlite runs with fsync off: a commit writes its WAL and never waits for the disk).`,
    '',
    `Command: \`npx tsx bench/turn-statements.ts${process.argv.slice(2).length > 0 ? ` ${process.argv.slice(2).join(' ')}` : ''}\``,
  );
  console.log(lines.join('\n'));
} finally {
  await server.stop();
  await fake.close();
}
