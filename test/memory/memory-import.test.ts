import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOpenRouterFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

type Memory = { id: string; content: string; external_id: string | null; metadata: Record<string, unknown> | null };
type ChatBody = { messages?: Array<{ role: string; content?: unknown }> };

/**
 * Import (idempotent by external_id, with metadata), no silent under-returns (a scope holding k
 * memories answers k), and memory_ids in chat answers naming exactly the prompt's memories.
 */
describe.each(backends())('memory import, fill-up and memory_ids (%s)', (backend) => {
  let server: TestServer;
  let fake: OpenAiCompatibleFake;
  let characterId: string;
  const asIris = () => ({ key: server.internalKey, headers: { 'x-user-id': 'discord:iris' } });

  beforeAll(async () => {
    fake = await startOpenRouterFake({ validKeys: ['platform-key'], reply: () => 'Noted.' });
    server = await startTestServer(backend, { OPENROUTER_BASE_URL: fake.url, OPENROUTER_API_KEY: 'platform-key', MEMORY_FORMATION_DELAY_MS: '600000', MEMORY_TOP_K: '8' });
    characterId = (await server.request('POST', '/v1/characters', { body: { name: 'Archivist', slug: 'archivist' } })).body.id;
  }, 180_000);
  afterAll(async () => {
    await server?.stop();
    await fake?.close();
  });

  const facts = [
    'The user has a ferret named Pico.',
    'The user works as a tax accountant in Leeds.',
    'The user is allergic to peanuts.',
    'The user plays the cello badly but happily.',
    'The user grew up in Whitby.',
    'The user is training for a marathon in April.',
    'The user reads Ursula K. Le Guin.',
    'The user drinks oat flat whites.',
    'The user fears spiders.',
    'The user supports Leeds United.',
    'The user bakes sourdough on Sundays.',
    'The user is learning Japanese.',
  ];

  it('imports idempotently by external_id, keeping metadata', async () => {
    const batch = facts.map((content, index) => ({ content, external_id: `fact-${index}`, metadata: { source: 'notes.md', line: index + 1 } }));
    const first = await server.request('POST', `/v1/characters/${characterId}/memories/import`, { ...asIris(), body: { memories: batch } });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ created: facts.length, updated: 0, unchanged: 0 });
    const again = await server.request('POST', `/v1/characters/${characterId}/memories/import`, { ...asIris(), body: { memories: batch } });
    expect(again.body).toMatchObject({ created: 0, updated: 0, unchanged: facts.length });
    expect(again.body.data.map((item: { id: string }) => item.id)).toEqual(first.body.data.map((item: { id: string }) => item.id));
    const changed = batch.map((item, index) => (index === 0 ? { ...item, content: 'The user has a ferret named Pico and a cat named Miso.' } : item));
    const third = await server.request('POST', `/v1/characters/${characterId}/memories/import`, { ...asIris(), body: { memories: changed } });
    expect(third.body).toMatchObject({ created: 0, updated: 1, unchanged: facts.length - 1 });
    expect(third.body.data[0]).toMatchObject({ id: first.body.data[0].id, external_id: 'fact-0', status: 'updated' });

    const listed: Memory[] = (await server.request('GET', `/v1/characters/${characterId}/memories?scope=user&limit=100`, asIris())).body.data;
    expect(listed).toHaveLength(facts.length);
    const pico = listed.find((memory) => memory.external_id === 'fact-0')!;
    expect(pico.content).toContain('Miso');
    expect(pico.metadata).toEqual({ source: 'notes.md', line: 1 });

    // The same external_id twice in one batch, or again through the single-memory route, is refused clearly.
    const twice = await server.request('POST', `/v1/characters/${characterId}/memories/import`, { ...asIris(), body: { memories: [batch[1], batch[1]] } });
    expect(twice.status).toBe(422);
    expect(twice.text).toContain('memories[1].external_id');
    const duplicate = await server.request('POST', `/v1/characters/${characterId}/memories`, { ...asIris(), body: { content: 'again', external_id: 'fact-1' } });
    expect(duplicate.status).toBe(409);
    // Another user's scope is another namespace.
    const other = await server.request('POST', `/v1/characters/${characterId}/memories`, { key: server.internalKey, headers: { 'x-user-id': 'discord:otto' }, body: { content: 'Otto keeps bees.', external_id: 'fact-1' } });
    expect(other.status).toBe(201);
    expect(other.body.external_id).toBe('fact-1');
  }, 120_000);

  it('a search asking for k gets k when the scope holds k, unless min_relevance is set', async () => {
    const search = (body: Record<string, unknown>) => server.request('POST', `/v1/characters/${characterId}/memories/search`, { ...asIris(), body });
    const unrelated = await search({ query: 'quarterly semiconductor export tariffs', limit: 10 });
    expect(unrelated.status).toBe(200);
    expect(unrelated.body.data).toHaveLength(10);
    const all = await search({ query: 'quarterly semiconductor export tariffs', limit: 100 });
    expect(all.body.data).toHaveLength(facts.length);
    const pet = await search({ query: 'what is my pet called?', limit: 5 });
    expect(pet.body.data).toHaveLength(5);
    expect(pet.body.data[0].content).toContain('Pico');
    expect(pet.body.data[0].relevant).toBe(true);
    const strict = await search({ query: 'quarterly semiconductor export tariffs', limit: 10, min_relevance: 0.95 });
    expect(strict.status).toBe(200);
    expect(strict.body.data.length).toBeLessThan(10);
    expect(strict.body.data.every((memory: { relevant: boolean }) => memory.relevant)).toBe(true);
  }, 120_000);

  it('a chat answer lists the memory_ids of exactly the memories in its prompt, k of them', async () => {
    const answer = await server.request('POST', `/v1/characters/archivist/chat`, { key: server.internalKey, body: { content: 'Tell me something about my pet.', user_id: 'discord:iris' } });
    expect(answer.status).toBe(200);
    const ids: string[] = answer.body.memory_ids;
    expect(ids).toHaveLength(8);
    expect(answer.body.memories_used).toBe(8);
    const listed: Memory[] = (await server.request('GET', `/v1/characters/${characterId}/memories?scope=user&limit=100`, asIris())).body.data;
    const byId = new Map(listed.map((memory) => [memory.id, memory]));
    const request = fake.requestsTo('/chat/completions').at(-1)!;
    const prompt = JSON.stringify((request.body as ChatBody).messages);
    const inPrompt = listed.filter((memory) => prompt.includes(memory.content));
    expect(new Set(ids)).toEqual(new Set(inPrompt.map((memory) => memory.id)));
    expect(ids.map((id) => byId.get(id)!.content).join(' ')).toContain('Pico');
  }, 120_000);
});
