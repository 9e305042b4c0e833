/**
 * Import throughput and search latency through the HTTP API, for the built-in word-vector
 * embedder against the hashing embedder (the baseline) in the same run: N memories of one user
 * (one scope: the worst case, above MEMORY_EXACT_SCAN_MAX_ROWS it takes the HNSW path), loaded
 * through POST …/memories/import in batches of 1,000, then Q searches of the eval set's questions.
 *
 *   npx tsx bench/memory-search.ts [--n 10000] [--queries 100] [--backend embedded|postgres]
 *
 * PostgreSQL needs TEST_DATABASE_URL (a scratch database is made and dropped).
 */
import { readFileSync } from 'node:fs';
import { projectFile } from '../src/infra/project-files.js';
import { loadEvalSet } from './memory-eval/eval-set.js';
import { percentile } from './stats.js';
import { seededRandom } from '../test/fakes/vectors.js';
import { startTestServer } from '../test/helpers/test-server.js';

const argument = (name: string, fallback: string): string => {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && process.argv[index + 1] ? process.argv[index + 1]! : fallback;
};
const total = Number(argument('n', '10000'));
const queries = Number(argument('queries', '100'));
const backend = argument('backend', 'embedded') as 'embedded' | 'postgres';

// Synthetic memories: 8–16 words drawn from the 20,000 most frequent words, seeded; the eval
// set's memories are mixed in so the questions have answers.
const vocabulary = readFileSync(projectFile('assets', 'word-vectors', 'words.txt'), 'utf8')
  .split('\n')
  .slice(100, 20_100)
  .map((line) => line.split('\t')[0]!)
  .filter((word) => /^\p{L}+$/u.test(word));
const random = seededRandom(11);
const set = loadEvalSet();
const contents: string[] = [];
for (let index = 0; index < total; index += 1) {
  if (index < set.memories.length) {
    contents.push(set.memories[index]!.content);
    continue;
  }
  const length = 8 + Math.floor(random() * 9);
  contents.push(`The user ${Array.from({ length }, () => vocabulary[Math.floor(random() * vocabulary.length)]).join(' ')}.`);
}

const rows: string[] = [];
for (const provider of ['hashing', 'words'] as const) {
  const server = await startTestServer(backend, { EMBEDDING_PROVIDER: provider, LOG_LEVEL: 'warn' });
  try {
    const characterId = (await server.request('POST', '/v1/characters', { body: { name: 'Bench', slug: 'bench' } })).body.id as string;
    const asUser = { key: server.internalKey, headers: { 'x-user-id': 'discord:bench' } };
    const importStarted = performance.now();
    for (let start = 0; start < total; start += 1000) {
      const memories = contents.slice(start, start + 1000).map((content, offset) => ({ content, external_id: `m${start + offset}` }));
      const answer = await server.request('POST', `/v1/characters/${characterId}/memories/import`, { ...asUser, body: { memories } });
      if (answer.status !== 200) throw new Error(`import answered ${answer.status}: ${answer.text.slice(0, 300)}`);
      process.stderr.write(`\r${provider}: imported ${Math.min(start + 1000, total)} / ${total}`);
    }
    const importSeconds = (performance.now() - importStarted) / 1000;
    process.stderr.write('\n');
    const times: number[] = [];
    for (let query = 0; query < queries; query += 1) {
      const question = set.questions[query % set.questions.length]!.question;
      const started = performance.now();
      const answer = await server.request('POST', `/v1/characters/${characterId}/memories/search`, { ...asUser, body: { query: question, limit: 10 } });
      times.push(performance.now() - started);
      if (answer.status !== 200 || answer.body.data.length !== 10) throw new Error(`search answered ${answer.status} with ${answer.body?.data?.length} results`);
    }
    rows.push(
      `| ${provider === 'words' ? 'words (default)' : 'hashing (baseline)'} | ${(total / importSeconds).toFixed(0)} | ${percentile(times, 0.5).toFixed(1)} | ${percentile(times, 0.99).toFixed(1)} |`,
    );
  } finally {
    await server.stop();
  }
}

process.stdout.write(
  [
    `## memory-search (${backend}, ${total.toLocaleString('en-US')} memories in one user's scope)`,
    '',
    `Import through POST …/memories/import in batches of 1,000 (embedding included); then ${queries} searches (limit 10) through POST …/memories/search, over HTTP on loopback.`,
    '',
    '| embedder | import, memories/s | search p50, ms | search p99, ms |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n'),
);
