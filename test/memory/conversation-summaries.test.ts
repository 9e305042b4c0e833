import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOpenRouterFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

type ChatBody = { messages?: Array<{ role: string; content?: unknown }> };
const systemText = (body: ChatBody) => JSON.stringify(body.messages?.[0]?.content ?? '');

/** Long conversations are summarised into memory every N messages, over HTTP on each backend. */
describe.each(backends())('periodic conversation summaries (%s)', (backend) => {
  let server: TestServer;
  let fake: OpenAiCompatibleFake;
  let characterId: string;

  beforeAll(async () => {
    fake = await startOpenRouterFake({
      validKeys: ['platform-key'],
      reply: (body: ChatBody) => {
        const system = systemText(body);
        if (system.includes('Summarise this conversation segment')) return 'Ana and Ben planned a picnic for Saturday.';
        if (system.includes('Answer with JSON only')) return '{"operations":[]}';
        return 'Sounds fun!';
      },
    });
    server = await startTestServer(backend, {
      OPENROUTER_BASE_URL: fake.url,
      OPENROUTER_API_KEY: 'platform-key',
      MEMORY_FORMATION_DELAY_MS: '0',
      MEMORY_SUMMARY_EVERY_MESSAGES: '6',
      RUN_WORKERS_IN_PROCESS: 'true',
    });
    const created = await server.request('POST', '/v1/characters', { body: { name: 'Chronicler', slug: 'chronicler' } });
    characterId = created.body.id;
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await fake?.close();
  });

  const say = (userId: string, content: string, headers: Record<string, string> = {}) =>
    server.request('POST', '/v1/chat/completions', {
      key: server.internalKey,
      headers: { 'x-user-id': userId, ...headers },
      body: { model: 'character/chronicler', messages: [{ role: 'user', content }] },
    });
  const summariesOf = async (query: string, headers: Record<string, string>) => {
    const listed = await server.request('GET', `/v1/characters/${characterId}/memories?${query}`, { key: server.internalKey, headers });
    return (listed.body.data as Array<{ content: string }>).map((memory) => memory.content).filter((content) => content.startsWith('Conversation summary'));
  };

  it('summarises a server channel into a group memory after N messages, once per segment', async () => {
    const channel = { 'x-guild-id': 'guild-7', 'x-channel-id': 'park' };
    await say('discord:ana', 'Shall we have a picnic?', channel);
    await say('discord:ben', 'Yes, Saturday works for me.', channel);
    await server.container.queue.whenIdle(20_000);
    expect(await summariesOf('scope=group&guild_id=guild-7', { 'x-user-id': 'discord:ana' })).toEqual([]);

    await say('discord:ana', 'I will bring sandwiches.', channel);
    await server.container.queue.whenIdle(20_000);
    await expect.poll(() => summariesOf('scope=group&guild_id=guild-7', { 'x-user-id': 'discord:ana' }), { timeout: 10_000 }).toHaveLength(1);
    const [summary] = await summariesOf('scope=group&guild_id=guild-7', { 'x-user-id': 'discord:ana' });
    expect(summary).toContain('Ana and Ben planned a picnic for Saturday.');

    // Two messages more do not make a new segment.
    await say('discord:ben', 'Great.', channel);
    await server.container.queue.whenIdle(20_000);
    expect(await summariesOf('scope=group&guild_id=guild-7', { 'x-user-id': 'discord:ana' })).toHaveLength(1);
    // A summary of a server channel is nobody's personal memory.
    expect(await summariesOf('scope=user', { 'x-user-id': 'discord:ana' })).toEqual([]);
  });

  it('summarises a DM into the user scope of that user only', async () => {
    for (const text of ['Hello there', 'I am learning the cello', 'It is hard but fun']) await say('discord:cy', text);
    await server.container.queue.whenIdle(20_000);
    await expect.poll(() => summariesOf('scope=user', { 'x-user-id': 'discord:cy' }), { timeout: 10_000 }).toHaveLength(1);
    expect(await summariesOf('scope=user', { 'x-user-id': 'discord:ana' })).toEqual([]);
  });
});
