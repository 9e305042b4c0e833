/**
 * The per-turn pieces of a chat turn's main thread, each against the way it was done before, in one
 * run (issue 14, eighth pass): token counting (js-tiktoken's own `encode` against the piece memo),
 * putting the turn's statements together (Drizzle's `sqlToQuery` against `compile`, the walk the database's dialect now does),
 * writing the query vector (text against pgvector's binary form), writing a log line (pino's
 * default, through libuv's thread pool, against writing in place) and, from the tenth pass, a
 * response's security headers and a Redis command (see the notes printed with the table), and from
 * the eleventh, recall's fusion of its candidates.
 *
 *   npx tsx bench/hot-path.ts [--rounds 5]
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { PgDialect } from 'drizzle-orm/pg-core';
import helmet from 'helmet';
import { Redis } from 'ioredis';
import { REDIS_COMMAND_OPTIONS } from '../src/infra/cache/redis-backend.js';
import { ModerationPolicy } from '../src/modules/moderation/policy.js';
import { hasNeighbours, loadWordVectors, WordVectorEmbedder } from '../src/providers/embeddings/word-vectors.js';
import { compile } from '../src/infra/db/execute.js';
import { reserveStatement } from '../src/modules/billing/store.js';
import { writeTurnStatement } from '../src/modules/chat/store.js';
import { countTokens, encoderTokenCount } from '../src/modules/characters/token-counter.js';
import { fuseResults, similarityBounds, type RankedMemory, type RankingSettings } from '../src/modules/memory/retrieval.js';
import { recallListsStatement, vectorParam, type TextHit, type VectorHit } from '../src/modules/memory/store.js';
import { median } from './stats.js';

const { values: options } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, 'redis-url': { type: 'string', default: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379' } } });
const rounds = Math.max(1, Number(options.rounds));

/** Microseconds per call of `run` over `items`, the median of `rounds` timed passes after one warm-up pass. */
function timePer<T>(items: T[], run: (item: T) => unknown): number {
  const passes: number[] = [];
  for (let pass = 0; pass <= rounds; pass += 1) {
    const started = performance.now();
    for (const item of items) run(item);
    if (pass > 0) passes.push(((performance.now() - started) / items.length) * 1000);
  }
  return median(passes);
}

const rows: Array<{ piece: string; before: number; after: number; unit: string }> = [];

// Token counting: chat-sized messages, each new (the memo holds pieces, not texts).
const messages = Array.from({ length: 4_000 }, (_, index) => `Question ${index}: what is the moon made of? I'd like to know whether it's cheese, rock or something else entirely.`);
rows.push({ piece: 'count a chat message’s tokens', before: timePer(messages, encoderTokenCount), after: timePer(messages, countTokens), unit: 'µs' });

// The turn's three statements (recall with a 300-dimension vector, the credit hold, the write with two messages), already built.
const dialect = new PgDialect();
const vector = Array.from({ length: 300 }, (_, index) => Math.sin(index + 1) / 10);
const filter = { characterId: randomUUID(), includeCore: true, userId: randomUUID() };
const conversationId = randomUUID();
const statements = Array.from({ length: 300 }, () => [
  recallListsStatement({ filter, text: "What's my cat's name?", expansion: { words: ['kitten', 'pet', 'feline'], weight: 0.3 }, vector: { space: { model: 'local-300', dimensions: 300 }, query: vector }, candidates: 40, exactScanMaxRows: 2000, efSearch: 100, fillUpTo: 8 })!,
  reserveStatement({ reservationId: randomUUID(), userId: randomUUID(), amountMicro: 5_000, today: '2026-11-30', service: 'chat', provider: 'openrouter', model: 'openai/gpt-4o-mini', idempotencyKey: undefined, expiresAt: new Date() }),
  writeTurnStatement(conversationId, [
    { conversationId, id: randomUUID(), role: 'user', content: 'What is the moon made of?', tokenCount: 7, createdAt: new Date() },
    { conversationId, id: randomUUID(), role: 'assistant', content: 'Mostly rock.', tokenCount: 3, createdAt: new Date() },
  ]),
]);
rows.push({
  piece: 'put the turn’s 3 statements together',
  before: timePer(statements, (turn) => turn.forEach((statement) => dialect.sqlToQuery(statement))),
  after: timePer(statements, (turn) => turn.forEach((statement) => compile(statement))),
  unit: 'µs',
});

