import net from 'node:net';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { messages as messagesTable } from '../../src/infra/db/schema.js';
import { lastUserText, startOpenRouterFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/** A TCP relay in front of the fake that records when the product closes each upstream connection. */
async function startRelay(targetPort: number) {
  const closedAt: number[] = [];
  const server = net.createServer((inbound) => {
    const outbound = net.connect(targetPort, '127.0.0.1');
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    inbound.on('close', () => {
      closedAt.push(Date.now());
      outbound.destroy();
    });
    outbound.on('close', () => inbound.destroy());
    inbound.on('error', () => outbound.destroy());
    outbound.on('error', () => inbound.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    closedAt,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const LONG_REPLY = Array.from({ length: 60 }, (_, index) => `word${index}`).join(' ');

describe.each(backends())('chat upstream faults on %s storage', (backend) => {
  let server: TestServer;
  let openrouter: OpenAiCompatibleFake;
  let relay: Awaited<ReturnType<typeof startRelay>>;
  let client: OpenAI;

  const storedMessages = async (conversationId?: string) => {
    const rows = await server.container.db.select().from(messagesTable);
    return conversationId ? rows.filter((row) => row.conversationId === conversationId) : rows;
  };

  beforeAll(async () => {
    openrouter = await startOpenRouterFake({ validKeys: ['test-key', 'sk-or-v1-user-key-0123456789'] });
    relay = await startRelay(openrouter.port);
    server = await startTestServer(backend, {
      OPENROUTER_BASE_URL: relay.url,
      OPENROUTER_API_KEY: 'test-key',
      // Background memory formation also calls the chat fake; keep it out of these assertions.
      MEMORY_FORMATION_DELAY_MS: '600000',
      UPSTREAM_TIMEOUT_MS: '1000',
      UPSTREAM_MAX_RETRIES: '1',
      STREAM_KEEP_ALIVE_MS: '200',
      ALLOW_PRIVATE_FETCH: 'false',
    });
    const created = await server.request('POST', '/v1/characters', {
      body: { name: 'Fallo', slug: 'fallo', model_settings: { model: 'openai/gpt-4o-mini', fallback_models: ['anthropic/claude-3.5-sonnet'] } },
    });
    expect(created.status).toBe(201);
    client = new OpenAI({ apiKey: server.internalKey, baseURL: `${server.url}/v1`, maxRetries: 0, defaultHeaders: { 'X-User-Id': 'discord-faults' } });
  });
  afterAll(async () => {
    await server?.stop();
    await relay?.close();
    await openrouter?.close();
  });
  beforeEach(() => {
    openrouter.faults.clear();
    openrouter.settings.chunkDelayMs = 0;
    openrouter.settings.reply = (body) => `Echo: ${lastUserText(body)}`;
  });

  it('retries a 429 and succeeds; a persistent 429 reaches the client as 429 rate_limited with Retry-After', async () => {
    const before = openrouter.requestsTo('/chat/completions').length;
    openrouter.faults.failNext(1, 429, { route: '/chat/completions' });
    const answer = await client.chat.completions.create({ model: 'character/fallo', messages: [{ role: 'user', content: 'retry me' }] });
    expect(answer.choices[0]?.message.content).toContain('retry me');
    expect(openrouter.requestsTo('/chat/completions').length - before).toBe(2);

    openrouter.faults.failNext(10, 429, { route: '/chat/completions', headers: { 'retry-after': '1' } });
    const limited = await server.request('POST', '/v1/chat/completions', {
      key: server.internalKey,
      headers: { 'x-user-id': 'discord-faults' },
      body: { model: 'character/fallo', messages: [{ role: 'user', content: 'still limited' }] },
    });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(limited.body.error).toMatchObject({ code: 'rate_limited', type: 'rate_limit_error' });
  });

  it('retries a streamed request that failed before its first byte, invisibly to the client', async () => {
    openrouter.faults.failNext(1, 502, { route: '/chat/completions' });
    const stream = await client.chat.completions.create({ model: 'character/fallo', messages: [{ role: 'user', content: 'stream after a retry' }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('Echo: stream after a retry');
  });

  it('falls back to the next model when the primary keeps failing with 500', async () => {
    const remove = openrouter.faults.add({ route: (request) => (request.body as { model?: string } | undefined)?.model === 'openai/gpt-4o-mini', status: 500 });
    const before = openrouter.requestsTo('/chat/completions').length;
    try {
      const answer = await client.chat.completions.create({ model: 'character/fallo', messages: [{ role: 'user', content: 'fall back' }] });
      expect(answer.choices[0]?.message.content).toContain('fall back');
    } finally {
      remove();
    }
    const models = openrouter.requestsTo('/chat/completions').slice(before).map((request) => (request.body as { model: string }).model);
    expect(models).toEqual(['openai/gpt-4o-mini', 'openai/gpt-4o-mini', 'anthropic/claude-3.5-sonnet']);
  });

  it('answers 504 upstream_timeout when the upstream hangs', async () => {
    // Every chat call hangs (background memory formation may make some too), until removed.
    const remove = openrouter.faults.hang({ route: '/chat/completions' });
    const started = Date.now();
    const response = await server
      .request('POST', '/v1/characters/fallo/chat', { key: server.internalKey, body: { content: 'are you there', user_id: 'discord-timeout' } })
      .finally(remove);
    expect(response.status).toBe(504);
    expect(response.body).toMatchObject({ code: 'upstream_timeout', provider: 'openrouter' });
    // Two attempts on each of two models, 1 s each, plus backoff.
    expect(Date.now() - started).toBeLessThan(8000);
  });

  it('stores a partial answer when the upstream stream is cut mid-way, and the openai client sees an error', async () => {
    openrouter.settings.reply = LONG_REPLY;
    openrouter.faults.cutStream(6, { route: '/chat/completions', times: 1 });
    const stream = await client.chat.completions.create(
      { model: 'character/fallo', messages: [{ role: 'user', content: 'cut me off' }], stream: true },
      { headers: { 'X-User-Id': 'discord-cut' } },
    );
    let received = '';
    await expect(
      (async () => {
        for await (const chunk of stream) received += chunk.choices[0]?.delta.content ?? '';
      })(),
    ).rejects.toThrow();
    expect(received.length).toBeGreaterThan(0);
    expect(LONG_REPLY.startsWith(received)).toBe(true);
    const partial = (await storedMessages()).find((row) => row.role === 'assistant' && row.status === 'partial' && LONG_REPLY.startsWith(row.content));
    expect(partial?.content).toBe(received);
  });

  it('tells the user their rejected key is invalid (402, masked and named) and marks it invalid', async () => {
    const headers = { 'x-user-id': 'discord-byok' };
    const added = await server.request('POST', '/v1/me/provider-keys', {
      key: server.internalKey,
      headers,
      body: { provider: 'openrouter', key: 'sk-or-v1-user-key-0123456789', name: 'personal' },
    });
    expect(added.status).toBe(201);
    openrouter.settings.validKeys = ['test-key'];
    try {
      const response = await server.request('POST', '/v1/characters/fallo/chat', { key: server.internalKey, headers, body: { content: 'use my key' } });
      expect(response.status).toBe(402);
      expect(response.body.code).toBe('provider_key_required');
      expect(response.body.detail).toMatch(/your openrouter key "personal" \(.*\) was rejected/);
      expect(response.text).not.toContain('sk-or-v1-user-key-0123456789');
      const keys = await server.request('GET', '/v1/me/provider-keys', { key: server.internalKey, headers });
      const stored = (keys.body.data ?? keys.body) as Array<{ status: string }>;
      expect(stored[0]?.status).toBe('invalid');
      expect(server.logs.join('\n')).not.toContain('sk-or-v1-user-key-0123456789');
    } finally {
      openrouter.settings.validKeys = ['test-key', 'sk-or-v1-user-key-0123456789'];
    }
  });

  it('sends keep-alive comments while the upstream is slow to start, then the answer', async () => {
    openrouter.faults.delay(900, { route: '/chat/completions', times: 1 });
    const response = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.internalKey}`, 'content-type': 'application/json', 'x-user-id': 'discord-slow' },
      body: JSON.stringify({ model: 'character/fallo', messages: [{ role: 'user', content: 'slow start' }], stream: true }),
    });
    const text = await response.text();
    const firstData = text.indexOf('data: ');
    expect(text.slice(0, firstData).match(/^: keep-alive$/gm)?.length).toBeGreaterThanOrEqual(2);
    const content = [...text.matchAll(/^data: (\{.*\})$/gm)].map((match) => (JSON.parse(match[1]!) as { choices: Array<{ delta?: { content?: string } }> }).choices[0]?.delta?.content ?? '').join('');
    expect(content).toBe('Echo: slow start');
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
  });

  it('refuses attachments on loopback, private and metadata addresses (ALLOW_PRIVATE_FETCH=false)', async () => {
    for (const url of [`${openrouter.url}/files/x.png`, 'http://169.254.169.254/latest/meta-data/', 'http://[::1]:80/a.png', 'http://10.1.2.3/a.png']) {
      const response = await server.request('POST', '/v1/characters/fallo/chat', { key: server.internalKey, body: { content: 'look', user_id: 'discord-ssrf', attachment_url: url } });
      expect(response.status).toBe(422);
      expect(response.body).toMatchObject({ code: 'validation_failed', field: 'attachment_url' });
      expect(response.body.detail).toMatch(/private or reserved address/);
    }
    const viaOpenAi = await server.request('POST', '/v1/chat/completions', {
      key: server.internalKey,
      headers: { 'x-user-id': 'discord-ssrf' },
      body: { model: 'character/fallo', messages: [{ role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: 'http://127.0.0.1:9/a.png' } }] }] },
    });
    expect(viaOpenAi.status).toBe(422);
    expect(viaOpenAi.body.error).toMatchObject({ code: 'validation_failed', param: 'messages' });
  });

  it('cancels the upstream call when the client disconnects mid-stream, and stores the partial answer', async () => {
    openrouter.settings.reply = LONG_REPLY;
    openrouter.settings.chunkDelayMs = 100;
    const controller = new AbortController();
    const response = await fetch(`${server.url}/v1/characters/fallo/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.internalKey}`, 'content-type': 'application/json', 'x-user-id': 'discord-leaver' },
      body: JSON.stringify({ content: 'talk a lot', stream: true }),
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    let seen = '';
    while (!seen.includes('"delta"')) seen += new TextDecoder().decode((await reader.read()).value);
    const closesBefore = relay.closedAt.length;
    const abortedAt = Date.now();
    controller.abort();
    // The full answer would take ~6 s (60 deltas x 100 ms); the upstream connection must close long before.
    await expect.poll(() => relay.closedAt.length, { timeout: 3000 }).toBeGreaterThan(closesBefore);
    expect(relay.closedAt.at(-1)! - abortedAt).toBeLessThan(2000);
    await expect
      .poll(async () => (await storedMessages()).find((row) => row.role === 'assistant' && row.status === 'partial' && row.content.startsWith('word0'))?.content.length ?? 0, { timeout: 3000 })
      .toBeGreaterThan(0);
    const partial = (await storedMessages()).find((row) => row.role === 'assistant' && row.status === 'partial' && row.content.startsWith('word0'))!;
    expect(partial.content.length).toBeLessThan(LONG_REPLY.length);
  });
});
