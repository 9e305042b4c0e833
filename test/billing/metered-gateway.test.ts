import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { creditLedger, creditReservations } from '../../src/infra/db/schema.js';
import type { UserRow } from '../../src/modules/identity/store.js';
import type { GatewayCall } from '../../src/modules/gateway/index.js';
import { startOpenRouterFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * The billing port behind the real gateway, with the real chat adapter against the OpenRouter fake:
 * reservations priced with the plan, settled to what was used, released on failure; limits held
 * by streams; quotas; idempotency; the stale-reservation job.
 */
describe.each(backends())('metered gateway on %s storage', (backend) => {
  let server: TestServer;
  let openrouter: OpenAiCompatibleFake;

  const user = async (externalId: string, plan?: string): Promise<UserRow> => {
    const { user: created } = await server.container.identity.service.registerUser(externalId, undefined);
    if (plan) await server.container.identity.service.updateUser(created.id, { plan });
    return (await server.container.identity.service.findUser(created.id))!;
  };
  const wallet = async (row: UserRow) => (await server.container.billing.service.wallet(row)).wallet;
  const ledger = async (row: UserRow) => server.container.db.select().from(creditLedger).where(eq(creditLedger.userId, row.id)).orderBy(creditLedger.id);
  const chatCall = (row: UserRow, extra: Partial<GatewayCall<'chat'>> = {}): GatewayCall<'chat'> => ({
    modality: 'chat',
    provider: 'openrouter',
    service: 'chat',
    user: row,
    model: 'openai/gpt-4o-mini',
    estimate: { promptTokens: 1000, maxCompletionTokens: 1000 },
    ...extra,
  });
  const messages = [{ role: 'user' as const, content: 'Tell me a story about a lighthouse keeper.' }];

  beforeAll(async () => {
    openrouter = await startOpenRouterFake({ validKeys: ['platform-key'], reply: 'Once upon a time there was a keeper of a lighthouse who counted ships every night.' });
    server = await startTestServer(backend, { OPENROUTER_BASE_URL: openrouter.url, OPENROUTER_API_KEY: 'platform-key', RATE_LIMITS_ENABLED: 'true', UPSTREAM_MAX_RETRIES: '0' });
  }, 240_000);

  afterAll(async () => {
    await server?.stop();
    await openrouter?.close();
  });

  it('reserves the estimate at the plan price, settles the real cost and gives the rest back', async () => {
    const ann = await user('gw-ann');
    const result = await server.container.gateway.call(chatCall(ann), async (adapter, key) => {
      const answer = await adapter.complete({ model: 'openai/gpt-4o-mini', messages, maxTokens: 1000 }, key);
      return { result: answer, usage: { model: answer.model, promptTokens: answer.usage.promptTokens, completionTokens: answer.usage.completionTokens, providerCostUsd: answer.usage.costUsd } };
    });
    const tokens = result.usage.promptTokens + result.usage.completionTokens;
    const charged = Math.ceil((tokens * 100_000) / 1000); // free: 0.1 credits per 1,000 tokens
    expect((await wallet(ann)).balanceMicro).toBe(10_000_000 - charged);
    expect((await ledger(ann)).map((entry) => [entry.kind, entry.amountMicro])).toEqual([
      ['daily_refresh', 10_000_000],
      ['reserve', -200_000],
      ['settle', 200_000 - charged],
    ]);
    const usage = await server.request('GET', '/v1/me/usage?days=7', { key: server.internalKey, headers: { 'x-user-id': 'gw-ann' } });
    expect(usage.status).toBe(200);
    expect(usage.body.services.chat).toMatchObject({ requests: 1, tokens, credits_micro: charged, paid_by: { platform: 1, user: 0 } });
    expect(usage.body.services.chat.cost_usd).toBeGreaterThan(0);
    expect(usage.body.daily).toHaveLength(1);
    expect(usage.body.daily[0].services.chat.requests).toBe(1);
    const admin = await server.request('GET', `/v1/admin/users/${ann.id}/usage`);
    expect(admin.body.totals).toMatchObject({ requests: 1, credits_micro: charged });
    expect((await server.request('GET', '/v1/me/usage?days=0', { key: server.internalKey, headers: { 'x-user-id': 'gw-ann' } })).status).toBe(422);
    // !usage in chat answers from the same report.
    expect((await server.request('POST', '/v1/characters', { body: { name: 'Meter', slug: 'meter' } })).status).toBe(201);
    const command = await server.request('POST', '/v1/characters/meter/chat', { key: server.internalKey, headers: { 'x-user-id': 'gw-ann' }, body: { content: '!usage' } });
    expect(command.status).toBe(200);
    expect(command.body.response).toContain(`- chat: 1 requests, ${tokens} tokens, ${charged / 1_000_000} credits`);
  });

  it('a call that fails after the reservation releases it whole', async () => {
    const bo = await user('gw-bo');
    openrouter.faults.failNext(1, 500);
    await expect(
      server.container.gateway.call(chatCall(bo), async (adapter, key) => {
        const answer = await adapter.complete({ model: 'openai/gpt-4o-mini', messages }, key);
        return { result: answer, usage: answer.usage };
      }),
    ).rejects.toBeTruthy();
    expect(await wallet(bo)).toMatchObject({ balanceMicro: 10_000_000, reservedMicro: 0 });
    expect((await ledger(bo)).map((entry) => entry.kind)).toEqual(['daily_refresh', 'reserve', 'release']);
    const [reservation] = await server.container.db.select().from(creditReservations).where(eq(creditReservations.userId, bo.id));
    expect(reservation).toMatchObject({ status: 'released', chargedMicro: 0 });
  });

  it('a stream cut mid-way settles only what was delivered, and holds the plan\'s stream slot until then', async () => {
    const cy = await user('gw-cy');
    const lease = await server.container.gateway.begin(chatCall(cy, { concurrent: true }));
    // free allows one stream at a time
    await expect(server.container.gateway.begin(chatCall(cy, { concurrent: true }))).rejects.toMatchObject({ status: 429, code: 'rate_limited' });
    let delivered = '';
    for await (const event of lease.adapter.stream({ model: 'openai/gpt-4o-mini', messages, maxTokens: 1000 }, lease.key)) {
      if (event.type !== 'delta') break;
      delivered += event.text;
      if (delivered.split(' ').length >= 4) break; // the client went away
    }
    const completionTokens = delivered.split(' ').length;
    const { creditsMicro } = await lease.settle({ model: 'openai/gpt-4o-mini', promptTokens: 20, completionTokens });
    expect(creditsMicro).toBe(Math.ceil(((20 + completionTokens) * 100_000) / 1000));
    expect(await wallet(cy)).toMatchObject({ balanceMicro: 10_000_000 - creditsMicro, reservedMicro: 0 });
    // The slot is free again.
    const next = await server.container.gateway.begin(chatCall(cy, { concurrent: true }));
    await next.fail(new Error('not needed'));
  });

  it('402 insufficient_credits names the balance, the estimate and how to get more; nothing is held', async () => {
    const di = await user('gw-di');
    await server.container.billing.service.wallet(di);
    await server.container.billing.service.grant({ userId: di.id, amountMicro: 9_950_000, kind: 'refund', idempotencyKey: 'gw-di-drain' });
    const refused = await server.container.gateway.begin(chatCall(di)).catch((error: unknown) => error);
    expect(refused).toMatchObject({ status: 402, code: 'insufficient_credits', extra: { balance: 0.05, estimated_cost: 0.2, estimated_cost_micro: 200_000, plan: 'free' } });
    expect((refused as Error).message).toContain('/v1/market/buy_credits');
    expect(await wallet(di)).toMatchObject({ balanceMicro: 50_000, reservedMicro: 0 });
  });

  it('the same idempotency key is charged once: a retry after settle is free, one during the call is a conflict', async () => {
    const ed = await user('gw-ed');
    const lease = await server.container.gateway.begin(chatCall(ed, { idempotencyKey: 'req-1' }));
    await expect(server.container.gateway.begin(chatCall(ed, { idempotencyKey: 'req-1' }))).rejects.toMatchObject({ status: 409 });
    const first = await lease.settle({ promptTokens: 100, completionTokens: 100 });
    expect(first.creditsMicro).toBe(20_000);
    const retry = await server.container.gateway.begin(chatCall(ed, { idempotencyKey: 'req-1' }));
    expect((await retry.settle({ promptTokens: 100, completionTokens: 100 })).creditsMicro).toBe(0);
    // A failed attempt frees its key for the next try.
    const failing = await server.container.gateway.begin(chatCall(ed, { idempotencyKey: 'req-2' }));
    await failing.fail(new Error('upstream down'));
    const second = await server.container.gateway.begin(chatCall(ed, { idempotencyKey: 'req-2' }));
    expect((await second.settle({ promptTokens: 100, completionTokens: 100 })).creditsMicro).toBe(20_000);
    expect((await wallet(ed)).balanceMicro).toBe(10_000_000 - 40_000);
  });

  it('own keys cost no credits; plan features and daily / monthly quotas are enforced from the estimate', async () => {
    const port = server.container.billing.port;
    const fe = await user('gw-fe');
    const request = { user: fe, provider: 'openrouter' as const, model: undefined, feature: undefined, idempotencyKey: undefined, concurrent: false };
    const byok = await port.authorize({ ...request, service: 'chat', estimate: { promptTokens: 10_000_000 }, paidBy: 'user' });
    expect((await byok.settle({ promptTokens: 10_000_000, costUsd: 1 })).creditsMicro).toBe(0);

    // free: 5 images a day; 3 + 3 does not fit, a released hold gives its images back.
    const three = await port.authorize({ ...request, service: 'image', estimate: { images: 3 }, paidBy: 'user', feature: 'image_generation' });
    await expect(port.authorize({ ...request, service: 'image', estimate: { images: 3 }, paidBy: 'user' })).rejects.toMatchObject({ status: 429, extra: { limit_name: 'images_per_day' } });
    await three.release('failed');
    const again = await port.authorize({ ...request, service: 'image', estimate: { images: 3 }, paidBy: 'platform' });
    expect((await again.settle({ images: 2, costUsd: 0.05 })).creditsMicro).toBe(2_000_000);
    const more = await port.authorize({ ...request, service: 'image', estimate: { images: 3 }, paidBy: 'user' });
    await expect(port.authorize({ ...request, service: 'image', estimate: { images: 1 }, paidBy: 'user' })).rejects.toMatchObject({ status: 429 });
    await more.settle({ images: 3, costUsd: 0 });

    // free: 600 voice seconds a month.
    const long = await port.authorize({ ...request, service: 'speech', estimate: { seconds: 590 }, paidBy: 'user', feature: 'voice' });
    const refused = await port.authorize({ ...request, service: 'speech', estimate: { characters: 300 }, paidBy: 'user' }).catch((error: unknown) => error);
    expect(refused).toMatchObject({ status: 429, extra: { limit_name: 'voice_seconds_per_month' } });
    expect(Number((refused as { headers: Record<string, string> }).headers['retry-after'])).toBeGreaterThan(0);
    await long.settle({ seconds: 100, costUsd: 0 });
    await (await port.authorize({ ...request, service: 'speech', estimate: { characters: 300 }, paidBy: 'user' })).settle({ seconds: 20, costUsd: 0 });

    // A plan without voice refuses voice work before any vendor is called.
    await server.request('POST', '/v1/admin/plans', { body: { id: 'textonly', name: 'Text only', features: { voice: false } } });
    const gus = await user('gw-gus', 'textonly');
    await expect(port.authorize({ ...request, user: gus, service: 'speech', estimate: { characters: 10 }, paidBy: 'user', feature: 'voice' })).rejects.toMatchObject({ status: 403, code: 'feature_not_in_plan' });
  });

  it('the sweep job releases reservations a crashed process never settled', async () => {
    const hal = await user('gw-hal');
    await server.container.gateway.begin(chatCall(hal)); // never settled: the process "died"
    expect((await wallet(hal)).reservedMicro).toBe(200_000);
    const handler = server.container.jobHandlers['billing.release-stale']!;
    expect(await handler({}, { attempt: 1, jobId: 'test' })).toBe('skipped'); // not stale yet
    await server.container.db.update(creditReservations).set({ expiresAt: new Date(Date.now() - 1000) }).where(eq(creditReservations.userId, hal.id));
    expect(await handler({}, { attempt: 1, jobId: 'test' })).toBe('success');
    expect(await wallet(hal)).toMatchObject({ balanceMicro: 10_000_000, reservedMicro: 0 });
    expect((await server.container.billing.service.checkLedger()).mismatches).toEqual([]);
  });
});
