import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGeminiFake, startOpenRouterFake, startXaiFake, type GeminiFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * Issue 8, item 12: a test per setting proves it takes effect. Each setting below is given a
 * non-default value and the behaviour it controls is observed at the edge (what the vendor received,
 * what the API answered), so a setting that is read but overridden fails here.
 */
describe.each(backends())('settings take effect on %s', (backend) => {
  let server: TestServer;
  let openrouter: OpenAiCompatibleFake;
  let gemini: GeminiFake;
  let xai: OpenAiCompatibleFake;
  const as = (user: string) => ({ key: server.internalKey, headers: { 'x-user-id': user } });
  const systemText = (body: unknown): string =>
    ((body as { messages?: Array<{ role: string; content: unknown }> }).messages ?? []).filter((message) => message.role === 'system').map((message) => String(message.content)).join('\n');

  beforeAll(async () => {
    [openrouter, gemini, xai] = await Promise.all([
      startOpenRouterFake({ validKeys: ['or-platform'] }),
      startGeminiFake({ validKeys: ['gemini-platform'] }),
      startXaiFake({ validKeys: ['xai-platform'] }),
    ]);
    server = await startTestServer(backend, {
      OPENROUTER_BASE_URL: openrouter.url,
      OPENROUTER_API_KEY: 'or-platform',
      GEMINI_BASE_URL: gemini.url,
      GEMINI_API_KEY: 'gemini-platform',
      XAI_BASE_URL: xai.url,
      XAI_API_KEY: 'xai-platform',
      MEMORY_TOKEN_BUDGET: '45',
      MEMORY_FORMATION_DELAY_MS: '600000',
      DEFAULT_CHAT_MODEL: 'acme/lantern-7b',
      MAX_API_KEYS_PER_USER: '2',
      MAX_MEMORIES_PER_USER: '2',
      MEMORY_MIN_RELEVANCE: '0.95',
      MEMORY_EXPANSION_NEIGHBOURS: '0',
    });
  }, 240_000);

  afterAll(async () => {
    await server?.stop();
    await Promise.all([openrouter?.close(), gemini?.close(), xai?.close()]);
  });

  it('MEMORY_TOKEN_BUDGET bounds the memories in a chat turn\'s prompt (no hard-coded budget overrides it)', async () => {
    const character = await server.request('POST', '/v1/characters', { body: { name: 'Budget Keeper', visibility: 'public' } });
    expect(character.status).toBe(201);
    const facts = [
      'The lighthouse keeper paints the lighthouse door red every spring before the storms arrive.',
      'The lighthouse lamp was built in 1890 by a glassmaker from Glasgow with brass fittings.',
      'The lighthouse cat sleeps on the warm lamp room floor every night during winter storms.',
      'The lighthouse logbook lists every ship that passed the reef since the old war ended.',
      'The lighthouse garden grows tomatoes and beans in the shelter of the stone wall.',
      'The lighthouse bell rings twice at noon so the fishermen know the tide has turned.',
    ];
    for (const content of facts) {
      const created = await server.request('POST', `/v1/characters/${character.body.id}/memories`, { body: { content, scope: 'core', importance: 0.9 } });
      expect(created.status).toBe(201);
    }
    // The same recall with the old hard-coded 600 tokens would put every fact in the prompt.
    const place = { characterId: character.body.id, userId: (await server.request('GET', '/v1/me', as('budget-user'))).body.id, guildId: undefined, channelId: undefined };
    const roomy = await server.container.memory.service.recall(place, 'tell me about the lighthouse', { tokenBudget: 600 });
    expect(roomy.memories.length).toBe(facts.length);

    const turn = await server.request('POST', `/v1/characters/${character.body.id}/chat`, { ...as('budget-user'), body: { content: 'tell me about the lighthouse' } });
    expect(turn.status).toBe(200);
    const prompt = systemText(openrouter.lastRequest('/chat/completions')!.body);
    const included = facts.filter((fact) => prompt.includes(fact));
    expect(included.length).toBeGreaterThanOrEqual(1);
    expect(included.length).toBeLessThanOrEqual(2);
    expect(turn.body.memories_used).toBe(included.length);
  }, 120_000);

  it('DEFAULT_CHAT_MODEL is the model of a character without model settings', async () => {
    const character = await server.request('POST', '/v1/characters', { body: { name: 'Plain Model', visibility: 'public' } });
    const turn = await server.request('POST', `/v1/characters/${character.body.id}/chat`, { ...as('model-user'), body: { content: 'hello' } });
    expect(turn.status).toBe(200);
    expect((openrouter.lastRequest('/chat/completions')!.body as { model: string }).model).toBe('acme/lantern-7b');
  }, 60_000);

  it('consolidation forms memories with the character\'s own provider and model (Gemini, xAI), not openai/gpt-4o-mini', async () => {
    for (const vendor of [
      { provider: 'gemini', model: 'gemini-2.5-pro', calls: () => gemini.requestsTo(':generateContent').map((request) => request.path) },
      { provider: 'xai', model: 'grok-3-mini', calls: () => xai.requestsTo('/chat/completions').map((request) => (request.body as { model: string }).model) },
    ]) {
      const character = await server.request('POST', '/v1/characters', { body: { name: `Former ${vendor.provider}`, visibility: 'public', model_settings: { provider: vendor.provider, model: vendor.model } } });
      expect(character.status).toBe(201);
      const user = `former-${vendor.provider}`;
      const turn = await server.request('POST', `/v1/characters/${character.body.id}/chat`, { ...as(user), body: { content: 'My sister Ada lives in Lisbon and keeps bees on her roof.' } });
      expect(turn.status).toBe(200);
      const openrouterBefore = openrouter.requestsTo('/chat/completions').length;
      const vendorBefore = vendor.calls().length;
      const consolidated = await server.request('POST', `/v1/characters/${character.body.id}/memories/consolidate`, { ...as(user), body: {} });
      expect(consolidated.status).toBe(200);
      const formation = vendor.calls().slice(vendorBefore);
      expect(formation.length).toBeGreaterThanOrEqual(1);
      for (const call of formation) expect(call).toContain(vendor.model);
      expect(openrouter.requestsTo('/chat/completions').length).toBe(openrouterBefore);
    }
  }, 120_000);

  it('MEMORY_MIN_RELEVANCE labels a vector match below it as not relevant (MEMORY_EXPANSION_NEIGHBOURS=0: no word match through neighbours)', async () => {
    const character = await server.request('POST', '/v1/characters', { body: { name: 'Relevance Keeper', visibility: 'public' } });
    for (const content of ['My dog Rex loves running on the beach.', 'I work night shifts as a nurse.']) {
      expect((await server.request('POST', `/v1/characters/${character.body.id}/memories`, { ...as('relevance-user'), body: { content, scope: 'user' } })).status).toBe(201);
    }
    const search = await server.request('POST', `/v1/characters/${character.body.id}/memories/search`, { ...as('relevance-user'), body: { query: 'puppy' } });
    expect(search.status).toBe(200);
    const dog = (search.body.data as Array<{ content: string; similarity: number | null; text_rank: number | null; relevant: boolean }>).find((row) => row.content.includes('Rex'))!;
    // Similar enough for the default threshold (0.2), below this server's 0.95, and no word in common.
    expect(dog.similarity).toBeGreaterThan(0.2);
    expect(dog.similarity).toBeLessThan(0.95);
    expect(dog.text_rank ?? 0).toBe(0);
    expect(dog.relevant).toBe(false);
  }, 60_000);

  it('MAX_API_KEYS_PER_USER and MAX_MEMORIES_PER_USER cap what a user adds (403 limit_reached)', async () => {
    const keys = [];
    for (let index = 0; index < 3; index += 1) keys.push(await server.request('POST', '/v1/keys', { ...as('capped-user'), body: { name: `key ${index}`, role: 'user' } }));
    expect(keys.map((response) => response.status)).toEqual([201, 201, 403]);
    expect(keys[2]!.body).toMatchObject({ code: 'limit_reached', limit: 2 });

    const character = await server.request('POST', '/v1/characters', { body: { name: 'Cap Keeper', visibility: 'public' } });
    const memories = [];
    for (let index = 0; index < 3; index += 1) {
      memories.push(await server.request('POST', `/v1/characters/${character.body.id}/memories`, { ...as('capped-user'), body: { content: `fact number ${index}`, scope: 'user' } }));
    }
    expect(memories.map((response) => response.status)).toEqual([201, 201, 403]);
    expect(memories[2]!.body).toMatchObject({ code: 'limit_reached', limit: 2 });
  }, 60_000);
});
