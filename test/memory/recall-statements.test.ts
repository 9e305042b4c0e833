import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEvalSet, seedEvalSet } from '../../bench/memory-eval/eval-set.js';
import { createLogger } from '../../src/infra/logging/logger.js';
import { countTokens } from '../../src/modules/characters/token-counter.js';
import { MemoryService } from '../../src/modules/memory/service.js';
import { fuseResults } from '../../src/modules/memory/retrieval.js';
import * as store from '../../src/modules/memory/store.js';
import { countStatements } from '../helpers/statement-counter.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * Recall runs on every chat turn: it must cost one database statement, whatever the scope's size
 * (exact scan or HNSW), whether the embedder works, and whether the answer is filled up with
 * standing memories.
 */

describe.each(backends())('memory recall statements (%s)', (backend) => {
  let server: TestServer;
  let characterId: string;
  let alice: string;

  beforeAll(async () => {
    server = await startTestServer(backend);
    const { characters, identity, memory } = server.container;
    characterId = (await characters.service.create({ name: 'Counted' }, { userId: null })).id;
    alice = (await identity.service.registerUser('statements-alice', 'alice')).user.id;
    const create = memory.service.create.bind(memory.service);
    await create({ characterId, scope: 'core', userId: null, guildId: null, content: 'I live in a lighthouse on the coast of Maine.', importance: 0.9 });
    await create({ characterId, scope: 'user', userId: alice, guildId: null, content: 'The user has a cat named Pixel who loves tuna.' });
    await create({ characterId, scope: 'user', userId: alice, guildId: null, content: 'The user is learning to play the cello.' });
    await create({ characterId, scope: 'group', userId: null, guildId: 'guild-1', content: 'This server runs a weekly cat photo contest.' });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  const place = () => ({ characterId, userId: alice, guildId: 'guild-1', channelId: 'general' });

  async function statementsOf(service: MemoryService, query: string, options?: { limit?: number }): Promise<{ statements: string[]; memories: number }> {
    // Nothing pending: the background flush of last_recalled_at cannot run inside the measurement.
    await service.flushRecalled();
    const counter = countStatements(server.container.db);
    try {
      const result = await service.recall(place(), query, options);
      return { statements: [...counter.statements], memories: result.memories.length };
    } finally {
      counter.restore();
    }
  }

  it('the counter sees every statement (the former recall took three)', async () => {
    const counter = countStatements(server.container.db);
    try {
      const filter = MemoryService.scopesOf(place());
      await store.textSearch(server.container.db, filter, 'cat', 40);
      await store.countScope(server.container.db, filter, { model: 'm', dimensions: 100 }, 10);
      await store.vectorSearch(server.container.db, filter, { model: 'm', dimensions: 100 }, new Array(100).fill(0.1), { limit: 40, exact: false });
    } finally {
      counter.restore();
    }
    // Two plain statements and a transaction (BEGIN, 3 SET LOCAL, the query, COMMIT).
    expect(counter.statements.length).toBeGreaterThanOrEqual(7);
  });

  it('one statement per recall: matching words, fill-up, no words at all', async () => {
    const service = server.container.memory.service;
    for (const query of ['What is the name of my cat?', 'cello', 'zzz qqq', '?!']) {
      const { statements, memories } = await statementsOf(service, query);
      expect(statements, `${query}: ${statements.join('\n')}`).toHaveLength(1);
      expect(memories).toBeGreaterThan(0);
    }
  });

  it('one statement on the HNSW path and when the embedder fails', async () => {
    const { db, memory, queue } = server.container;
    const logger = createLogger('silent');
    const settings = server.container.config.memory;
    const indexed = new MemoryService({ db, embedder: memory.embedder, queue, logger, settings: { ...settings, exactScanMaxRows: 0 }, countTokens });
    const indexedRun = await statementsOf(indexed, 'my cat Pixel');
    expect(indexedRun.statements).toHaveLength(1);
    expect(indexedRun.memories).toBeGreaterThan(0);
    const failing = new MemoryService({
      db,
      embedder: { ...memory.embedder, id: memory.embedder.id, dimensions: memory.embedder.dimensions, embed: () => Promise.reject(new Error('embedder down')) },
      queue,
      logger,
      settings,
      countTokens,
    });
    const failingRun = await statementsOf(failing, 'my cat Pixel');
    expect(failingRun.statements).toHaveLength(1);
    expect(failingRun.memories).toBeGreaterThan(0);
  });

  it('ranks exactly as the former separate statements did', async () => {
    const { db, memory, config } = server.container;
    const settings = config.memory;
    const embedder = memory.embedder;
    const space = { model: embedder.id, dimensions: embedder.dimensions };
    const filter = MemoryService.scopesOf(place());
    for (const query of ['What is the name of my cat?', 'cello lessons', 'lighthouse Maine cat contest', 'zzz']) {
      const limit = settings.topK;
      const candidates = Math.max(limit * 4, 40);
      const expansion = embedder.expandQuery && settings.expansionWeight > 0 && settings.expansionNeighbours > 0 ? { words: embedder.expandQuery(query, settings.expansionNeighbours), weight: settings.expansionWeight } : undefined;
      // The former path: full-text, count, exact vector scan, fusion, then a fill-up statement.
      const [vector] = await embedder.embed([query], 'query');
      const count = await store.countScope(db, filter, space, Math.max(settings.exactScanMaxRows, candidates));
      expect(count).toBeLessThanOrEqual(settings.exactScanMaxRows);
      const vectorHits = count > 0 ? await store.vectorSearch(db, filter, space, vector!, { limit: candidates, exact: true }) : [];
      const textHits = await store.textSearch(db, filter, query, candidates, expansion);
      const former = fuseResults(vectorHits, textHits, { weights: settings.weights, minRelevance: settings.minRelevance, vectorWeight: settings.vectorWeight, dropIrrelevant: false }, new Date()).slice(0, limit);
      if (former.length < limit) {
        const seen = new Set(former.map((row) => row.id));
        for (const row of await store.standingMemories(db, filter, -1, limit + former.length)) {
          if (former.length >= limit) break;
          if (!seen.has(row.id)) former.push({ ...row, score: 0, similarity: undefined, textRank: undefined, relevant: false });
        }
      }
      const now = await memory.service.search({ filter, query, limit });
      expect(now.map((row) => row.id), query).toEqual(former.map((row) => row.id));
      // The same up to the recency factor's milliseconds between the two calls.
      now.forEach((row, index) => expect(row.score, query).toBeCloseTo(former[index]!.score, 6));
    }
  });
  it("ranks the related words as ts_rank_cd of their OR query would, on the evaluation set's memories and questions", async () => {
    const { db, memory, config, identity } = server.container;
    const set = loadEvalSet();
    const userId = (await identity.service.registerUser('statements-eval', 'eval')).user.id;
    await seedEvalSet(memory.service, characterId, userId, set);
    const filter = MemoryService.scopesOf({ characterId, userId, guildId: undefined });
    const weight = config.memory.expansionWeight;
    let compared = 0;
    // Every fourth question (≈ 30, and over 200 ranked memories) keeps this test near a second.
    for (const { question } of set.questions.filter((_, index) => index % 4 === 0)) {
      const words = memory.embedder.expandQuery!(question, config.memory.expansionNeighbours);
      const tsQuery = store.textQueryOf(question);
      const related = store.textQueryOf(words.join(' '));
      if (!tsQuery || !related) continue;
      // The former statement, ts_rank_cd over the related words' own query.
      const former = await db.execute(
        sql`SELECT m.id, m.search_vector @@ q.query AS matched, ts_rank_cd(m.search_vector, q.query) + ${weight}::float8 * ts_rank_cd(m.search_vector, e.query) AS rank FROM memories m, to_tsquery('english', ${tsQuery}) AS q(query), to_tsquery('english', ${related}) AS e(query) WHERE m.search_vector @@ (q.query || e.query) AND m.user_id = ${userId}::uuid`,
      );
      const expected = new Map((former as { rows: Array<{ id: string; rank: number; matched: boolean }> }).rows.map((row) => [row.id, { rank: Number(row.rank), matched: row.matched }]));
      // The scope also holds the character's core memories: compare the user's.
      const hits = (await store.textSearch(db, filter, question, 1000, { words, weight })).filter((hit) => hit.userId === userId);
      expect(hits.map((hit) => hit.id).sort(), question).toEqual([...expected.keys()].sort());
      for (const hit of hits) {
        expect(hit.rank, question).toBeCloseTo(expected.get(hit.id)!.rank, 9);
        expect(hit.matched, question).toBe(expected.get(hit.id)!.matched);
      }
      compared += hits.length;
    }
    expect(compared).toBeGreaterThan(150);
  }, 120_000);

  it("counts every position of the question's and the related words, whatever the texts hold", async () => {
    const { db, identity, memory } = server.container;
    const userId = (await identity.service.registerUser('statements-awkward', 'awkward')).user.id;
    // Repeated related words (counted per position), capitals, apostrophes, accented and non-Latin
    // letters, numbers, a URL, an e-mail address, a file path, hyphenated words, and a word far
    // past position 16,383 (PostgreSQL's largest position: later words share it).
    const texts = [
      'The Natural History Museum is a MUSEUM of museums; the museum café opens at 9.',
      "O'Brien's ANNA and Ånna went to the Ångström lab at A-level; AAA batteries, v2.0A.",
      'Mail anna@example.com or see https://example.com/Museum/A?x=A — /var/A/museum.txt',
      'Ночной музей и café crème: the night-time museum tour, night after night.',
      `${'filler '.repeat(16_500)}museum night museum`,
      'Nothing related here at all.',
    ];
    for (const content of texts) await memory.service.create({ characterId, scope: 'user', userId, guildId: null, content });
    const filter = MemoryService.scopesOf({ characterId, userId, guildId: undefined });
    let repeated = 0;
    const cases: Array<[string, string[]]> = [
      ['what is open at night', ['museum', 'night']],
      ["O'Brien's ANNA, Ånna and the AAA v2.0A batteries", ['anna', 'batteries', 'lab']],
      ['mail anna@example.com about the museum.txt museum', ['example', 'museum', 'txt', 'café']],
      ['Ночной музей: a night-time tour, abc123 e2e', ['музей', 'night-time', 'crème']],
    ];
    for (const [question, words] of cases) {
      const tsQuery = store.textQueryOf(question)!;
      // The related words as the search takes them (split into words, e.g. night-time → night time).
      const relatedWords = store.textQueryOf(words.join(' '))!.split(' | ').join(' ');
      // The former statement's ranks: ts_rank_cd of the question's own words, and the positions of the related lexemes read by unnest.
      const former = await db.execute(
        sql`SELECT m.id, (SELECT coalesce(sum(cardinality(u.positions)), 0) FROM unnest(m.search_vector) u WHERE u.lexeme = ANY(r.lexemes))::int AS positions, ts_rank_cd(m.search_vector, q.query)::float8 AS own FROM memories m, to_tsquery('english', ${tsQuery}) AS q(query), tsvector_to_array(to_tsvector('english', ${relatedWords})) AS r(lexemes) WHERE m.user_id = ${userId}::uuid`,
      );
      const expected = new Map((former as { rows: Array<{ id: string; positions: number; own: number }> }).rows.map((row) => [row.id, row]));
      const hits = (await store.textSearch(db, filter, question, 1000, { words, weight: 0.5 })).filter((hit) => hit.userId === userId);
      expect(hits.length, words.join(' ')).toBeGreaterThan(0);
      for (const hit of hits) {
        const row = expected.get(hit.id)!;
        expect(hit.rank, words.join(' ')).toBeCloseTo(Number(row.own) + 0.5 * Math.fround(row.positions * Math.fround(0.1)), 6);
      }
      repeated += hits.filter((hit) => expected.get(hit.id)!.positions >= 2).length;
    }
    // The case a count of lexemes would get wrong was met.
    expect(repeated).toBeGreaterThan(2);
  }, 60_000);
});
