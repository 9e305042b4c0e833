/**
 * Memory retrieval at scale: N memories of one character spread over 10,000 users, random unit
 * vectors clustered around 200 shared topics (so other users' memories crowd every query), and
 * a scoped hybrid query (the speaker's memories + the character's core) as recall runs it: recall's one
 * statement (store.recallLists), on its exact path and on its HNSW path.
 *
 *   npx tsx bench/memory-scale.ts [--n 100000] [--backend postgres|embedded] [--queries 200] [--k 10]
 *                                 [--embedder words] [--hnsw no]
 *
 * `--embedder words`: memories are sentences of real words (the 20,000 most frequent of the built-in
 * table) embedded by the built-in word-vector embedder (100-d, the default), and every query is
 * embedded by it at query time (included in the figures). `--hnsw no` skips the approximate index
 * (recall answers per-user scopes with the exact scoped path anyway). Each query is also run as
 * full-text search alone on the same scope: the baseline, in the same run.
 *
 * PostgreSQL: a fresh database on BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres),
 * dropped afterwards. Prints a markdown section: load and index time, latency p50/p99 of the
 * exact scoped path (what recall uses for scopes up to MEMORY_EXACT_SCAN_MAX_ROWS), of the HNSW
 * path with iterative scan, and recall@K of the HNSW path against exact search.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import pino from 'pino';
import { openDatabase, type DatabaseHandle } from '../src/infra/db/database.js';
import { characters, users } from '../src/infra/db/schema.js';
import * as store from '../src/modules/memory/store.js';
import { loadWordVectors, WordVectorEmbedder } from '../src/providers/embeddings/word-vectors.js';
import { cleanUpOnce } from './harness.js';
import { percentile } from './stats.js';
import { seededRandom } from '../test/fakes/vectors.js';
import { createScratchDatabase } from '../test/helpers/scratch-database.js';

const argument = (name: string, fallback: string): string => {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && process.argv[index + 1] ? process.argv[index + 1]! : fallback;
};
const backend = argument('backend', 'embedded') as 'embedded' | 'postgres';
const total = Number(argument('n', backend === 'postgres' ? '100000' : '20000'));
const queries = Number(argument('queries', '200'));
const topK = Number(argument('k', '10'));
const embedderName = argument('embedder', 'random') as 'random' | 'words';
const withHnsw = argument('hnsw', 'yes') !== 'no';
const wordEmbedder = embedderName === 'words' ? new WordVectorEmbedder() : undefined;
// 384 = the hashing embedder's size; 100 = the built-in word vectors' (--dimensions 100).
const DIMENSIONS = wordEmbedder ? wordEmbedder.dimensions : Number(argument('dimensions', '384'));
const realWords = wordEmbedder ? loadWordVectors().words.strings().slice(100, 20_100).filter((word) => /^\p{L}+$/u.test(word)) : [];
const sentence = (count: number) => Array.from({ length: count }, () => realWords[Math.floor(random() * realWords.length)]).join(' ');
const USERS = 10_000;
const TOPICS = 200;
const CORE = 50;
const MODEL = embedderName === 'words' ? 'builtin-words-glove100-v1' : 'bench-random-v1';
const VOCABULARY = 3000;

const random = seededRandom(7);
const unit = (vector: number[]) => {
  let sum = 0;
  for (const value of vector) sum += value * value;
  const norm = Math.sqrt(sum);
  return vector.map((value) => value / norm);
};
const randomVector = () => unit(Array.from({ length: DIMENSIONS }, () => random() * 2 - 1));
const topics = Array.from({ length: TOPICS }, randomVector);
const around = (centre: number[], spread: number) => unit(centre.map((value) => value + spread * (random() * 2 - 1)));
const words = (count: number) => Array.from({ length: count }, () => `w${Math.floor(random() * VOCABULARY)}`).join(' ');


async function main(): Promise<void> {
  const logger = pino({ level: 'warn' });
  let cleanup: () => Promise<void> = async () => undefined;
  let database: DatabaseHandle;
  if (backend === 'postgres') {
    const scratch = await createScratchDatabase(process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', 'anima_bench');
    database = await openDatabase({ databaseUrl: scratch.url, dataDir: tmpdir(), logger });
    cleanup = () => scratch.drop();
  } else {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'anima-bench-'));
    database = await openDatabase({ databaseUrl: undefined, dataDir, logger });
    cleanup = async () => rmSync(dataDir, { recursive: true, force: true });
  }
  const { db } = database;
  // A SIGINT/SIGTERM (Ctrl-C, `timeout`) closes the database and drops it too, as the run's own end does.
  const cleanUp = cleanUpOnce('memory-scale', async () => {
    await database.close();
    await cleanup();
  });
  try {
    const loadStarted = performance.now();
    const [character] = await db.insert(characters).values({ slug: 'bench', name: 'Bench' }).returning({ id: characters.id });
    const characterId = character!.id;
    const userIds: string[] = [];
    for (let start = 0; start < USERS; start += 1000) {
      const rows = await db.insert(users).values(Array.from({ length: Math.min(1000, USERS - start) }, () => ({}))).returning({ id: users.id });
      userIds.push(...rows.map((row) => row.id));
    }
    // Each user talks about a few topics; their memories sit near those topics, among everyone else's.
    const userTopics = userIds.map(() => Array.from({ length: 3 }, () => Math.floor(random() * TOPICS)));
    const batch = 500;
    for (let start = 0; start < total + CORE; start += batch) {
      const values: ReturnType<typeof sql>[] = [];
      const end = Math.min(start + batch, total + CORE);
      const texts = wordEmbedder ? Array.from({ length: end - start }, () => `The user ${sentence(8 + Math.floor(random() * 9))}.`) : [];
      const embedded = wordEmbedder ? await wordEmbedder.embed(texts) : [];
      for (let index = start; index < end; index += 1) {
        const core = index >= total;
        const owner = index % USERS;
        const topic = core ? Math.floor(random() * TOPICS) : userTopics[owner]![Math.floor(random() * 3)]!;
        const vector = wordEmbedder ? embedded[index - start]! : around(topics[topic]!, 0.08);
        const content = wordEmbedder ? texts[index - start]! : `topic ${topic} ${words(6)}`;
        values.push(
          sql`(${characterId}, ${core ? 'core' : 'user'}, ${core ? null : userIds[owner]!}, ${content}, ${store.vectorParam(vector)}::vector, ${MODEL}, ${DIMENSIONS})`,
        );
      }
      await db.execute(sql`INSERT INTO memories (character_id, scope, user_id, content, embedding, embedding_model, embedding_dimensions) VALUES ${sql.join(values, sql`, `)}`);
      if ((start / batch) % 100 === 0) process.stderr.write(`\rloaded ${start + values.length} / ${total + CORE}`);
    }
    const loadSeconds = (performance.now() - loadStarted) / 1000;
    process.stderr.write(`\nloaded in ${loadSeconds.toFixed(1)} s; building the HNSW index…\n`);
    const indexStarted = performance.now();
    if (backend === 'postgres' && withHnsw) await db.execute(sql`SET maintenance_work_mem = '2GB'`);
    if (withHnsw) await store.ensureVectorIndex(db, DIMENSIONS);
    await db.execute(sql`ANALYZE memories`);
    const indexSeconds = (performance.now() - indexStarted) / 1000;
    process.stderr.write(`index built in ${indexSeconds.toFixed(1)} s; querying…\n`);

    const space = { model: MODEL, dimensions: DIMENSIONS };
    const candidates = Math.max(topK * 4, 40);
    const exactTimes: number[] = [];
    const indexTimes: number[] = [];
    let recallSum = 0;
    let shortAnswers = 0;
    const textTimes: number[] = [];
    const plan = await store.explainVectorSearch(db, { characterId, includeCore: true, userId: userIds[0] }, space, randomVector(), candidates, store.FORCE_INDEX_SETTINGS);
    for (let query = 0; query < queries; query += 1) {
      const owner = Math.floor(random() * USERS);
      const filter = { characterId, includeCore: true, userId: userIds[owner] };
      const text = wordEmbedder ? `what about ${sentence(3)}?` : `topic ${userTopics[owner]![0]} ${words(2)}`;
      // Baseline: full-text search alone on the same scope.
      let started = performance.now();
      await store.textSearch(db, filter, text, candidates);
      textTimes.push(performance.now() - started);
      started = performance.now();
      // The query's vector: the word-vector embedder runs at query time (timed), as recall does.
      const vector = wordEmbedder ? (await wordEmbedder.embed([text]))[0]! : around(topics[userTopics[owner]![0]!]!, 0.08);
      // Recall's own statement (store.recallLists: both lists and the fill-up in one round trip), on
      // the exact path recall takes for a scope it knows to be small…
      const recallRequest = { filter, text, vector: { space, query: vector }, candidates, efSearch: Math.max(candidates * 2, 100), fillUpTo: topK };
      const exact = (await store.recallLists(db, { ...recallRequest, exactScanMaxRows: Number.MAX_SAFE_INTEGER, vectorPath: 'exact' })).vectorHits;
      exactTimes.push(performance.now() - started);
      if (!withHnsw) continue;
      // …and on its HNSW path (what a scope above MEMORY_EXACT_SCAN_MAX_ROWS gets), forced here for every scope.
      started = performance.now();
      const approximateLists = await store.recallLists(db, { ...recallRequest, exactScanMaxRows: 0, vectorPath: 'auto' });
      indexTimes.push(performance.now() - started);
      const approximate = approximateLists.vectorHits;
      const truth = new Set(exact.slice(0, topK).map((hit) => hit.id));
      const found = approximate.slice(0, topK).filter((hit) => truth.has(hit.id)).length;
      recallSum += truth.size > 0 ? found / truth.size : 1;
      if (approximateLists.indexCameShort) shortAnswers += 1;
    }
    const perUser = total / USERS;
    const lines = [
      `## memory-scale (${backend}, N = ${total.toLocaleString('en-US')})`,
      '',
      wordEmbedder
        ? `${total.toLocaleString('en-US')} user memories of one character over ${USERS.toLocaleString('en-US')} users (~${perUser.toFixed(0)} each) + ${CORE} core: sentences of 8–16 real words embedded by the built-in word-vector embedder (${DIMENSIONS}-d); ${queries} scoped hybrid queries (query embedded at query time + vector top ${candidates} + full-text) against full-text search alone on the same scope.`
        : `${total.toLocaleString('en-US')} user memories of one character over ${USERS.toLocaleString('en-US')} users (~${perUser.toFixed(0)} each) + ${CORE} core, ${DIMENSIONS}-d random unit vectors around ${TOPICS} shared topics; ${queries} scoped hybrid queries (vector top ${candidates} + full-text), recall@${topK} of the HNSW path against exact search.`,
      '',
      '| measure | value |',
      '| --- | --- |',
      `| load (multi-row INSERT) | ${loadSeconds.toFixed(1)} s |`,
      `| HNSW index build | ${withHnsw ? `${indexSeconds.toFixed(1)} s` : 'skipped (--hnsw no)'} |`,
      `| baseline: full-text search alone on the scope p50 / p99 | ${percentile(textTimes, 0.5).toFixed(1)} / ${percentile(textTimes, 0.99).toFixed(1)} ms |`,
      `| exact scoped hybrid path${wordEmbedder ? ' (query embedding included)' : ''} p50 / p99 | ${percentile(exactTimes, 0.5).toFixed(1)} / ${percentile(exactTimes, 0.99).toFixed(1)} ms |`,
      ...(withHnsw
        ? [
            `| HNSW path (iterative scan) p50 / p99 | ${percentile(indexTimes, 0.5).toFixed(1)} / ${percentile(indexTimes, 0.99).toFixed(1)} ms |`,
            `| recall@${topK} of the HNSW path | ${(recallSum / queries).toFixed(3)} |`,
            `| HNSW answers that came back short (recall then searched the scope exactly, in the same statement) | ${shortAnswers} of ${queries} |`,
            `| plan of the HNSW path | ${plan.includes('memories_embedding_hnsw') ? `Index Scan using memories_embedding_hnsw_${DIMENSIONS}` : 'no HNSW index scan'} |`,
          ]
        : []),
      '',
      `Recall uses the exact path for scopes up to MEMORY_EXACT_SCAN_MAX_ROWS (5000) rows, the HNSW path above; a short HNSW answer is re-run exactly.`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await cleanUp();
  }
}

await main();
