import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/** The memory HTTP API: who may see, add, change and delete which memories; search isolation. */
describe.each(backends())('memory API (%s)', (backend) => {
  let server: TestServer;
  let aliceKey: string;
  let bobKey: string;
  const slug = 'api-memory-keeper';

  const asService = (externalId: string, extra: Record<string, string> = {}) => ({ key: server.internalKey, headers: { 'x-user-id': externalId, ...extra } });

  beforeAll(async () => {
    server = await startTestServer(backend);
    const alice = await server.request('POST', '/v1/keys', { body: { name: 'alice', role: 'user' }, headers: { 'x-user-id': 'api-alice' } });
    const bob = await server.request('POST', '/v1/keys', { body: { name: 'bob', role: 'user' }, headers: { 'x-user-id': 'api-bob' } });
    aliceKey = alice.body.key;
    bobKey = bob.body.key;
    // Alice owns the character; Bob only talks to it.
    // Public visibility needs a service key: the bot publishes it for Alice.
    const created = await server.request('POST', '/v1/characters', { ...asService('api-alice'), body: { name: 'API Memory Keeper', slug, visibility: 'public' } });
    expect(created.status).toBe(201);
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  it('creates user memories for the acting user and core memories only for the owner', async () => {
    const mine = await server.request('POST', `/v1/characters/${slug}/memories`, { key: aliceKey, body: { content: 'Alice plays the cello in an orchestra.' } });
    expect(mine.status).toBe(201);
    expect(mine.body).toMatchObject({ scope: 'user', content: 'Alice plays the cello in an orchestra.', guild_id: null });
    const bobs = await server.request('POST', `/v1/characters/${slug}/memories`, { key: bobKey, body: { content: 'Bob plays the cello in a jazz band.', importance: 0.9 } });
    expect(bobs.status).toBe(201);
    expect(bobs.body.user_id).not.toBe(mine.body.user_id);

    const coreByBob = await server.request('POST', `/v1/characters/${slug}/memories`, { key: bobKey, body: { scope: 'core', content: 'I hate music.' } });
    expect(coreByBob.status).toBe(403);
    const coreByOwner = await server.request('POST', `/v1/characters/${slug}/memories`, { key: aliceKey, body: { scope: 'core', content: 'I grew up listening to cello suites.' } });
    expect(coreByOwner.status).toBe(201);

    const groupByUser = await server.request('POST', `/v1/characters/${slug}/memories`, { key: bobKey, body: { scope: 'group', content: 'x', guild_id: 'g' } });
    expect(groupByUser.status).toBe(403);
    const groupByService = await server.request('POST', `/v1/characters/${slug}/memories`, { ...asService('api-bob'), body: { scope: 'group', content: 'The Strings server meets to jam cello on Sundays.', guild_id: 'strings' } });
    expect(groupByService.status).toBe(201);
    expect(groupByService.body).toMatchObject({ scope: 'group', guild_id: 'strings', user_id: null });

    const empty = await server.request('POST', `/v1/characters/${slug}/memories`, { key: aliceKey, body: { content: '' } });
    expect(empty.status).toBe(422);
    const unknown = await server.request('POST', '/v1/characters/no-such-character/memories', { key: aliceKey, body: { content: 'x' } });
    expect(unknown.status).toBe(404);
  });

  it('search returns only what applies to the caller, with scores and sources', async () => {
    const alice = await server.request('POST', `/v1/characters/${slug}/memories/search`, { key: aliceKey, body: { query: 'who plays the cello?' } });
    expect(alice.status).toBe(200);
    const aliceContents = alice.body.data.map((result: { content: string }) => result.content);
    expect(aliceContents).toContain('Alice plays the cello in an orchestra.');
    expect(aliceContents).toContain('I grew up listening to cello suites.');
    expect(aliceContents.some((content: string) => content.includes('Bob'))).toBe(false);
    expect(aliceContents.some((content: string) => content.includes('Strings'))).toBe(false);
    for (const result of alice.body.data) {
      expect(result.score).toBeGreaterThan(0);
      expect(['[core]', '[about you]']).toContain(result.source);
    }

    // A user key cannot name a guild, nor another user.
    expect((await server.request('POST', `/v1/characters/${slug}/memories/search`, { key: aliceKey, body: { query: 'cello', guild_id: 'strings' } })).status).toBe(403);
    const sneaky = await server.request('POST', `/v1/characters/${slug}/memories/search`, { key: aliceKey, body: { query: 'cello', user_id: 'api-bob' } });
    expect(sneaky.status).toBe(403);

    // The bot (service key) searches for Bob in the Strings server: Bob's, the server's and the core.
    const bot = await server.request('POST', `/v1/characters/${slug}/memories/search`, { key: server.internalKey, body: { query: 'cello', user_id: 'api-bob', guild_id: 'strings' } });
    expect(bot.status).toBe(200);
    const botContents = bot.body.data.map((result: { content: string }) => result.content);
    expect(botContents).toEqual(expect.arrayContaining(['Bob plays the cello in a jazz band.', 'The Strings server meets to jam cello on Sundays.', 'I grew up listening to cello suites.']));
    expect(botContents.some((content: string) => content.includes('Alice'))).toBe(false);
    const sources = bot.body.data.map((result: { source: string }) => result.source);
    expect(sources).toContain('[about this server]');
  });

  it('lists core and own memories for users, with cursor pagination', async () => {
    for (let index = 0; index < 4; index += 1) {
      await server.request('POST', `/v1/characters/${slug}/memories`, { key: aliceKey, body: { content: `Alice fact number ${index}.` } });
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `?limit=2&cursor=${cursor}` : '?limit=2';
      const page = await server.request('GET', `/v1/characters/${slug}/memories${query}`, { key: aliceKey });
      expect(page.status).toBe(200);
      seen.push(...page.body.data.map((memory: { content: string }) => memory.content));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen).toHaveLength(6);
    expect(new Set(seen).size).toBe(6);
    expect(seen).toContain('I grew up listening to cello suites.');
    expect(seen.some((content) => content.includes('Bob') || content.includes('Strings'))).toBe(false);

    const groups = await server.request('GET', `/v1/characters/${slug}/memories?scope=group&guild_id=strings`, { key: server.internalKey });
    expect(groups.body.data.map((memory: { content: string }) => memory.content)).toEqual(['The Strings server meets to jam cello on Sundays.']);
    expect((await server.request('GET', `/v1/characters/${slug}/memories?guild_id=strings`, { key: bobKey })).status).toBe(403);
    expect((await server.request('GET', `/v1/characters/${slug}/memories?cursor=garbage`, { key: bobKey })).status).toBe(422);
  });

  it('lets users change and delete only their own memories; others get 404', async () => {
    const created = await server.request('POST', `/v1/characters/${slug}/memories`, { key: bobKey, body: { content: 'Bob lives in Lisbon.' } });
    const id = created.body.id;
    expect((await server.request('PATCH', `/v1/memories/${id}`, { key: aliceKey, body: { content: 'hacked' } })).status).toBe(404);
    expect((await server.request('DELETE', `/v1/memories/${id}`, { key: aliceKey })).status).toBe(404);
    expect((await server.request('PATCH', `/v1/memories/${id}`, { key: bobKey, body: {} })).status).toBe(422);

    const changed = await server.request('PATCH', `/v1/memories/${id}`, { key: bobKey, body: { content: 'Bob moved from Lisbon to Porto.', importance: 0.8 } });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ content: 'Bob moved from Lisbon to Porto.', importance: 0.8 });
    // The vector follows the content: the new words are found.
    const found = await server.request('POST', `/v1/characters/${slug}/memories/search`, { key: bobKey, body: { query: 'Porto' } });
    expect(found.body.data[0]?.id).toBe(id);

    expect((await server.request('DELETE', `/v1/memories/${id}`, { key: bobKey })).status).toBe(204);
    expect((await server.request('DELETE', `/v1/memories/${id}`, { key: bobKey })).status).toBe(404);
    expect((await server.request('DELETE', '/v1/memories/not-a-uuid', { key: bobKey })).status).toBe(404);
  });

  it('expired memories are neither listed nor found', async () => {
    const past = new Date(Date.now() - 60_000).toISOString();
    await server.request('POST', `/v1/characters/${slug}/memories`, { key: aliceKey, body: { content: 'Alice had a temporary badge number 4412.', expires_at: past } });
    const found = await server.request('POST', `/v1/characters/${slug}/memories/search`, { key: aliceKey, body: { query: 'temporary badge 4412' } });
    expect(found.body.data.some((result: { content: string }) => result.content.includes('4412'))).toBe(false);
    const listed = await server.request('GET', `/v1/characters/${slug}/memories?limit=200`, { key: aliceKey });
    expect(listed.body.data.some((memory: { content: string }) => memory.content.includes('4412'))).toBe(false);
  });
});