// The query vector as a parameter.
const vectors = Array.from({ length: 2_000 }, (_, row) => Array.from({ length: 300 }, (_, index) => Math.sin(row * 300 + index) / 10));
/** The text form the ninth pass sent (float4 digits; the eighth's shortest doubles took twice as long). */
const float4Digits = (values: number[]) => {
  let text = '[';
  for (let index = 0; index < values.length; index += 1) text += (index > 0 ? ',' : '') + (Number.isFinite(values[index]) ? Math.fround(values[index]!).toPrecision(9) : '0');
  return `${text}]`;
};
rows.push({ piece: 'write a 300-dimension query vector', before: timePer(vectors, float4Digits), after: timePer(vectors, vectorParam), unit: 'µs' });

// Widening a recall's full-text query: the neighbours of words the process has not met yet (each
// query five fresh words), by a scan of the word table against the precomputed pools (tenth pass).
const wordTable = loadWordVectors();
const freshWords = wordTable.words.strings().filter((word, row) => hasNeighbours(wordTable, row) && row > 1_000);
let nextFresh = 0;
const freshQueries = (count: number) => Array.from({ length: count }, () => Array.from({ length: 5 }, () => freshWords[(nextFresh += 7919) % freshWords.length]!).join(' '));
/** µs a query, each pass on a new embedder (its per-word cache empty) and new words. */
function timeFreshQueries(pools: boolean, queries: number): number {
  const passes: number[] = [];
  for (let pass = 0; pass <= rounds; pass += 1) {
    const embedder = new WordVectorEmbedder({ table: pools ? wordTable : { ...wordTable, neighbourPools: undefined } });
    const texts = freshQueries(queries);
    const started = performance.now();
    for (const text of texts) embedder.expandQuery(text, 3);
    if (pass > 0) passes.push(((performance.now() - started) / texts.length) * 1000);
  }
  return median(passes);
}
rows.push({ piece: 'widen a query of 5 new words (neighbours)', before: timeFreshQueries(false, 10), after: timeFreshQueries(true, 1_000), unit: 'µs' });

// Moderating a streamed answer as it grows: 1,000 deltas (≈ 5 KB), the whole text checked at each
// against only what grew (with its look-back), with the shipped policy.
const moderationPolicy = ModerationPolicy.load('config/moderation.json');
const answerWords = 'the moon is a loyal companion it never leaves and the stars keep their watch over the quiet sea while we talk'.split(' ');
const answers = Array.from({ length: 3 }, (_, answer) => Array.from({ length: 1_000 }, (_, index) => `${index % 7 === 0 ? ',' : ''} ${answerWords[(index + answer) % answerWords.length]}`));
const streamChecks = (grown: boolean) => (deltas: string[]) => {
  let text = '';
  for (const delta of deltas) {
    const before = text.length;
    text += delta;
    if (grown) moderationPolicy.checkGrown(text, before, 'output');
    else moderationPolicy.check(text, 'output');
  }
};
rows.push({ piece: 'moderate a streamed answer of 1,000 deltas', before: timePer(answers, streamChecks(false)), after: timePer(answers, streamChecks(true)), unit: 'µs' });

// A response's security headers: helmet's middleware built for every request (what @fastify/helmet
// did) against built once (src/app.ts), each applied to a fresh Node response.
const helmetOptions = { contentSecurityPolicy: false, crossOriginResourcePolicy: { policy: 'same-site' } } as const;
const responses = () => Array.from({ length: 4_000 }, () => {
  const request = new IncomingMessage(new Socket());
  return { request, response: new ServerResponse(request) };
});
const builtOnce = helmet(helmetOptions);
const next = () => undefined;
rows.push({
  piece: 'set a response’s security headers',
  before: timePer(responses(), ({ request, response }) => helmet(helmetOptions)(request, response, next)),
  after: timePer(responses(), ({ request, response }) => builtOnce(request, response, next)),
  unit: 'µs',
});

