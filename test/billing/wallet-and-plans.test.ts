import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { creditLedger } from '../../src/infra/db/schema.js';
import { BillingService } from '../../src/modules/billing/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

describe.each(backends())('plans, wallet and ledger on %s storage', (backend) => {
  let server: TestServer;
  const asUser = (externalId: string) => ({ key: server.internalKey, headers: { 'x-user-id': externalId } });
  const userId = async (externalId: string) => (await server.request('GET', '/v1/me', asUser(externalId))).body.id as string;

  beforeAll(async () => {
    server = await startTestServer(backend);
  }, 240_000);

  afterAll(async () => {
    await server?.stop();
  });

  it('offers free / premium / vip / enterprise with the seeds\' limits, publicly; admins create and change plans', async () => {
    const listed = await server.request('GET', '/v1/plans', { key: null });
    expect(listed.status).toBe(200);
    const byId = Object.fromEntries((listed.body.data as Array<{ id: string }>).map((plan) => [plan.id, plan]));
    expect(Object.keys(byId)).toEqual(['free', 'premium', 'vip', 'enterprise']);
    expect(byId.free).toMatchObject({ daily_credits: 10, requests_per_minute: 5, credits_per_1k_tokens: 0.1, concurrent_streams: 1, voice_seconds_per_month: 600, features: { platform_keys: true, voice: true } });
    expect(byId.premium).toMatchObject({ daily_credits: 100, requests_per_minute: 30, credits_per_1k_tokens: 0.07, concurrent_streams: 2, voice_seconds_per_month: 3600 });
    expect(byId.vip).toMatchObject({ daily_credits: 500, requests_per_minute: 100, credits_per_1k_tokens: 0.05, concurrent_streams: 5, voice_seconds_per_month: 14400 });
    expect(byId.enterprise).toMatchObject({ price: { amount_cents: null } });

    const created = await server.request('POST', '/v1/admin/plans', {
      body: { id: 'team', name: 'Team', daily_credits: 250, credits_per_1k_tokens: 0.06, requests_per_minute: 60, features: { platform_keys: false, voice: true }, public: false },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: 'team', daily_credits: 250, credits_per_1k_tokens: 0.06, features: { platform_keys: false, voice: true }, images_per_day: 5 });
    expect((await server.request('POST', '/v1/admin/plans', { body: { id: 'team', name: 'Again' } })).status).toBe(409);
    expect((await server.request('GET', '/v1/plans', { key: null })).body.data.map((plan: { id: string }) => plan.id)).not.toContain('team');
    expect((await server.request('GET', '/v1/admin/plans')).body.data.map((plan: { id: string }) => plan.id)).toContain('team');

    const changed = await server.request('PATCH', '/v1/admin/plans/team', { body: { images_per_day: 9, features: { image_generation: true } } });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ images_per_day: 9, daily_credits: 250, features: { platform_keys: false, voice: true, image_generation: true } });
    // Identity reads the same row: a user moved to the plan sees it, platform keys off.
    const ann = await userId('plan-ann');
    expect((await server.request('PATCH', `/v1/admin/users/${ann}`, { body: { plan: 'team' } })).body.plan).toMatchObject({ id: 'team', allows_platform_keys: false });
    // Through billing's one plan cache: a change shows in identity's answers at once (read, changed, read again).
    expect((await server.request('GET', '/v1/me', asUser('plan-ann'))).body.plan).toMatchObject({ id: 'team', allows_platform_keys: false });
    expect((await server.request('PATCH', '/v1/admin/plans/team', { body: { features: { platform_keys: true } } })).status).toBe(200);
    expect((await server.request('GET', '/v1/me', asUser('plan-ann'))).body.plan).toMatchObject({ id: 'team', allows_platform_keys: true });
    expect((await server.request('PATCH', '/v1/admin/plans/team', { body: { features: { platform_keys: false } } })).status).toBe(200);

    // Bad input: unknown plan, negative or absurd limits, unknown features, too many decimals, not an admin.
    expect((await server.request('PATCH', '/v1/admin/plans/gold', { body: { daily_credits: 1 } })).status).toBe(404);
    for (const body of [{ daily_credits: -1 }, { requests_per_minute: 1e12 }, { credits_per_1k_tokens: 0.0000001 }, { features: { teleport: true } }, { currency: 'Dollars' }]) {
      const rejected = await server.request('PATCH', '/v1/admin/plans/team', { body });
      expect(rejected.status, JSON.stringify(body)).toBe(422);
      expect(rejected.body.code).toBe('validation_failed');
    }
    expect((await server.request('POST', '/v1/admin/plans', { body: { id: 'Bad Id', name: 'x' } })).status).toBe(422);
    expect((await server.request('GET', '/v1/admin/plans', { key: server.internalKey })).status).toBe(403);
  });

  it('gives a new user today\'s daily credits lazily, and admins grant and take credits with a reason', async () => {
    const balance = await server.request('GET', '/v1/wallet/balance', asUser('wallet-bea'));
    expect(balance.status).toBe(200);
    expect(balance.body).toMatchObject({ balance: 10, balance_micro: 10_000_000, daily_remaining: 10, reserved: 0, plan: { id: 'free', daily_credits: 10 } });
    expect(Date.parse(balance.body.next_refresh_at) - Date.now()).toBeLessThanOrEqual(86_400_000);
    const bea = balance.body.user_id as string;

    const granted = await server.request('POST', `/v1/admin/users/${bea}/credits`, { body: { amount: 2.5, reason: 'support gesture' } });
    expect(granted.status).toBe(201);
    expect(granted.body).toMatchObject({ balance: 12.5, duplicate: false, entry: { kind: 'grant', amount: 2.5, amount_micro: 2_500_000, reason: 'support gesture' } });
    // By external id too; a negative amount takes credits away.
    const taken = await server.request('POST', '/v1/admin/users/wallet-bea/credits', { body: { amount: -0.5, reason: 'correction' } });
    expect(taken.body).toMatchObject({ balance: 12, entry: { kind: 'adjustment', amount: -0.5 } });

    // A retry with the same Idempotency-Key moves nothing and returns the first entry.
    const first = await server.request('POST', `/v1/admin/users/${bea}/credits`, { body: { amount: 1, reason: 'retry me' }, headers: { 'idempotency-key': 'grant-1' } });
    const again = await server.request('POST', `/v1/admin/users/${bea}/credits`, { body: { amount: 1, reason: 'retry me' }, headers: { 'idempotency-key': 'grant-1' } });
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ duplicate: true, entry: { id: first.body.entry.id } });
    expect((await server.request('GET', '/v1/wallet/balance', asUser('wallet-bea'))).body.balance).toBe(13);

    const page1 = await server.request('GET', '/v1/wallet/transactions?limit=2', asUser('wallet-bea'));
    expect(page1.body.data.map((entry: { kind: string }) => entry.kind)).toEqual(['grant', 'adjustment']);
    const page2 = await server.request('GET', `/v1/wallet/transactions?limit=2&cursor=${page1.body.next_cursor}`, asUser('wallet-bea'));
    expect(page2.body.data.map((entry: { kind: string }) => entry.kind)).toEqual(['grant', 'daily_refresh']);
    expect(page2.body.next_cursor).toBeNull();
    expect((await server.request('GET', '/v1/wallet/transactions?cursor=bm9wZQ', asUser('wallet-bea'))).status).toBe(422);
  });

  it('refuses bad amounts, unknown users and non-admins, and never lets a balance go below zero', async () => {
    const cid = await userId('wallet-cid');
    for (const body of [{ amount: 0, reason: 'x' }, { amount: 1e10, reason: 'x' }, { amount: 0.0000001, reason: 'x' }, { amount: '5', reason: 'x' }, { amount: 1 }, { amount: 1, reason: '' }]) {
      const rejected = await server.request('POST', `/v1/admin/users/${cid}/credits`, { body });
      expect(rejected.status, JSON.stringify(body)).toBe(422);
    }
    const overdraw = await server.request('POST', `/v1/admin/users/${cid}/credits`, { body: { amount: -11, reason: 'too much' } });
    expect(overdraw.status).toBe(422);
    expect(overdraw.body).toMatchObject({ code: 'validation_failed', field: 'amount', balance: 10 });
    expect((await server.request('POST', '/v1/admin/users/nobody-here/credits', { body: { amount: 1, reason: 'x' } })).status).toBe(404);
    expect((await server.request('POST', `/v1/admin/users/${cid}/credits`, { key: server.internalKey, body: { amount: 1, reason: 'x' } })).status).toBe(403);
    expect((await server.request('GET', '/v1/wallet/balance', asUser('wallet-cid'))).body.balance).toBe(10);
  });

  it('applies 50 concurrent admin grants exactly once each; the ledger sums to every balance', async () => {
    const dan = await userId('wallet-dan');
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, index) => server.request('POST', `/v1/admin/users/${dan}/credits`, { body: { amount: 0.1, reason: `grant ${index}` }, headers: { 'idempotency-key': `burst-${index % 25}` } })),
    );
    expect(answers.filter((answer) => answer.status === 201)).toHaveLength(25);
    expect(answers.filter((answer) => answer.status === 200 && answer.body.duplicate)).toHaveLength(25);
    const balance = await server.request('GET', '/v1/wallet/balance', asUser('wallet-dan'));
    expect(balance.body.balance_micro).toBe(10_000_000 + 25 * 100_000);
    const check = await server.container.billing.service.checkLedger();
    expect(check.mismatches).toEqual([]);
    expect(check.wallets).toBeGreaterThanOrEqual(3);
  });

  it('market grants: purchases add, refunds take back down to zero and report what they could not', async () => {
    const billing = server.container.billing.service;
    const eve = await userId('wallet-eve');
    await server.request('GET', '/v1/wallet/balance', asUser('wallet-eve'));
    const purchase = await billing.grant({ userId: eve, amountMicro: 5_000_000, kind: 'purchase', idempotencyKey: 'stripe:pi_1', reference: 'pi_1', reason: '5 credits' });
    expect(purchase).toMatchObject({ duplicate: false, balanceMicro: 15_000_000, shortfallMicro: 0 });
    expect((await billing.grant({ userId: eve, amountMicro: 5_000_000, kind: 'purchase', idempotencyKey: 'stripe:pi_1' })).duplicate).toBe(true);
    const refund = await billing.grant({ userId: eve, amountMicro: 20_000_000, kind: 'refund', idempotencyKey: 'stripe:re_1', reference: 'pi_1' });
    expect(refund).toMatchObject({ balanceMicro: 0, shortfallMicro: 5_000_000 });
    expect(refund.entry.amountMicro).toBe(-15_000_000);
    await expect(billing.grant({ userId: eve, amountMicro: -1, kind: 'purchase', idempotencyKey: 'x' })).rejects.toMatchObject({ status: 422 });
    await expect(billing.grant({ userId: eve, amountMicro: 1.5, kind: 'grant', idempotencyKey: 'y' })).rejects.toMatchObject({ status: 422 });
    expect((await billing.checkLedger()).mismatches).toEqual([]);
  });

  it('refreshes daily credits once on the first use after UTC midnight, never stacking unused ones', async () => {
    const fay = await userId('wallet-fay');
    let now = new Date('2031-03-04T23:59:00Z');
    const billing = new BillingService({ config: server.container.config, db: server.container.db, logger: server.container.logger, now: () => now });
    const user = (await server.container.identity.service.findUser(fay))!;
    await billing.grant({ userId: fay, amountMicro: 3_000_000, kind: 'grant', idempotencyKey: 'fay-bonus' });
    const before = await billing.wallet(user);
    expect(before.wallet).toMatchObject({ balanceMicro: 13_000_000, dailyMicro: 10_000_000, dailyRefreshedOn: '2031-03-04' });
    const held = await billing.hold(user, before.plan, { amountMicro: 4_000_000, service: 'chat', provider: 'openrouter', model: undefined, idempotencyKey: undefined });
    if ('alreadySettled' in held) throw new Error('unexpected');
    expect(await billing.settle(held, fay, 4_000_000)).toBe(4_000_000);
    expect((await billing.wallet(user)).wallet).toMatchObject({ balanceMicro: 9_000_000, dailyMicro: 6_000_000 });

    now = new Date('2031-03-05T00:00:01Z');
    // Many first uses at once: one refresh, topping today's daily credits back up to 10 (not 16).
    const wallets = await Promise.all(Array.from({ length: 10 }, () => billing.wallet(user)));
    expect(new Set(wallets.map((found) => found.wallet.balanceMicro))).toEqual(new Set([13_000_000]));
    expect(wallets[0]!.wallet).toMatchObject({ dailyMicro: 10_000_000, dailyRefreshedOn: '2031-03-05' });
    const refreshes = (await server.container.db.select().from(creditLedger)).filter((entry) => entry.userId === fay && entry.kind === 'daily_refresh');
    expect(refreshes.map((entry) => entry.amountMicro)).toEqual([10_000_000, 4_000_000]);
    expect((await billing.checkLedger()).mismatches).toEqual([]);
  });

  it('keeps the ledger append-only', async () => {
    await expect(server.container.db.update(creditLedger).set({ amountMicro: 1 })).rejects.toThrow();
  });
});
