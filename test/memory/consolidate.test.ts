import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOpenRouterFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

type ChatBody = { messages?: Array<{ role: string; content?: unknown }> };
const isFormationCall = (body: ChatBody) => JSON.stringify(body.messages?.[0]?.content ?? '').includes('Answer with JSON only');

/** POST …/memories/consolidate forms memories now, without waiting for the background job. */
describe.each(backends())('consolidate now (%s)', (backend) => {
  let server: TestServer;
  let fake: OpenAiCompatibleFake;
  let characterId: string;

  beforeAll(async () => {
    fake = await startOpenRouterFake({
      validKeys: ['platform-key'],
      reply: (body: ChatBody) =>
        isFormationCall(body) ? JSON.stringify({ operations: [{ op: 'add', scope: 'user', content: 'The user plays the oboe.', importance: 0.6 }] }) : 'Lovely.',
    });
    // The background window is far away, so only consolidate can form the memory within the test.
    server = await startTestServer(backend, { OPENROUTER_BASE_URL: fake.url, OPENROUTER_API_KEY: 'platform-key', MEMORY_FORMATION_DELAY_MS: '600000' });
    characterId = (await server.request('POST', '/v1/characters', { body: { name: 'Keeper', slug: 'keeper' } })).body.id;
  }, 180_000);

  afterAll(async () => {
    await server?.stop();
    await fake?.close();
  });

  const asDana = { key: undefined as string | undefined, headers: { 'x-user-id': 'discord:dana' } };

  it('forms the acting user\'s memories from their conversation at once, and only theirs', async () => {
    asDana.key = server.internalKey;
    const told = await server.request('POST', `/v1/characters/keeper/chat`, { key: server.internalKey, body: { content: 'I play the oboe in an orchestra.', user_id: 'discord:dana' } });
    expect(told.status).toBe(200);
    const list = () => server.request('GET', `/v1/characters/${characterId}/memories?scope=user`, asDana);
    expect((await list()).body.data).toEqual([]);

    const consolidated = await server.request('POST', `/v1/characters/${characterId}/memories/consolidate`, { ...asDana, body: {} });
    expect(consolidated.status).toBe(200);
    expect(consolidated.body).toEqual({ changed: 1, conversations: 1 });
    expect((await list()).body.data.map((memory: { content: string }) => memory.content)).toEqual(['The user plays the oboe.']);

    const other = await server.request('GET', `/v1/characters/${characterId}/memories?scope=user`, { key: server.internalKey, headers: { 'x-user-id': 'discord:eli' } });
    expect(other.body.data).toEqual([]);
  }, 120_000);
  it('eight concurrent consolidations store each fact once and make one model call (issue 8, item 5)', async () => {
    const asFinn = { key: server.internalKey, headers: { 'x-user-id': 'discord:finn' } };
    const told = await server.request('POST', `/v1/characters/keeper/chat`, { key: server.internalKey, body: { content: 'I play the oboe too, every Sunday.', user_id: 'discord:finn' } });
    expect(told.status).toBe(200);
    const formationCalls = () => fake.requestsTo('/chat/completions').filter((request) => isFormationCall(request.body as ChatBody)).length;
    const callsBefore = formationCalls();
    const answers = await Promise.all(Array.from({ length: 8 }, () => server.request('POST', `/v1/characters/${characterId}/memories/consolidate`, { ...asFinn, body: {} })));
    expect(answers.map((answer) => answer.status)).toEqual(Array(8).fill(200));
    // The fake model adds the fact every time it is asked: only serialised runs that see the
    // earlier run's progress keep it to one copy and one paid call.
    expect(answers.reduce((sum, answer) => sum + (answer.body.changed as number), 0)).toBe(1);
    expect(formationCalls() - callsBefore).toBe(1);
    const stored = (await server.request('GET', `/v1/characters/${characterId}/memories?scope=user`, asFinn)).body.data.map((memory: { content: string }) => memory.content);
    expect(stored).toEqual(['The user plays the oboe.']);
    // Nothing new was said: a later consolidation makes no model call at all.
    const again = await server.request('POST', `/v1/characters/${characterId}/memories/consolidate`, { ...asFinn, body: {} });
    expect(again.body.changed).toBe(0);
    expect(formationCalls() - callsBefore).toBe(1);
  }, 120_000);
});
