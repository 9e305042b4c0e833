import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messages as messagesTable } from '../../src/infra/db/schema.js';
import { lastUserText, startOpenRouterFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

describe.each(backends())('chat during graceful shutdown on %s storage', (backend) => {
  let server: TestServer;
  let openrouter: OpenAiCompatibleFake;

  beforeAll(async () => {
    openrouter = await startOpenRouterFake({ reply: (body) => `Slowly: ${lastUserText(body)} and then some more words to stream`, chunkDelayMs: 60 });
    server = await startTestServer(backend, {
      OPENROUTER_BASE_URL: openrouter.url,
      OPENROUTER_API_KEY: 'test-key',
      MEMORY_FORMATION_DELAY_MS: '600000',
      SHUTDOWN_GRACE_MS: '5000',
    });
    expect((await server.request('POST', '/v1/characters', { body: { name: 'Sloth', slug: 'sloth' } })).status).toBe(201);
  });
  afterAll(async () => {
    await server?.stop();
    await openrouter?.close();
  });

  it('lets a running stream finish, stores its answer, and refuses new turns while stopping', async () => {
    const response = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.internalKey}`, 'content-type': 'application/json', 'x-user-id': 'discord-shutdown' },
      body: JSON.stringify({ model: 'character/sloth', messages: [{ role: 'user', content: 'take your time' }], stream: true }),
    });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value);
    // Capture what the database holds before it closes: the stop below closes it after the stream.
    let storedAnswer: string | undefined;
    const originalClose = server.container.chat.service.close.bind(server.container.chat.service);
    server.container.chat.service.close = async () => {
      await originalClose();
      const rows = await server.container.db.select().from(messagesTable);
      storedAnswer = rows.find((row) => row.role === 'assistant' && row.status === 'complete')?.content;
    };
    const stopping = server.stop();
    const refused = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.internalKey}`, 'content-type': 'application/json', 'x-user-id': 'discord-late' },
      body: JSON.stringify({ model: 'character/sloth', messages: [{ role: 'user', content: 'too late' }] }),
    }).then(
      (late) => late.status,
      () => 'connection refused',
    );
    expect([503, 'connection refused']).toContain(refused);
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      text += decoder.decode(chunk.value);
    }
    await stopping;
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(storedAnswer).toBe('Slowly: take your time and then some more words to stream');
  });
});