// Recall's fusion of 40 vector and 40 full-text candidates (issue 14, eleventh pass): the former
// fuseResults, which spread each hit into new objects three times, against src/modules/memory/retrieval.ts.
function fuseBySpreading(vectorHits: VectorHit[], textHits: TextHit[], settings: RankingSettings, now: Date): RankedMemory[] {
  const byId = new Map<string, RankedMemory & { fusion: number }>();
  const vectorWeight = Math.min(Math.max(settings.vectorWeight, 0), 1);
  const { best, worst } = similarityBounds(vectorHits);
  for (const hit of vectorHits) {
    const similarity = 1 - hit.distance;
    const fusion = vectorWeight * (best > worst ? (similarity - worst) / (best - worst) : 1);
    byId.set(hit.id, { ...hit, score: 0, similarity, textRank: undefined, relevant: similarity >= settings.minRelevance, fusion });
  }
  const bestText = textHits.reduce((max, hit) => Math.max(max, hit.rank), 0);
  for (const hit of textHits) {
    const fusion = (1 - vectorWeight) * (bestText > 0 ? hit.rank / bestText : 1);
    const known = byId.get(hit.id);
    if (!known) byId.set(hit.id, { ...hit, score: 0, similarity: undefined, textRank: hit.rank, relevant: hit.matched, fusion });
    else Object.assign(known, { fusion: known.fusion + fusion, textRank: hit.rank, relevant: known.relevant || hit.matched });
  }
  const ranked: RankedMemory[] = [];
  for (const { fusion, ...memory } of byId.values()) {
    const recency = 0.8 + 0.2 * Math.pow(0.5, Math.max(0, (now.getTime() - memory.updatedAt.getTime()) / 86_400_000) / 60);
    ranked.push({ ...memory, score: fusion * settings.weights[memory.scope] * (0.75 + 0.5 * Math.min(Math.max(memory.importance, 0), 1)) * recency });
  }
  return ranked.sort((left, right) => Number(right.relevant) - Number(left.relevant) || right.score - left.score);
}
const fuseNow = new Date();
const candidate = (set: number, index: number) => ({
  id: randomUUID(),
  scope: index % 3 === 0 ? ('core' as const) : ('user' as const),
  content: `The user mentioned the moon on night ${index} of set ${set}.`,
  importance: 0.3 + (index % 7) / 10,
  userId: index % 3 === 0 ? null : 'user',
  guildId: null,
  createdAt: new Date(fuseNow.getTime() - index * 3_600_000),
  updatedAt: new Date(fuseNow.getTime() - index * 3_600_000),
});
const candidateSets = Array.from({ length: 200 }, (_, set) => {
  const rowsOfSet = Array.from({ length: 60 }, (_, index) => candidate(set, index));
  return {
    // Field by field, as recallLists builds its hits (a spread copy would be a slower kind of object for both sides).
    vectorHits: rowsOfSet.slice(0, 40).map((row, index): VectorHit => ({ id: row.id, scope: row.scope, content: row.content, importance: row.importance, userId: row.userId, guildId: row.guildId, createdAt: row.createdAt, updatedAt: row.updatedAt, distance: 0.2 + index / 100 })),
    textHits: rowsOfSet.slice(20, 60).map((row, index): TextHit => ({ id: row.id, scope: row.scope, content: row.content, importance: row.importance, userId: row.userId, guildId: row.guildId, createdAt: row.createdAt, updatedAt: row.updatedAt, rank: 1 - index / 50, matched: index % 2 === 0 })),
  };
});
const fuseSettings: RankingSettings = { weights: { core: 1, user: 1, group: 1 }, minRelevance: 0.25, vectorWeight: 0.3 };
rows.push({
  piece: 'fuse recall’s 40 + 40 candidates',
  before: timePer(candidateSets, ({ vectorHits, textHits }) => fuseBySpreading(vectorHits, textHits, fuseSettings, fuseNow)),
  after: timePer(candidateSets, ({ vectorHits, textHits }) => fuseResults(vectorHits, textHits, fuseSettings, fuseNow)),
  unit: 'µs',
});

