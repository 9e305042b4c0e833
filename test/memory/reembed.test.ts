import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memories } from '../../src/infra/db/schema.js';
import { reembedMemories } from '../../src/modules/memory/reembed.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/** Changing the embedder: rows made by another model are re-embedded in batches, resumably. */
describe.each(backends())('re-embedding (%s)', (backend) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(backend);
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  it('re-embeds stale rows in committed batches, resumes after an interruption, and makes them searchable', async () => {
    const { characters, identity, memory, db } = server.container;
    const characterId = (await characters.service.create({ name: 'Reembed' }, { userId: null })).id;
    const userId = (await identity.service.registerUser('reembed-user', undefined)).user.id;
    // As left by an earlier embedder: another model name and another size, or no vector at all.
    const rows = Array.from({ length: 25 }, (_, index) => ({
      characterId,
      scope: 'user' as const,
      userId,
      content: index === 7 ? 'The user keeps bees on a rooftop in Lyon.' : `Old fact ${index}`,
      embedding: index % 2 === 0 ? [0.6, 0.8, 0] : null,
      embeddingModel: index % 2 === 0 ? 'old-model' : null,
      embeddingDimensions: index % 2 === 0 ? 3 : null,
    }));
    await db.insert(memories).values(rows);
    const before = await memory.service.search({ filter: { characterId, includeCore: false, userId }, query: 'apiculture rooftop Lyon bees', limit: 5 });
    expect(before.every((result) => result.similarity === undefined)).toBe(true);

    const controller = new AbortController();
    const progress: number[] = [];
    const first = await reembedMemories(server.container, {
      batchSize: 10,
      signal: controller.signal,
      onProgress: ({ done, total }) => {
        progress.push(done);
        expect(total).toBe(25);
        if (done >= 10) controller.abort();
      },
    });
    expect(first).toEqual({ reembedded: 10, remaining: 15 });

    const second = await reembedMemories(server.container, { batchSize: 10, onProgress: ({ done }) => progress.push(done) });
    expect(second).toEqual({ reembedded: 15, remaining: 0 });
    // The first run stopped after one batch; the second counts its own progress.
    expect(progress).toEqual([10, 10, 15]);

    const counted = await db.execute(sql`SELECT count(*)::int AS count FROM memories WHERE embedding_model = ${memory.embedder.id} AND embedding_dimensions = ${memory.embedder.dimensions}`);
    expect(Number((counted as { rows: Array<{ count: number }> }).rows[0]!.count)).toBe(25);
    const after = await memory.service.search({ filter: { characterId, includeCore: false, userId }, query: 'bees rooftop', limit: 5 });
    expect(after[0]?.content).toBe('The user keeps bees on a rooftop in Lyon.');
    expect(after[0]?.similarity).toBeGreaterThan(0.2);
    expect(await reembedMemories(server.container)).toEqual({ reembedded: 0, remaining: 0 });
  });
});
