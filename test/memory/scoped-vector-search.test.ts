import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memories } from '../../src/infra/db/schema.js';
import * as store from '../../src/modules/memory/store.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';
import { seededRandom } from '../fakes/vectors.js';

/**
 * pgvector's HNSW index filters AFTER its scan: with many memories of other users close to the
 * query, a plain index scan of ef_search candidates holds few or none of the target user's.
 * These tests build exactly that case and prove the scoped search returns every one of the
 * target's memories, on the index path (iterative scan) and on the service path.
 */
const DIMENSIONS = 384;
const OTHERS = 3000;
const TARGETS = 6;


function unit(vector: number[]): number[] {
  const norm = Math.hypot(...vector);
  return vector.map((value) => value / norm);
}

/** The base direction plus noise of the given size: small noise = close to the query. */
function near(base: number[], noise: number, random: () => number): number[] {
  return unit(base.map((value) => value + noise * (random() * 2 - 1)));
}

describe.each(backends())('scoped vector search (%s)', (backend) => {
  let server: TestServer;
  let characterId: string;
  let target: string;
  let query: number[];
  let space: store.EmbeddingSpace;
  const targetIds: string[] = [];

  beforeAll(async () => {
    // Random 384-d vectors: the hashing embedder's space (the default word vectors have 100 dimensions).
    server = await startTestServer(backend, { EMBEDDING_PROVIDER: 'hashing' });
    const { characters, identity, memory, db } = server.container;
    space = { model: memory.embedder.id, dimensions: memory.embedder.dimensions };
    expect(space.dimensions).toBe(DIMENSIONS);
    characterId = (await characters.service.create({ name: 'Crowded' }, { userId: null })).id;
    target = (await identity.service.registerUser('scoped-target', 'target')).user.id;
    const crowd = await Promise.all(Array.from({ length: 20 }, (_, index) => identity.service.registerUser(`scoped-crowd-${index}`, undefined)));
    const random = seededRandom(42);
    query = unit(Array.from({ length: DIMENSIONS }, () => random() * 2 - 1));
    const rows: Array<typeof memories.$inferInsert> = [];
    for (let index = 0; index < OTHERS; index += 1) {
      rows.push({
        characterId,
        scope: 'user',
        userId: crowd[index % crowd.length]!.user.id,
        content: `crowd memory ${index}`,
        embedding: near(query, 0.02, random),
        embeddingModel: space.model,
        embeddingDimensions: DIMENSIONS,
      });
    }
    for (let index = 0; index < TARGETS; index += 1) {
      rows.push({ characterId, scope: 'user', userId: target, content: `target memory ${index}`, embedding: near(query, 0.08, random), embeddingModel: space.model, embeddingDimensions: DIMENSIONS });
    }
    for (let start = 0; start < rows.length; start += 500) {
      const inserted = await db.insert(memories).values(rows.slice(start, start + 500)).returning({ id: memories.id, userId: memories.userId });
      targetIds.push(...inserted.filter((row) => row.userId === target).map((row) => row.id));
    }
    expect(targetIds).toHaveLength(TARGETS);
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
  });

  const filter = () => ({ characterId, includeCore: true, userId: target });

  it('the index path is really the HNSW index on the cast expression', async () => {
    const plan = await store.explainVectorSearch(server.container.db, filter(), space, query, 40, store.FORCE_INDEX_SETTINGS);
    expect(plan).toContain(`memories_embedding_hnsw_${DIMENSIONS}`);
  });

  it('a plain HNSW scan misses the target\'s memories (the failure this guards against)', async () => {
    const hits = await store.vectorSearch(server.container.db, filter(), space, query, { limit: 40, exact: false, forceIndex: true, withoutIterativeScan: true, efSearch: 40 });
    expect(hits.length).toBeLessThan(TARGETS);
  });

  it('iterative scan returns every one of the target\'s memories through the index', async () => {
    const hits = await store.vectorSearch(server.container.db, filter(), space, query, { limit: 40, exact: false, forceIndex: true, efSearch: 40 });
    expect(hits.map((hit) => hit.id).sort()).toEqual([...targetIds].sort());
    expect(hits.every((hit) => hit.userId === target)).toBe(true);
  });

  it('recall\'s single statement takes the HNSW path for a large scope and its in-statement iterative scan finds every target memory', async () => {
    const request: store.RecallListsRequest = { filter: filter(), text: undefined, vector: { space, query }, candidates: 40, exactScanMaxRows: 0, efSearch: 40 };
    const statement = store.recallListsStatement(request)!;
    const { plan, lists } = await server.container.db.transaction(async (transaction) => {
      for (const setting of store.FORCE_INDEX_SETTINGS) await transaction.execute(sql.raw(`SET LOCAL ${setting}`));
      const explained = await transaction.execute(sql`EXPLAIN ${statement}`);
      const rows = (explained as { rows: Array<Record<string, string>> }).rows;
      return { plan: rows.map((row) => Object.values(row).join(' ')).join('\n'), lists: await store.recallLists(transaction, request) };
    });
    expect(plan).toContain(`memories_embedding_hnsw_${DIMENSIONS}`);
    // A plain scan at ef_search 40 misses targets (above): all six through the index means the
    // statement's own set_config turned iterative scan on, and no exact re-run was needed.
    expect(lists.indexCameShort).toBe(false);
    expect(lists.vectorHits.map((hit) => hit.id).sort()).toEqual([...targetIds].sort());
  });

  it('recall\'s single statement compares a small scope exactly', async () => {
    const lists = await store.recallLists(server.container.db, { filter: filter(), text: undefined, vector: { space, query }, candidates: 40, exactScanMaxRows: 1000, efSearch: 40 });
    expect(lists.indexCameShort).toBe(false);
    expect(lists.vectorHits.map((hit) => hit.id).sort()).toEqual([...targetIds].sort());
    const exact = await store.vectorSearch(server.container.db, filter(), space, query, { limit: 40, exact: true });
    expect(lists.vectorHits.map((hit) => hit.id)).toEqual(exact.map((hit) => hit.id));
    expect(lists.scopeRows).toBe(TARGETS);
    // The shape for a scope known to be small (no HNSW branch to plan) answers the same.
    const exactShape = await store.recallLists(server.container.db, { filter: filter(), text: undefined, vector: { space, query }, candidates: 40, exactScanMaxRows: 1000, efSearch: 40, vectorPath: 'exact' });
    expect(exactShape.vectorHits.map((hit) => hit.id)).toEqual(exact.map((hit) => hit.id));
    expect(exactShape.scopeRows).toBe(TARGETS);
  });

  it('the exact path agrees', async () => {
    const hits = await store.vectorSearch(server.container.db, filter(), space, query, { limit: 40, exact: true });
    expect(hits.map((hit) => hit.id).sort()).toEqual([...targetIds].sort());
  });
});