/** CPU µs per PUBLISH (what a turn's end sends) with `inFlight` commands under way at a time, on a connection with these options. */
async function redisCommandCost(url: string, autoPipelining: boolean, inFlight: number): Promise<number> {
  const client = new Redis(url, { ...REDIS_COMMAND_OPTIONS, enableAutoPipelining: autoPipelining, lazyConnect: true, retryStrategy: () => null });
  try {
    await client.connect();
    const commands = 10_000;
    let sent = 0;
    const send = async () => {
      while (sent < commands) {
        sent += 1;
        await client.publish('anima-bench:hot-path', 'origin conversation');
      }
    };
    await send();
    sent = 0;
    const started = process.cpuUsage();
    await Promise.all(Array.from({ length: inFlight }, send));
    const used = process.cpuUsage(started);
    return (used.user + used.system) / commands;
  } finally {
    client.disconnect();
  }
}
const redisUrl = options['redis-url'];
let redisNote = '';
try {
  for (const inFlight of [1, 8]) {
    const samples = { on: [] as number[], off: [] as number[] };
    for (let round = 0; round < Math.min(rounds, 3); round += 1) {
      samples.on.push(await redisCommandCost(redisUrl, true, inFlight));
      samples.off.push(await redisCommandCost(redisUrl, false, inFlight));
    }
    rows.push({ piece: `a Redis command, ${inFlight} in flight (auto-pipelining on → off)`, before: median(samples.on), after: median(samples.off), unit: 'µs CPU' });
  }
} catch (error) {
  redisNote = `\nRedis at ${redisUrl} not reachable (${error instanceof Error ? error.message : String(error)}): its rows are left out.`;
}

/** CPU µs a line of a child process logging 4,000 lines at 400 a second, spread out, minus the same child logging nowhere. */
async function logLineCost(mode: 'none' | 'thread-pool' | 'in-place'): Promise<number> {
  const script = `
    const { pino } = await import('pino');
    const mode = ${JSON.stringify(mode)};
    const destination = mode === 'none' ? { write() {} } : pino.destination({ dest: 1, sync: mode === 'in-place' });
    const log = pino({ base: { service: 'anima' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
    const lines = 4000; let written = 0; const started = process.cpuUsage();
    await new Promise((resolve) => { const timer = setInterval(() => { for (let k = 0; k < 2; k += 1) { log.info({ req: { method: 'POST', url: '/v1/chat/completions', remoteAddress: '127.0.0.1' }, res: { statusCode: 200 }, responseTime: 4.2, reqId: String(written) }, 'request completed'); written += 1; } if (written >= lines) { clearInterval(timer); resolve(); } }, 5); });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const used = process.cpuUsage(started);
    process.stderr.write(String((used.user + used.system) / lines));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.resume();
  let reported = '';
  child.stderr.on('data', (chunk: Buffer) => (reported += chunk.toString()));
  await new Promise((resolve) => child.once('close', resolve));
  return Number(reported);
}
const logSamples = { none: [] as number[], 'thread-pool': [] as number[], 'in-place': [] as number[] };
for (let round = 0; round < Math.min(rounds, 3); round += 1) {
  for (const mode of ['none', 'thread-pool', 'in-place'] as const) logSamples[mode].push(await logLineCost(mode));
}
const none = median(logSamples.none);
rows.push({ piece: 'write a log line (CPU over logging nowhere)', before: median(logSamples['thread-pool']) - none, after: median(logSamples['in-place']) - none, unit: 'µs CPU' });

console.log('## hot-path (issue 14: the per-turn pieces of the main thread, before and after, in one run)\n');
console.log('| piece | before | after | after / before |');
console.log('| --- | ---: | ---: | ---: |');
for (const row of rows) console.log(`| ${row.piece} | ${row.before.toFixed(1)} ${row.unit} | ${row.after.toFixed(1)} ${row.unit} | ${row.after / row.before < 0.01 ? (row.after / row.before).toPrecision(2) : (row.after / row.before).toFixed(2)} |`);
console.log(
  '\nBefore: js-tiktoken `encode` (its pre-tokenizer compiled on each call); Drizzle `sqlToQuery`; the vector as text (float4 digits); pino’s default destination (written through libuv’s thread pool). After: `countTokens` (per-piece memo), `compile` (src/infra/db/execute.ts), `vectorParam` (pgvector’s binary form), `pino.destination({ sync: true })`; a query’s neighbour words by a scan of the word table against the precomputed pools (fresh words every pass, so no cache helps either side); a streamed answer’s moderation, the whole text at every delta against what grew; helmet’s middleware built per request (@fastify/helmet) against once; ioredis with `enableAutoPipelining` against without (the bench’s own CPU, Redis’s not counted). Medians of the rounds; the log figures are a child process’s own CPU, its output piped to this one.',
);
if (redisNote) console.log(redisNote);
console.log(`\nCommand: \`npx tsx bench/hot-path.ts --rounds ${rounds}\``);
