import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conversations, memories, messages } from '../../src/infra/db/schema.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/** GET /v1/me/export includes the user's memories and messages; DELETE /v1/me forgets them. */
describe.each(backends())('own data export and deletion (%s)', (backend) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(backend);
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  it('exports everything of the user and nothing of others, then deletes it', async () => {
    const as = (externalId: string) => ({ key: server.internalKey, headers: { 'x-user-id': externalId } });
    await server.request('POST', '/v1/characters', { body: { name: 'Data Keeper', slug: 'data-keeper' } });
    expect((await server.request('POST', '/v1/characters/data-keeper/memories', { ...as('data-carol'), body: { content: 'Carol collects vinyl records.' } })).status).toBe(201);
    expect((await server.request('POST', '/v1/characters/data-keeper/memories', { ...as('data-dave'), body: { content: 'Dave collects stamps.' } })).status).toBe(201);
    const { db, identity, characters } = server.container;
    const carol = (await identity.service.registerUser('data-carol', undefined)).user.id;
    const characterId = (await characters.service.get('data-keeper')).id;
    const [channel] = await db.insert(conversations).values({ characterId, guildId: 'g1', channelId: 'c1', placeKey: 'channel:g1:c1' }).returning();
    await db.insert(messages).values({ conversationId: channel!.id, role: 'user', speakerUserId: carol, content: 'Carol says hi in the channel.' });

    const exported = await server.request('GET', '/v1/me/export', as('data-carol'));
    expect(exported.status).toBe(200);
    expect(exported.body.user_id).toBe(carol);
    expect(exported.body.memories.map((memory: { content: string }) => memory.content)).toEqual(['Carol collects vinyl records.']);
    expect(exported.body.conversations.messages.map((message: { content: string }) => message.content)).toEqual(['Carol says hi in the channel.']);
    expect(exported.body.account.identities.map((identity: { externalId: string }) => identity.externalId)).toContain('data-carol');
    expect(exported.text).not.toContain('Dave');

    expect((await server.request('DELETE', '/v1/me', as('data-carol'))).status).toBe(204);
    expect(await db.select().from(memories).where(eq(memories.userId, carol))).toEqual([]);
    expect(await db.select().from(messages).where(eq(messages.speakerUserId, carol))).toEqual([]);
    const dave = await server.request('POST', '/v1/characters/data-keeper/memories/search', { ...as('data-dave'), body: { query: 'stamps' } });
    expect(dave.body.data.map((result: { content: string }) => result.content)).toContain('Dave collects stamps.');
    // Carol is a stranger now: a new user on next sight, with nothing remembered.
    const fresh = await server.request('GET', '/v1/me/export', as('data-carol'));
    expect(fresh.body.user_id).not.toBe(carol);
    expect(fresh.body.memories).toEqual([]);
  });
});
