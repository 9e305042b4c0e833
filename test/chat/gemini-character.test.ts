import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGeminiFake, type GeminiFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/** A character whose model settings name Gemini chats through Gemini's own API, streamed or not. */
describe.each(backends())('a Gemini character (%s)', (backend) => {
  let server: TestServer;
  let gemini: GeminiFake;

  beforeAll(async () => {
    gemini = await startGeminiFake({ validKeys: ['gemini-platform-key'] });
    server = await startTestServer(backend, { GEMINI_BASE_URL: gemini.url, GEMINI_API_KEY: 'gemini-platform-key', MEMORY_FORMATION_DELAY_MS: '600000' });
    const created = await server.request('POST', '/v1/characters', {
      body: { name: 'Stella', slug: 'stella', model_settings: { provider: 'gemini', model: 'gemini-2.5-flash' } },
    });
    expect(created.status).toBe(201);
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await gemini?.close();
  });

  const turn = (stream: boolean) =>
    fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.internalKey}`, 'x-user-id': 'discord:gem', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'character/stella', stream, messages: [{ role: 'user', content: 'Hello, star.' }] }),
    });

  it('answers through generateContent with the character as system instruction', async () => {
    const response = await turn(false);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { choices: Array<{ message: { content: string } }>; usage: { prompt_tokens: number } };
    expect(body.choices[0]!.message.content).toBe('Echo: Hello, star.');
    expect(body.usage.prompt_tokens).toBeGreaterThan(0);
    const request = gemini.lastRequest(':generateContent')!;
    expect(request.path).toBe('/v1beta/models/gemini-2.5-flash:generateContent');
    expect(request.headers['x-goog-api-key']).toBe('gemini-platform-key');
    expect(JSON.stringify(request.body)).toContain('You are Stella');
  });

  it('streams through streamGenerateContent as OpenAI chunks', async () => {
    const response = await turn(true);
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const text = await response.text();
    const deltas = text
      .split('\n')
      .filter((line) => line.startsWith('data: {'))
      .map((line) => JSON.parse(line.slice(6)) as { choices: Array<{ delta?: { content?: string } }> })
      .map((chunk) => chunk.choices[0]?.delta?.content ?? '')
      .join('');
    expect(deltas).toBe('Echo: Hello, star.');
    expect(text.trim().endsWith('data: [DONE]')).toBe(true);
    expect(gemini.lastRequest(':streamGenerateContent')?.query.alt).toBe('sse');
  });
});
