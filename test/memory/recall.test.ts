import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq, sql } from 'drizzle-orm';
import { memories } from '../../src/infra/db/schema.js';
import { RECALLED_AT_RESOLUTION_MS } from '../../src/modules/memory/service.js';
import { touchRecalled } from '../../src/modules/memory/store.js';
import { countStatements } from '../helpers/statement-counter.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * Retrieval through the container API the chat engine uses: scopes, isolation between users and
 * servers, labels, expiry, the token budget and forgetting.
 */
describe.each(backends())('memory recall (%s)', (backend) => {
  let server: TestServer;
  let characterId: string;
  let otherCharacterId: string;
  let alice: string;
  let bob: string;

  beforeAll(async () => {
    server = await startTestServer(backend);
    const { characters, identity, memory } = server.container;
    characterId = (await characters.service.create({ name: 'Memory Keeper' }, { userId: null })).id;
    otherCharacterId = (await characters.service.create({ name: 'Someone Else' }, { userId: null })).id;
    alice = (await identity.service.registerUser('recall-alice', 'alice')).user.id;
    bob = (await identity.service.registerUser('recall-bob', 'bob')).user.id;
    const create = memory.service.create.bind(memory.service);
    await create({ characterId, scope: 'core', userId: null, guildId: null, content: 'I was built in a lighthouse on the coast of Maine.' });
    await create({ characterId, scope: 'user', userId: alice, guildId: null, content: 'The user has a cat named Pixel who loves tuna.' });
    await create({ characterId, scope: 'user', userId: bob, guildId: null, content: 'The user has a cat named Shadow and is allergic to tuna.' });
    await create({ characterId, scope: 'group', userId: null, guildId: 'guild-1', content: 'This server runs a weekly cat photo contest on Fridays.' });
    await create({ characterId, scope: 'group', userId: null, guildId: 'guild-2', content: 'This server is about cat breeding and tuna recipes.' });
    await create({ characterId: otherCharacterId, scope: 'user', userId: alice, guildId: null, content: 'The user told another character about a cat named Pixel.' });
    await create({ characterId, scope: 'user', userId: alice, guildId: null, content: 'The user had a cat sitter booked for tuna feeding.', expiresAt: new Date(Date.now() - 1000) });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  it('recalls the speaker\'s own memories and the core, labelled by source, and never another user\'s', async () => {
    const result = await server.container.memory.service.recall({ characterId, userId: alice, guildId: undefined, channelId: 'dm' }, 'What is the name of my cat?');
    const contents = result.memories.map((memory) => memory.content);
    expect(contents).toContain('The user has a cat named Pixel who loves tuna.');
    expect(contents.some((content) => content.includes('Shadow'))).toBe(false);
    expect(contents.some((content) => content.includes('server'))).toBe(false);
    expect(contents.some((content) => content.includes('another character'))).toBe(false);
    expect(contents.some((content) => content.includes('cat sitter'))).toBe(false);
    expect(result.promptSection).toContain('[about you] The user has a cat named Pixel who loves tuna.');
    expect(result.memories[0]?.content).toContain('Pixel');
  });

  it('adds the memories of the guild the speaker is in, and only that guild', async () => {
    const result = await server.container.memory.service.recall({ characterId, userId: bob, guildId: 'guild-1', channelId: 'general' }, 'cat tuna contest');
    const contents = result.memories.map((memory) => memory.content);
    expect(contents).toContain('This server runs a weekly cat photo contest on Fridays.');
    expect(contents).toContain('The user has a cat named Shadow and is allergic to tuna.');
    expect(contents.some((content) => content.includes('breeding'))).toBe(false);
    expect(contents.some((content) => content.includes('Pixel'))).toBe(false);
    expect(result.promptSection).toContain('[about this server] This server runs a weekly cat photo contest on Fridays.');
  });

  it('labels core memories and keeps within the token budget', async () => {
    const full = await server.container.memory.service.recall({ characterId, userId: alice, guildId: undefined, channelId: undefined }, 'where were you built, lighthouse? and my cat');
    expect(full.promptSection).toContain('[core] I was built in a lighthouse on the coast of Maine.');
    expect(full.memories.length).toBeGreaterThanOrEqual(2);
    const tight = await server.container.memory.service.recall({ characterId, userId: alice, guildId: undefined, channelId: undefined }, 'where were you built, lighthouse? and my cat', { tokenBudget: 30 });
    expect(tight.memories.length).toBe(1);
    const nothing = await server.container.memory.service.recall({ characterId, userId: alice, guildId: undefined, channelId: undefined }, 'lighthouse', { tokenBudget: 5 });
    expect(nothing.memories).toEqual([]);
    expect(nothing.promptSection).toBe('');
  });

  it('records last_recalled_at in the background', async () => {
    const result = await server.container.memory.service.recall({ characterId, userId: alice, guildId: undefined, channelId: undefined }, 'Pixel');
    const id = result.memories[0]!.id;
    await server.container.memory.service.flushRecalled();
    const row = await server.container.memory.service.find(id);
    expect(row?.lastRecalledAt).toBeInstanceOf(Date);
  });

  it('rewrites last_recalled_at at most once per resolution: a memory recalled again sooner keeps its row version', async () => {
    const { db } = server.container;
    const [memory] = await db.select({ id: memories.id }).from(memories).where(eq(memories.content, 'I was built in a lighthouse on the coast of Maine.'));
    const id = memory!.id;
    // xmin names the transaction that wrote the row version: a rewrite changes it.
    const version = async () => {
      const result: unknown = await db.execute(sql`SELECT xmin::text AS xmin, last_recalled_at FROM memories WHERE id = ${id}::uuid`);
      const [row] = (result as { rows: Array<{ xmin: string; last_recalled_at: Date | string | null }> }).rows;
      return { xmin: row!.xmin, at: row!.last_recalled_at === null ? null : new Date(row!.last_recalled_at).getTime() };
    };
    const first = new Date('2030-01-01T12:00:00Z');
    await touchRecalled(db, [id], first, RECALLED_AT_RESOLUTION_MS);
    const written = await version();
    expect(written.at).toBe(first.getTime());
    // Recalled again within the resolution: nothing is written.
    await touchRecalled(db, [id], new Date(first.getTime() + RECALLED_AT_RESOLUTION_MS - 1000), RECALLED_AT_RESOLUTION_MS);
    expect(await version()).toEqual(written);
    // Once the recorded time is older than the resolution, the next recall is recorded.
    const later = new Date(first.getTime() + RECALLED_AT_RESOLUTION_MS + 1000);
    await touchRecalled(db, [id], later, RECALLED_AT_RESOLUTION_MS);
    const rewritten = await version();
    expect(rewritten.at).toBe(later.getTime());
    expect(rewritten.xmin).not.toBe(written.xmin);
  });

  it('does not send a memory it recorded within the resolution again', async () => {
    const { service } = server.container.memory;
    const place = { characterId, userId: alice, guildId: undefined, channelId: undefined };
    expect((await service.recall(place, 'Pixel')).memories.length).toBeGreaterThan(0);
    await service.flushRecalled();
    const counter = countStatements(server.container.db);
    try {
      expect((await service.recall(place, 'Pixel')).memories.length).toBeGreaterThan(0);
      await service.flushRecalled();
      expect(counter.statements.filter((statement) => statement.includes('last_recalled_at'))).toEqual([]);
    } finally {
      counter.restore();
    }
  });

  it('stamps recalled memories in place: heap-only updates that write no index entry', async () => {
    const { characters, db, identity, memory } = server.container;
    const dora = (await identity.service.registerUser('recall-dora', 'dora')).user.id;
    const keeper = (await characters.service.create({ name: 'Tide Keeper' }, { userId: null })).id;
    // Rows the size of real memories (a 300-dimension vector each), enough to fill several pages.
    const ids: string[] = [];
    for (let index = 0; index < 24; index += 1) {
      const created = await memory.service.create({ characterId: keeper, scope: 'user', userId: dora, guildId: null, content: `The user mentioned a walk by the sea on day ${index}, with a long story about the tide, the gulls and the lighthouse keeper who waved.` });
      ids.push(created.id);
    }
    const optionsResult: unknown = await db.execute(sql`SELECT reloptions FROM pg_class WHERE oid = 'memories'::regclass`);
    const [options] = (optionsResult as { rows: Array<{ reloptions: string[] | string }> }).rows;
    expect(String(options!.reloptions)).toContain('fillfactor=60');
    // The session's counts not yet sent to the statistics (this transaction's and maybe earlier ones'): read before and after.
    const counts = await db.transaction(async (transaction) => {
      const read = async () => {
        const result: unknown = await transaction.execute(
          sql`SELECT pg_stat_get_xact_tuples_updated('memories'::regclass)::int AS updated, pg_stat_get_xact_tuples_hot_updated('memories'::regclass)::int AS hot`,
        );
        return (result as { rows: Array<{ updated: number; hot: number }> }).rows[0]!;
      };
      const before = await read();
      await touchRecalled(transaction, ids, new Date(), RECALLED_AT_RESOLUTION_MS);
      const after = await read();
      return { updated: after.updated - before.updated, hot: after.hot - before.hot };
    });
    expect(counts.updated).toBe(ids.length);
    // At the default fillfactor none of them is (measured: 0 of 24); at 60, 20 of 24 here — rows
    // sharing a page compete for its free space until the versions they leave are pruned.
    expect(counts.hot).toBeGreaterThanOrEqual(ids.length * 0.75);
  });

  it('writes a large batch of recalls in slices of 50, each its own statement, and records them all', async () => {
    const { service } = server.container.memory;
    const { db, identity } = server.container;
    const carol = (await identity.service.registerUser('recall-carol', 'carol')).user.id;
    const ids: string[] = [];
    for (let index = 0; index < 120; index += 1) {
      ids.push((await service.create({ characterId, scope: 'user', userId: carol, guildId: null, content: `Carol's note number ${index} about the tides.` })).id);
    }
    // As if 120 of carol's memories had come back from recalls since the last flush.
    for (const id of ids) (service as unknown as { pendingRecalled: Set<string> }).pendingRecalled.add(id);
    const counter = countStatements(db);
    try {
      await service.flushRecalled();
      expect(counter.statements.filter((statement) => statement.includes('last_recalled_at'))).toHaveLength(3);
    } finally {
      counter.restore();
    }
    const result: unknown = await db.execute(sql`SELECT count(*)::int AS n FROM memories WHERE user_id = ${carol}::uuid AND last_recalled_at IS NOT NULL`);
    expect((result as { rows: Array<{ n: number }> }).rows[0]!.n).toBe(120);
  });

  it('forgetUser deletes only that user\'s memories with that character', async () => {
    const deleted = await server.container.memory.service.forgetUser(characterId, alice);
    expect(deleted).toBe(2);
    const after = await server.container.memory.service.recall({ characterId, userId: alice, guildId: undefined, channelId: undefined }, 'cat named Pixel tuna');
    expect(after.memories.some((memory) => memory.content.includes('Pixel'))).toBe(false);
    const bobs = await server.container.memory.service.recall({ characterId, userId: bob, guildId: undefined, channelId: undefined }, 'cat named Shadow');
    expect(bobs.memories.some((memory) => memory.content.includes('Shadow'))).toBe(true);
    const elsewhere = await server.container.memory.service.recall({ characterId: otherCharacterId, userId: alice, guildId: undefined, channelId: undefined }, 'cat named Pixel');
    expect(elsewhere.memories.some((memory) => memory.content.includes('Pixel'))).toBe(true);
  });
});
