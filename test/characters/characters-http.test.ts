import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDemoCharacters } from '../../src/modules/characters/seed.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

const ada = {
  name: 'Ada Lovelace',
  description: 'A Victorian mathematician who sees poetry in engines.',
  personality_traits: { curious: 0.9, witty: 0.5, shy: 0.1 },
  interaction_style: 'scholarly',
  knowledge_domains: ['mathematics', 'analytical engines'],
  example_dialogues: [{ user: 'What is a program?', assistant: 'A weaving of numbers, {{user}}.' }],
  backstory: 'Daughter of Lord Byron.',
  greeting: 'Good day, {{user}}.',
  model_settings: { provider: 'openrouter', model: 'openai/gpt-4o', temperature: 0.3, max_tokens: 500 },
};

describe.each(backends())('characters over HTTP on %s storage', (backend) => {
  let server: TestServer;
  let aliceKey: string;
  let bobKey: string;
  let aliceId: string;

  beforeAll(async () => {
    server = await startTestServer(backend);
    const alice = await server.request('POST', '/v1/keys', { body: { name: 'alice', role: 'user' }, headers: { 'x-user-id': 'discord:alice' } });
    const bob = await server.request('POST', '/v1/keys', { body: { name: 'bob', role: 'user' }, headers: { 'x-user-id': 'discord:bob' } });
    aliceKey = alice.body.key;
    aliceId = alice.body.user_id;
    bobKey = bob.body.key;
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('creates a character with a slug from the name, and reads it by id and by slug', async () => {
    const created = await server.request('POST', '/v1/characters', { body: ada });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      slug: 'ada-lovelace',
      name: 'Ada Lovelace',
      personality_traits: { curious: 0.9, witty: 0.5, shy: 0.1 },
      interaction_style: 'scholarly',
      model_settings: { provider: 'openrouter', model: 'openai/gpt-4o', temperature: 0.3, max_tokens: 500 },
      visibility: 'public',
      owner_user_id: null,
      system_prompt: null,
    });
    expect(created.body.system_prompt_preview).toContain('You are strongly curious, moderately witty and slightly shy.');
    expect(created.body.system_prompt_preview).toContain('Ada Lovelace: A weaving of numbers, {{user}}.');

    const byId = await server.request('GET', `/v1/characters/${created.body.id}`, { key: aliceKey });
    const bySlug = await server.request('GET', '/v1/characters/ada-lovelace', { key: aliceKey });
    expect(byId.status).toBe(200);
    expect(bySlug.body).toEqual(byId.body);

    // The same name again gets a free slug; an explicit taken slug is a conflict.
    const again = await server.request('POST', '/v1/characters', { body: { name: 'Ada Lovelace' } });
    expect(again.body.slug).toBe('ada-lovelace-2');
    const taken = await server.request('POST', '/v1/characters', { body: { name: 'Other', slug: 'ada-lovelace' } });
    expect(taken.status).toBe(409);
    expect(taken.body.code).toBe('conflict');
  });

  it('refuses bad input with a 422 naming the field', async () => {
    const trait = await server.request('POST', '/v1/characters', { body: { name: 'X', personality_traits: { bold: 1.5 } } });
    expect(trait.status).toBe(422);
    expect(trait.body.field).toBe('body.personality_traits.bold');
    const style = await server.request('POST', '/v1/characters', { body: { name: 'X', interaction_style: 'grumpy' } });
    expect(style.status).toBe(422);
    expect(style.body.field).toBe('body.interaction_style');
    const slug = await server.request('POST', '/v1/characters', { body: { name: 'X', slug: 'Bad Slug' } });
    expect(slug.status).toBe(422);
    expect(slug.body.field).toBe('body.slug');
    const uuidSlug = await server.request('POST', '/v1/characters', { body: { name: 'X', slug: '00000000-0000-4000-8000-000000000000' } });
    expect(uuidSlug.status).toBe(422);
    expect(uuidSlug.body.field).toBe('slug');
    const nameless = await server.request('POST', '/v1/characters', { body: { name: '   ' } });
    expect(nameless.status).toBe(422);
    const temperature = await server.request('PATCH', '/v1/characters/ada-lovelace', { body: { model_settings: { temperature: 3 } } });
    expect(temperature.status).toBe(422);
    expect(temperature.body.field).toBe('body.model_settings.temperature');
    expect((await server.request('GET', '/v1/characters/no-such-one')).status).toBe(404);
    expect((await server.request('GET', '/v1/characters/NOT%20A%20SLUG')).status).toBe(404);
  });

  it('keeps private characters to their owner, admins and services; only they may change them', async () => {
    const created = await server.request('POST', '/v1/characters', { key: aliceKey, body: { name: 'Secret Friend', visibility: 'private' } });
    expect(created.status).toBe(201);
    expect(created.body.owner_user_id).toBe(aliceId);

    expect((await server.request('GET', '/v1/characters/secret-friend', { key: aliceKey })).status).toBe(200);
    expect((await server.request('GET', '/v1/characters/secret-friend', { key: bobKey })).status).toBe(404);
    expect((await server.request('GET', '/v1/characters/secret-friend')).status).toBe(200);
    // A service key sees what the user it acts for sees (its own user without X-User-Id).
    expect((await server.request('GET', '/v1/characters/secret-friend', { key: server.internalKey, headers: { 'x-user-id': 'discord:alice' } })).status).toBe(200);
    expect((await server.request('GET', '/v1/characters/secret-friend', { key: server.internalKey })).status).toBe(404);
    expect((await server.request('PATCH', '/v1/characters/secret-friend', { key: bobKey, body: { name: 'Mine' } })).status).toBe(404);

    // Bob may see Ada (public, no owner) but not change it.
    const forbidden = await server.request('PATCH', '/v1/characters/ada-lovelace', { key: bobKey, body: { name: 'Bob Ada' } });
    expect(forbidden.status).toBe(403);

    const bobList = await server.request('GET', '/v1/characters?limit=200', { key: bobKey });
    expect(bobList.body.data.map((character: { slug: string }) => character.slug)).not.toContain('secret-friend');
    const aliceList = await server.request('GET', '/v1/characters?limit=200', { key: aliceKey });
    expect(aliceList.body.data.map((character: { slug: string }) => character.slug)).toContain('secret-friend');

    const renamed = await server.request('PATCH', '/v1/characters/secret-friend', { key: aliceKey, body: { name: 'Secret Pal', slug: 'secret-pal' } });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ name: 'Secret Pal', slug: 'secret-pal', visibility: 'private' });
    // The old slug no longer answers, from the cache or otherwise.
    expect((await server.request('GET', '/v1/characters/secret-friend', { key: aliceKey })).status).toBe(404);

    expect((await server.request('DELETE', '/v1/characters/secret-pal', { key: bobKey })).status).toBe(404);
    expect((await server.request('DELETE', '/v1/characters/secret-pal', { key: aliceKey })).status).toBe(204);
    expect((await server.request('GET', `/v1/characters/${created.body.id}`)).status).toBe(404);
  });

  it('serves the changed character right after a PATCH (cache invalidated)', async () => {
    const before = await server.request('GET', '/v1/characters/ada-lovelace');
    expect(before.body.backstory).toBe('Daughter of Lord Byron.');
    const patched = await server.request('PATCH', '/v1/characters/ada-lovelace', {
      body: { backstory: 'Countess of Lovelace.', personality: 'Restless and brilliant.' },
    });
    expect(patched.status).toBe(200);
    const after = await server.request('GET', '/v1/characters/ada-lovelace');
    expect(after.body.backstory).toBe('Countess of Lovelace.');
    expect(after.body.personality).toBe('Restless and brilliant.');
    // Fields not in the patch stay as they were.
    expect(after.body.knowledge_domains).toEqual(['mathematics', 'analytical engines']);
  });

  it('paginates the list with a cursor, newest first, without repeats', async () => {
    for (let index = 0; index < 5; index += 1) {
      await server.request('POST', '/v1/characters', { body: { name: `Page Character ${index}` } });
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { data: Array<{ slug: string }>; next_cursor: string | null } } = await server.request(
        'GET',
        `/v1/characters?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(page.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.data.map((character) => character.slug));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.indexOf('page-character-4')).toBeLessThan(seen.indexOf('page-character-0'));
    expect(seen).toContain('ada-lovelace');
    expect((await server.request('GET', '/v1/characters?cursor=garbage')).status).toBe(422);
  });

  it('seeds the three demo characters once, and leaves them alone on the next run', async () => {
    const service = server.container.characters.service;
    expect(await seedDemoCharacters(service)).toEqual({ created: ['ada', 'juniper', 'marlowe'], skipped: [] });
    expect(await seedDemoCharacters(service)).toEqual({ created: [], skipped: ['ada', 'juniper', 'marlowe'] });
    const marlowe = await server.request('GET', '/v1/characters/marlowe', { key: bobKey });
    expect(marlowe.body).toMatchObject({ interaction_style: 'sarcastic', visibility: 'public', owner_user_id: null });
    expect(marlowe.body.system_prompt_preview).toContain('You are strongly observant, strongly sarcastic');
    expect(marlowe.body.greeting).toContain('{{user}}');
  });
});
