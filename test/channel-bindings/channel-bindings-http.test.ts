import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

describe.each(backends())('channel bindings over HTTP on %s storage', (backend) => {
  let server: TestServer;
  let userKey: string;

  beforeAll(async () => {
    server = await startTestServer(backend);
    for (const name of ['Mira', 'Orin', 'Sage']) {
      const created = await server.request('POST', '/v1/characters', { body: { name, description: `${name} is a test character.`, avatar: `https://cdn.example/${name}.png` } });
      expect(created.status).toBe(201);
    }
    const key = await server.request('POST', '/v1/keys', { body: { name: 'someone', role: 'user' }, headers: { 'x-user-id': 'discord:someone' } });
    userKey = key.body.key;
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('binds characters to a channel, a category and a server, with defaults that need no set-up', async () => {
    const channel = await server.request('POST', '/v1/channel-bindings', {
      key: server.internalKey,
      body: { platform: 'discord', guild_id: 'g1', channel_id: 'c1', character: 'mira' },
    });
    expect(channel.status).toBe(201);
    expect(channel.body).toMatchObject({
      platform: 'discord',
      guild_id: 'g1',
      channel_id: 'c1',
      category_id: null,
      scope: 'channel',
      character: { slug: 'mira', name: 'Mira', avatar_url: 'https://cdn.example/Mira.png' },
      triggers: { mention: true, reply: true, name: true, words: [], every_message: false },
      free_will: { enabled: false },
      voice_replies: false,
    });
    const second = await server.request('POST', '/v1/channel-bindings', {
      key: server.internalKey,
      body: { guild_id: 'g1', channel_id: 'c1', character: 'orin', triggers: { words: ['ship'], mention: false }, voice_replies: true },
    });
    expect(second.status).toBe(201);
    expect(second.body.triggers).toEqual({ mention: false, reply: true, name: true, words: ['ship'], every_message: false });
    const category = await server.request('POST', '/v1/channel-bindings', { body: { guild_id: 'g1', category_id: 'cat1', character: 'sage' } });
    expect(category.status).toBe(201);
    expect(category.body.scope).toBe('category');
    const serverDefault = await server.request('POST', '/v1/channel-bindings', { body: { guild_id: 'g1', character: 'orin' } });
    expect(serverDefault.status).toBe(201);
    expect(serverDefault.body.scope).toBe('server');

    const listed = await server.request('GET', '/v1/channel-bindings?guild_id=g1', { key: server.internalKey });
    expect(listed.status).toBe(200);
    expect(listed.body.data.map((binding: { scope: string; character: { slug: string } }) => `${binding.scope}:${binding.character.slug}`)).toEqual([
      'channel:mira',
      'channel:orin',
      'category:sage',
      'server:orin',
    ]);
    const byCharacter = await server.request('GET', '/v1/channel-bindings?guild_id=g1&character=orin', { key: server.internalKey });
    expect(byCharacter.body.data).toHaveLength(2);
  });

  it('resolves a place to its channel bindings, else its category, else the server default', async () => {
    const resolve = (query: string) => server.request('GET', `/v1/channel-bindings/resolve?${query}`, { key: server.internalKey });
    const own = await resolve('guild_id=g1&channel_id=c1&category_id=cat1');
    expect(own.body.scope).toBe('channel');
    expect(own.body.data.map((binding: { character: { slug: string } }) => binding.character.slug)).toEqual(['mira', 'orin']);
    const inCategory = await resolve('guild_id=g1&channel_id=c2&category_id=cat1');
    expect(inCategory.body.scope).toBe('category');
    expect(inCategory.body.data.map((binding: { character: { slug: string } }) => binding.character.slug)).toEqual(['sage']);
    const elsewhere = await resolve('guild_id=g1&channel_id=c3');
    expect(elsewhere.body.scope).toBe('server');
    expect(elsewhere.body.data.map((binding: { character: { slug: string } }) => binding.character.slug)).toEqual(['orin']);
    const otherServer = await resolve('guild_id=g2&channel_id=c1');
    expect(otherServer.body).toEqual({ scope: null, data: [] });
  });

  it('updates triggers, free will and voice replies by merging, and deletes', async () => {
    const created = await server.request('POST', '/v1/channel-bindings', { body: { guild_id: 'g3', channel_id: 'c9', character: 'mira' } });
    const id = created.body.id as string;
    const patched = await server.request('PATCH', `/v1/channel-bindings/${id}`, {
      key: server.internalKey,
      body: { triggers: { every_message: true }, free_will: { enabled: true, probability: 0.25 }, voice_replies: true },
    });
    expect(patched.status).toBe(200);
    expect(patched.body.triggers).toEqual({ mention: true, reply: true, name: true, words: [], every_message: true });
    expect(patched.body.free_will).toEqual({ enabled: true, probability: 0.25, cooldown_seconds: 300 });
    expect(patched.body.voice_replies).toBe(true);
    expect((await server.request('GET', `/v1/channel-bindings/${id}`)).body.voice_replies).toBe(true);

    expect((await server.request('DELETE', `/v1/channel-bindings/${id}`, { key: server.internalKey })).status).toBe(204);
    expect((await server.request('DELETE', `/v1/channel-bindings/${id}`, { key: server.internalKey })).status).toBe(404);
    expect((await server.request('PATCH', '/v1/channel-bindings/not-a-uuid', { body: { voice_replies: true } })).status).toBe(404);
  });

  it('refuses duplicates, unknown characters, both channel and category, bad values and user keys', async () => {
    const duplicate = await server.request('POST', '/v1/channel-bindings', { body: { guild_id: 'g1', channel_id: 'c1', character: 'mira' } });
    expect(duplicate.status).toBe(409);
    expect(duplicate.body.binding_id).toEqual(expect.any(String));
    expect((await server.request('POST', '/v1/channel-bindings', { body: { guild_id: 'g1', channel_id: 'c1', character: 'nobody' } })).status).toBe(404);
    const both = await server.request('POST', '/v1/channel-bindings', { body: { guild_id: 'g1', channel_id: 'c1', category_id: 'cat1', character: 'sage' } });
    expect(both.status).toBe(422);
    expect(both.text).toContain('category_id');
    const badProbability = await server.request('POST', '/v1/channel-bindings', { body: { guild_id: 'g1', channel_id: 'c5', character: 'sage', free_will: { probability: 3 } } });
    expect(badProbability.status).toBe(422);
    expect(badProbability.text).toContain('probability');
    expect((await server.request('GET', '/v1/channel-bindings', { key: userKey })).status).toBe(403);
    expect((await server.request('POST', '/v1/channel-bindings', { key: userKey, body: { guild_id: 'g1', character: 'sage' } })).status).toBe(403);
  });

  it('drops a binding with its character, and documents the routes in the OpenAPI', async () => {
    const character = await server.request('POST', '/v1/characters', { body: { name: 'Ephemeral', description: 'Gone soon.' } });
    await server.request('POST', '/v1/channel-bindings', { body: { guild_id: 'g4', character: character.body.id } });
    expect((await server.request('GET', '/v1/channel-bindings/resolve?guild_id=g4')).body.data).toHaveLength(1);
    expect((await server.request('DELETE', `/v1/characters/${character.body.id}`)).status).toBe(204);
    expect((await server.request('GET', '/v1/channel-bindings/resolve?guild_id=g4')).body).toEqual({ scope: null, data: [] });

    const openapi = await server.request('GET', '/openapi.json', { key: null });
    expect(Object.keys(openapi.body.paths)).toEqual(expect.arrayContaining(['/v1/channel-bindings', '/v1/channel-bindings/{id}', '/v1/channel-bindings/resolve']));
  });
});
