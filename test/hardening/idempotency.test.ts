import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { creditLedger, idempotencyKeys } from '../../src/infra/db/schema.js';
import { purgeExpiredIdempotencyKeys } from '../../src/modules/idempotency/index.js';
import { startElevenLabsFake, startOpenAiFake, startOpenRouterFake, type ElevenLabsFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

const PLATFORM_KEY = 'sk-or-v1-idempotency-platform-0123456789';

/**
 * Issue 8, item 10: a turn that got no answer marks its user message failed (kept, listed, not in
 * later prompts), and Idempotency-Key replays chat, image and speech answers without a second
 * provider call or charge.
 */
describe.each(backends())('idempotency and failed turns on %s', (backend) => {
  let server: TestServer;
  let openrouter: OpenAiCompatibleFake;
  let openai: OpenAiCompatibleFake;
  let elevenlabs: ElevenLabsFake;
  let slug = '';
  let characterId = '';

  const as = (user: string, headers: Record<string, string> = {}) => ({ key: server.internalKey, headers: { 'x-user-id': user, ...headers } });
  const userId = async (user: string): Promise<string> => (await server.request('GET', '/v1/me', as(user))).body.id;
  const settlements = async (user: string) => {
    const id = await userId(user);
    return (await server.container.db.select().from(creditLedger).where(and(eq(creditLedger.userId, id), eq(creditLedger.kind, 'settle'))));
  };
  const userTexts = (body: unknown): string[] =>
    ((body as { messages?: Array<{ role: string; content: unknown }> }).messages ?? []).filter((message) => message.role === 'user').map((message) => String(message.content));
  const chatCalls = () => openrouter.requestsTo('/chat/completions').length;

  beforeAll(async () => {
    [openrouter, openai, elevenlabs] = await Promise.all([
      startOpenRouterFake({ validKeys: [PLATFORM_KEY] }),
      startOpenAiFake({ validKeys: ['openai-platform'] }),
      startElevenLabsFake({ validKeys: ['eleven-platform'] }),
    ]);
    server = await startTestServer(backend, {
      OPENROUTER_BASE_URL: openrouter.url,
      OPENROUTER_API_KEY: PLATFORM_KEY,
      OPENAI_BASE_URL: openai.url,
      OPENAI_API_KEY: 'openai-platform',
      ELEVENLABS_BASE_URL: elevenlabs.url,
      ELEVENLABS_API_KEY: 'eleven-platform',
      // One retry: a pooled keep-alive socket the fake closed can fail a call on a loaded machine; failures below fail both attempts.
      UPSTREAM_MAX_RETRIES: '1',
      MEMORY_FORMATION_DELAY_MS: '600000',
      IDEMPOTENCY_TTL_SECONDS: '7200',
      RUN_WORKERS_IN_PROCESS: 'true',
      IMAGE_POLL_INTERVAL_MS: '20',
    });
    const character = await server.request('POST', '/v1/characters', { body: { name: 'Idem Potent', visibility: 'public' } });
    expect(character.status).toBe(201);
    slug = character.body.slug;
    characterId = character.body.id;
  }, 240_000);

  afterAll(async () => {
    await server?.stop();
    await Promise.all([openrouter?.close(), openai?.close(), elevenlabs?.close()]);
  }, 120_000);

  it('a retry after a 502 does not put the same message in the prompt twice; the failed message stays listed as failed (both chat routes)', async () => {
    const first = await server.request('POST', `/v1/characters/${characterId}/chat`, { ...as('idem-retry'), body: { content: 'good morning' } });
    expect(first.status).toBe(200);

    openrouter.faults.failNext(2, 502, { route: '/chat/completions' });
    const failed = await server.request('POST', `/v1/characters/${characterId}/chat`, { ...as('idem-retry'), body: { content: 'what is the tide today?' } });
    expect(failed.status).toBe(502);
    const retried = await server.request('POST', `/v1/characters/${characterId}/chat`, { ...as('idem-retry'), body: { content: 'what is the tide today?' } });
    expect(retried.status).toBe(200);
    const sent = userTexts(openrouter.lastRequest('/chat/completions')!.body);
    expect(sent.filter((text) => text.includes('what is the tide today?'))).toHaveLength(1);
    expect(sent.some((text) => text.includes('good morning'))).toBe(true);

    const listed = await server.request('GET', `/v1/conversations/${first.body.conversation_id}/messages`, as('idem-retry'));
    expect(listed.status).toBe(200);
    const tide = listed.body.data.filter((message: { content: string }) => message.content === 'what is the tide today?');
    expect(tide.map((message: { status: string }) => message.status).sort()).toEqual(['complete', 'failed']);

    // The OpenAI-compatible route: a 504-like failure (here a 502) then the client's retry.
    openrouter.faults.failNext(2, 502, { route: '/chat/completions' });
    const body = { model: `character/${slug}`, messages: [{ role: 'user', content: 'and the wind?' }] };
    expect((await server.request('POST', '/v1/chat/completions', { ...as('idem-retry'), body })).status).toBe(502);
    const again = await server.request('POST', '/v1/chat/completions', { ...as('idem-retry'), body });
    expect(again.status).toBe(200);
    expect(userTexts(openrouter.lastRequest('/chat/completions')!.body).filter((text) => text.includes('and the wind?'))).toHaveLength(1);
  }, 120_000);

  it('a stream the client left before any text marks its message failed', async () => {
    const release = openrouter.faults.hang({ route: '/chat/completions' });
    const controller = new AbortController();
    const pending = fetch(`${server.url}/v1/characters/${characterId}/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.internalKey}`, 'x-user-id': 'idem-gone', 'content-type': 'application/json' },
      body: JSON.stringify({ content: 'are you there?', stream: true }),
      signal: controller.signal,
    }).catch(() => undefined);
    const started = Date.now();
    while (openrouter.requestsTo('/chat/completions').filter((request) => userTexts(request.body).some((text) => text.includes('are you there?'))).length === 0) {
      if (Date.now() - started > 20_000) throw new Error('the upstream call never started');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    controller.abort();
    await pending;
    release();
    const conversations = await server.request('GET', '/v1/conversations', as('idem-gone'));
    const conversationId = conversations.body.data[0].id;
    let status = '';
    for (let attempt = 0; attempt < 100 && status !== 'failed'; attempt += 1) {
      const listed = await server.request('GET', `/v1/conversations/${conversationId}/messages`, as('idem-gone'));
      status = listed.body.data.find((message: { content: string }) => message.content === 'are you there?')?.status ?? '';
      if (status !== 'failed') await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(status).toBe('failed');
  }, 120_000);

  it('replays a chat answer for the same Idempotency-Key: one upstream call, one charge, on both chat routes', async () => {
    const key = randomUUID();
    const body = { model: `character/${slug}`, messages: [{ role: 'user', content: 'tell me about lighthouses' }] };
    const before = chatCalls();
    const first = await server.request('POST', '/v1/chat/completions', { ...as('idem-replay', { 'idempotency-key': key }), body });
    expect(first.status).toBe(200);
    const second = await server.request('POST', '/v1/chat/completions', { ...as('idem-replay', { 'idempotency-key': key }), body });
    expect(second.status).toBe(200);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(second.body).toEqual(first.body);
    expect(chatCalls() - before).toBe(1);
    expect(await settlements('idem-replay')).toHaveLength(1);

    const botKey = randomUUID();
    const botFirst = await server.request('POST', `/v1/characters/${characterId}/chat`, { ...as('idem-replay', { 'idempotency-key': botKey }), body: { content: 'and about ships?' } });
    expect(botFirst.status).toBe(200);
    const botSecond = await server.request('POST', `/v1/characters/${characterId}/chat`, { ...as('idem-replay', { 'idempotency-key': botKey }), body: { content: 'and about ships?' } });
    expect(botSecond.body).toEqual(botFirst.body);
    expect(chatCalls() - before).toBe(2);
    expect(await settlements('idem-replay')).toHaveLength(2);
    // The same key from another user is that user's own key.
    const other = await server.request('POST', `/v1/characters/${characterId}/chat`, { ...as('idem-other', { 'idempotency-key': botKey }), body: { content: 'and about ships?' } });
    expect(other.status).toBe(200);
    expect(other.headers.get('idempotent-replayed')).toBeNull();
    expect(chatCalls() - before).toBe(3);

    // Same key, another request: 422 in the route's envelope.
    const reusedOpenAi = await server.request('POST', '/v1/chat/completions', { ...as('idem-replay', { 'idempotency-key': key }), body: { ...body, messages: [{ role: 'user', content: 'something else' }] } });
    expect(reusedOpenAi.status).toBe(422);
    expect(reusedOpenAi.body.error).toMatchObject({ code: 'idempotency_key_reused', param: 'Idempotency-Key' });
    const reusedBot = await server.request('POST', `/v1/characters/${characterId}/chat`, { ...as('idem-replay', { 'idempotency-key': botKey }), body: { content: 'something else' } });
    expect(reusedBot.status).toBe(422);
    expect(reusedBot.headers.get('content-type')).toContain('application/problem+json');
    expect(reusedBot.body).toMatchObject({ code: 'idempotency_key_reused', field: 'Idempotency-Key' });
    const malformed = await server.request('POST', '/v1/chat/completions', { ...as('idem-replay', { 'idempotency-key': 'é'.repeat(3) }), body });
    expect(malformed.status).toBe(422);
    expect(chatCalls() - before).toBe(3);
  }, 120_000);

  it('answers 409 to a duplicate while the first is in flight, and releases a key whose request failed', async () => {
    const key = randomUUID();
    const body = { content: 'slow question' };
    const release = openrouter.faults.delay(1500, { route: '/chat/completions' });
    const before = chatCalls();
    const first = server.request('POST', `/v1/characters/${characterId}/chat`, { ...as('idem-flight', { 'idempotency-key': key }), body });
    await new Promise((resolve) => setTimeout(resolve, 400));
    const duplicate = await server.request('POST', `/v1/characters/${characterId}/chat`, { ...as('idem-flight', { 'idempotency-key': key }), body });
    expect(duplicate.status).toBe(409);
    expect(duplicate.body.code).toBe('idempotency_key_in_flight');
    expect(duplicate.headers.get('retry-after')).toBe('1');
    expect((await first).status).toBe(200);
    release();
    expect(chatCalls() - before).toBe(1);

    // A 502 is not stored: the retry with the same key runs (and is then replayed).
    const failedKey = randomUUID();
    openrouter.faults.failNext(2, 502, { route: '/chat/completions' });
    expect((await server.request('POST', `/v1/characters/${characterId}/chat`, { ...as('idem-flight', { 'idempotency-key': failedKey }), body: { content: 'try me' } })).status).toBe(502);
    const retried = await server.request('POST', `/v1/characters/${characterId}/chat`, { ...as('idem-flight', { 'idempotency-key': failedKey }), body: { content: 'try me' } });
    expect(retried.status).toBe(200);
    expect(retried.headers.get('idempotent-replayed')).toBeNull();
  }, 120_000);

  it('streams: a completed stream\'s key answers 409 idempotency_key_used; a stream that failed before any text releases its key', async () => {
    const key = randomUUID();
    const body = { model: `character/${slug}`, messages: [{ role: 'user', content: 'stream it' }], stream: true };
    const first = await server.request('POST', '/v1/chat/completions', { ...as('idem-stream', { 'idempotency-key': key }), body });
    expect(first.status).toBe(200);
    expect(first.text).toContain('[DONE]');
    const before = chatCalls();
    let replay = await server.request('POST', '/v1/chat/completions', { ...as('idem-stream', { 'idempotency-key': key }), body });
    // The first stream's key is settled when its connection closes: give it a moment under load.
    for (let attempt = 0; attempt < 20 && replay.status === 409 && replay.body?.error?.code === 'idempotency_key_in_flight'; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      replay = await server.request('POST', '/v1/chat/completions', { ...as('idem-stream', { 'idempotency-key': key }), body });
    }
    expect(replay.status).toBe(409);
    expect(replay.body.error.code).toBe('idempotency_key_used');
    expect(chatCalls()).toBe(before);

    const failedKey = randomUUID();
    openrouter.faults.failNext(2, 502, { route: '/chat/completions' });
    const broken = await server.request('POST', '/v1/chat/completions', { ...as('idem-stream', { 'idempotency-key': failedKey }), body: { ...body, messages: [{ role: 'user', content: 'stream again' }] } });
    expect(broken.status).toBe(502);
    let retried = await server.request('POST', '/v1/chat/completions', { ...as('idem-stream', { 'idempotency-key': failedKey }), body: { ...body, messages: [{ role: 'user', content: 'stream again' }] } });
    for (let attempt = 0; attempt < 20 && retried.status === 409; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      retried = await server.request('POST', '/v1/chat/completions', { ...as('idem-stream', { 'idempotency-key': failedKey }), body: { ...body, messages: [{ role: 'user', content: 'stream again' }] } });
    }
    expect(retried.status).toBe(200);
    expect(retried.text).toContain('[DONE]');
  }, 120_000);

  it('replays image generations and speech without calling the vendor or charging again', async () => {
    for (const user of ['idem-media']) {
      const promoted = await server.request('PATCH', `/v1/admin/users/${await userId(user)}`, { body: { plan: 'enterprise' } });
      expect(promoted.status).toBe(200);
    }
    const imageKey = randomUUID();
    const imageBody = { prompt: 'a lighthouse at dusk', provider: 'openai', model: 'dall-e-3' };
    const imagesBefore = openai.requestsTo('/images/generations').length;
    const image = await server.request('POST', '/v1/images/generations', { ...as('idem-media', { 'idempotency-key': imageKey }), body: imageBody });
    expect(image.status).toBe(200);
    const imageAgain = await server.request('POST', '/v1/images/generations', { ...as('idem-media', { 'idempotency-key': imageKey }), body: imageBody });
    expect(imageAgain.status).toBe(200);
    expect(imageAgain.headers.get('idempotent-replayed')).toBe('true');
    expect(imageAgain.body.id).toBe(image.body.id);
    expect(openai.requestsTo('/images/generations').length - imagesBefore).toBe(1);
    const reused = await server.request('POST', '/v1/images/generations', { ...as('idem-media', { 'idempotency-key': imageKey }), body: { ...imageBody, prompt: 'a ship' } });
    expect(reused.status).toBe(422);
    expect(reused.body.code).toBe('idempotency_key_reused');

    const speechKey = randomUUID();
    const speechesBefore = elevenlabs.requestsTo('/text-to-speech').length;
    const chargesBefore = (await settlements('idem-media')).length;
    const speech = await fetch(`${server.url}/v1/tts`, { method: 'POST', headers: { authorization: `Bearer ${server.internalKey}`, 'x-user-id': 'idem-media', 'idempotency-key': speechKey, 'content-type': 'application/json' }, body: JSON.stringify({ text: 'Hello there, keeper.', voice: 'rachel' }) });
    expect(speech.status).toBe(200);
    const audio = Buffer.from(await speech.arrayBuffer());
    const speechAgain = await fetch(`${server.url}/v1/tts`, { method: 'POST', headers: { authorization: `Bearer ${server.internalKey}`, 'x-user-id': 'idem-media', 'idempotency-key': speechKey, 'content-type': 'application/json' }, body: JSON.stringify({ text: 'Hello there, keeper.', voice: 'rachel' }) });
    expect(speechAgain.status).toBe(200);
    expect(speechAgain.headers.get('idempotent-replayed')).toBe('true');
    expect(speechAgain.headers.get('content-type')).toBe(speech.headers.get('content-type'));
    expect(Buffer.from(await speechAgain.arrayBuffer()).equals(audio)).toBe(true);
    expect(elevenlabs.requestsTo('/text-to-speech').length - speechesBefore).toBe(1);
    expect((await settlements('idem-media')).length - chargesBefore).toBe(1);
  }, 120_000);

  it('keeps keys for IDEMPOTENCY_TTL_SECONDS; the purge job deletes expired ones and the key then runs afresh', async () => {
    const key = randomUUID();
    const body = { content: 'remember this key' };
    const first = await server.request('POST', `/v1/characters/${characterId}/chat`, { ...as('idem-ttl', { 'idempotency-key': key }), body });
    expect(first.status, first.text).toBe(200);
    const id = await userId('idem-ttl');
    const [row] = await server.container.db.select().from(idempotencyKeys).where(and(eq(idempotencyKeys.userId, id), eq(idempotencyKeys.key, key)));
    expect(row!.state).toBe('done');
    const lifetime = (row!.expiresAt.getTime() - Date.now()) / 1000;
    expect(lifetime).toBeGreaterThan(7000);
    expect(lifetime).toBeLessThanOrEqual(7200);

    expect(await purgeExpiredIdempotencyKeys(server.container.db, new Date(Date.now() + 3_600_000))).toBe(0);
    expect(await purgeExpiredIdempotencyKeys(server.container.db, new Date(Date.now() + 7_300_000))).toBeGreaterThan(0);
    expect(await server.container.db.select().from(idempotencyKeys).where(eq(idempotencyKeys.userId, id))).toHaveLength(0);
    const before = chatCalls();
    const fresh = await server.request('POST', `/v1/characters/${characterId}/chat`, { ...as('idem-ttl', { 'idempotency-key': key }), body });
    expect(fresh.status).toBe(200);
    expect(fresh.headers.get('idempotent-replayed')).toBeNull();
    expect(chatCalls() - before).toBe(1);
    expect(server.container.jobHandlers['idempotency.purge']).toBeTypeOf('function');
  }, 120_000);
});
