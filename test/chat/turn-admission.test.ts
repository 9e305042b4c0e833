import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOpenRouterFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * MAX_TURNS_IN_FLIGHT: past the turns a process may run at once, a chat request is refused at once
 * with 503 and Retry-After (OpenAI's envelope on /v1/chat/completions) instead of joining a queue
 * that grows for as long as the overload lasts; a finished turn frees its place.
 */
describe('turns in flight are bounded', () => {
  let server: TestServer;
  let openrouter: OpenAiCompatibleFake;

  beforeAll(async () => {
    openrouter = await startOpenRouterFake({ reply: 'one two three four five six', chunkDelayMs: 150 });
    server = await startTestServer('embedded', { OPENROUTER_BASE_URL: openrouter.url, OPENROUTER_API_KEY: 'test-key', MEMORY_FORMATION_DELAY_MS: '600000', MAX_TURNS_IN_FLIGHT: '1' });
    expect((await server.request('POST', '/v1/characters', { body: { name: 'Busy', slug: 'busy' } })).status).toBe(201);
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await openrouter?.close();
  });

  const streamed = () =>
    fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.internalKey}`, 'x-user-id': 'busy-a', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'character/busy', stream: true, messages: [{ role: 'user', content: 'Count slowly.' }] }),
    });

  it('refuses the turn beyond the limit with 503 and Retry-After on both chat routes, and admits again once a turn ends', async () => {
    const first = await streamed();
    expect(first.status).toBe(200);
    const reader = first.body!.getReader();
    await reader.read(); // the stream is open: its turn holds the one place

    const openai = await server.request('POST', '/v1/chat/completions', {
      key: server.internalKey,
      headers: { 'x-user-id': 'busy-b' },
      body: { model: 'character/busy', messages: [{ role: 'user', content: 'Me too?' }] },
    });
    expect(openai.status).toBe(503);
    expect(openai.headers.get('retry-after')).toBe('1');
    expect(openai.body.error).toMatchObject({ code: 'service_unavailable' });

    const rest = await server.request('POST', '/v1/characters/busy/chat', { key: server.internalKey, body: { user_id: 'busy-c', content: 'And me?' } });
    expect(rest.status).toBe(503);
    expect(rest.headers.get('retry-after')).toBe('1');

    while (!(await reader.read()).done);
    const after = await server.request('POST', '/v1/chat/completions', {
      key: server.internalKey,
      headers: { 'x-user-id': 'busy-b' },
      body: { model: 'character/busy', messages: [{ role: 'user', content: 'Now?' }] },
    });
    expect(after.status, after.text).toBe(200);
    // A refused request never reached the model: only the two turns that were admitted did.
    expect(openrouter.requests.filter((entry) => entry.path.endsWith('/chat/completions'))).toHaveLength(2);
  });
});
