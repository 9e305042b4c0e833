import { eq, type SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { creditLedger, creditReservations } from '../../src/infra/db/schema.js';
import { BillingService } from '../../src/modules/billing/service.js';
import type { UserRow } from '../../src/modules/identity/store.js';
import { startOpenRouterFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * A chat turn's credit hold written as the model call leaves (issue 14; `holdAlongside`,
 * `lease.confirm`): nothing reaches the client before the hold is written. It is done only for a
 * user whose balance this process last saw at twice the estimate or more; when the hold fails all
 * the same (another replica spent the credits), the call is cut off and the client gets the 402 it
 * would have got before — with nothing stored, held or charged.
 */
describe.each(backends())('credit hold alongside the model call on %s storage', (backend) => {
  let server: TestServer;
  let openrouter: OpenAiCompatibleFake;

  const headers = (externalId: string) => ({ 'x-user-id': externalId });
  const userOf = async (externalId: string): Promise<UserRow> => {
    const { user } = await server.container.identity.service.registerUser(externalId, undefined);
    return user;
  };
  const wallet = async (user: UserRow) => (await server.container.billing.service.wallet(user)).wallet;
  const ledgerKinds = async (user: UserRow) =>
    (await server.container.db.select().from(creditLedger).where(eq(creditLedger.userId, user.id)).orderBy(creditLedger.id)).map((entry) => entry.kind);
  const reservations = async (user: UserRow) => server.container.db.select().from(creditReservations).where(eq(creditReservations.userId, user.id));
  const chat = (externalId: string, content: string) => server.request('POST', '/v1/characters/ahead/chat', { key: server.internalKey, headers: headers(externalId), body: { content } });
  const upstreamCalls = () => openrouter.requestsTo('/chat/completions').length;
  /** Takes the balance down to `leaveMicro` behind this process's back (as another replica's spending would). */
  const drain = async (user: UserRow, leaveMicro: number, key: string) => {
    const { balanceMicro } = await wallet(user);
    await server.container.billing.service.grant({ userId: user.id, amountMicro: balanceMicro - leaveMicro, kind: 'refund', idempotencyKey: key });
  };

  beforeAll(async () => {
    openrouter = await startOpenRouterFake({ validKeys: ['platform-key'], reply: 'The lamp is lit and the sea is calm tonight.' });
    server = await startTestServer(backend, {
      OPENROUTER_BASE_URL: openrouter.url,
      OPENROUTER_API_KEY: 'platform-key',
      UPSTREAM_MAX_RETRIES: '0',
      UPSTREAM_TIMEOUT_MS: '30000',
      // Memory formation calls the same fake model in the background; counted with the turns' calls, a job landing
      // between two counts (a loaded machine stretches the tests past its 2 s window) looked like a turn's call.
      MEMORY_FORMATION_DELAY_MS: '600000',
    });
    expect((await server.request('POST', '/v1/characters', { body: { name: 'Keeper', slug: 'ahead' } })).status).toBe(201);
  }, 240_000);

  afterAll(async () => {
    await server?.stop();
    await openrouter?.close();
  });

  beforeEach(() => {
    openrouter.faults.clear();
  });

  it('charges every turn as before: one reserve and one settle each, nothing left held', async () => {
    const ann = await userOf('ahead-ann');
    for (const text of ['Is the lamp lit?', 'And the sea?', 'Good night, keeper.']) expect((await chat('ahead-ann', text)).status).toBe(200);
    expect(await ledgerKinds(ann)).toEqual(['daily_refresh', 'reserve', 'settle', 'reserve', 'settle', 'reserve', 'settle']);
    expect((await wallet(ann)).reservedMicro).toBe(0);
    expect((await reservations(ann)).map((row) => row.status)).toEqual(['settled', 'settled', 'settled']);
    expect((await server.container.billing.service.checkLedger()).mismatches).toEqual([]);
  });

  /** The turn's messages as stored. */
  const storedTexts = async (externalId: string) => {
    const conversations = await server.request('GET', '/v1/conversations', { key: server.internalKey, headers: headers(externalId) });
    const [conversation] = conversations.body.data as Array<{ id: string }>;
    const messages = await server.request('GET', `/v1/conversations/${conversation!.id}/messages`, { key: server.internalKey, headers: headers(externalId) });
    return (messages.body.data as Array<{ content: string }>).map((message) => message.content);
  };
  const completion = (externalId: string, stream: boolean, content: string) =>
    server.request('POST', '/v1/chat/completions', { key: server.internalKey, headers: headers(externalId), body: { model: 'character/ahead', stream, messages: [{ role: 'user', content }] } });
  const expectRefusedWithNothingKept = async (user: UserRow, externalId: string, refused: Awaited<ReturnType<typeof completion>>, kindsBefore: string[]) => {
    expect(refused.status).toBe(402);
    // A plain HTTP error, not a stream: no word of the answer reached the client.
    expect(refused.headers.get('content-type')).toContain('application/json');
    expect(refused.body.error).toMatchObject({ code: 'insufficient_credits' });
    expect(refused.text).not.toContain('lamp');
    expect(await ledgerKinds(user)).toEqual(kindsBefore);
    expect(await wallet(user)).toMatchObject({ balanceMicro: 10_000, reservedMicro: 0 });
    expect(await storedTexts(externalId)).not.toContain('Are you still there?');
    expect((await server.container.billing.service.checkLedger()).mismatches).toEqual([]);
  };

  it.each([false, true])('a hold that fails once the call may have left answers 402 and stores, holds and charges nothing (stream: %s)', async (stream) => {
    const externalId = `ahead-bo-${stream}`;
    const bo = await userOf(externalId);
    // The first turn shows this process the balance; then it is spent behind its back (as by another replica).
    expect((await chat(externalId, 'Hello there.')).status).toBe(200);
    await drain(bo, 10_000, `ahead-drain-${stream}`);
    const kindsBefore = await ledgerKinds(bo);
    await expectRefusedWithNothingKept(bo, externalId, await completion(externalId, stream, 'Are you still there?'), kindsBefore);
  });

  it.runIf(backend === 'postgres')('the call leaves while the hold waits for the wallet, and is cut off when the hold fails', async () => {
    const externalId = 'ahead-eve';
    const eve = await userOf(externalId);
    expect((await chat(externalId, 'Hello there.')).status).toBe(200);
    const kindsBefore = await ledgerKinds(eve);
    // The vendor never answers: only the failed hold can end this turn.
    openrouter.faults.hang({ route: '/chat/completions' });
    const before = upstreamCalls();
    let pending: ReturnType<typeof completion> | undefined;
    const started = performance.now();
    await server.container.db.transaction(async (executor) => {
      // Another replica's spending, not committed yet: it holds the wallet row, so the turn's hold waits.
      const { balanceMicro } = await wallet(eve);
      await server.container.billing.service.grant({ userId: eve.id, amountMicro: balanceMicro - 10_000, kind: 'refund', idempotencyKey: 'ahead-drain-eve', executor });
      pending = completion(externalId, true, 'Are you still there?');
      // The model call leaves while the hold waits.
      while (upstreamCalls() === before) await new Promise((resolve) => setTimeout(resolve, 5));
    });
    const refused = await pending!;
    expect(performance.now() - started).toBeLessThan(10_000); // not the upstream timeout: the call was cut off
    kindsBefore.push('refund');
    await expectRefusedWithNothingKept(eve, externalId, refused, kindsBefore);
  });

  it('a lease left to confirm holds nothing until asked: released unasked it holds nothing, settled unasked it holds first', async () => {
    const fay = await userOf('ahead-fay');
    const call = { modality: 'chat' as const, provider: 'openrouter' as const, service: 'chat' as const, user: fay, model: 'openai/gpt-4o-mini', estimate: { promptTokens: 1000, maxCompletionTokens: 1000 }, holdAlongside: true };
    // Not seen yet: held before begin returns.
    const first = await server.container.gateway.begin(call);
    expect((await reservations(fay)).map((row) => row.status)).toEqual(['held']);
    await first.settle({ promptTokens: 100, completionTokens: 100 });
    // Seen at ten credits: the hold waits for confirm.
    const unasked = await server.container.gateway.begin(call);
    expect(await reservations(fay)).toHaveLength(1);
    await unasked.fail(new Error('the call never left'));
    expect(await reservations(fay)).toHaveLength(1);
    const confirmed = await server.container.gateway.begin(call);
    await confirmed.confirm();
    expect((await reservations(fay)).map((row) => row.status).sort()).toEqual(['held', 'settled']);
    expect((await wallet(fay)).reservedMicro).toBe(200_000);
    expect((await confirmed.settle({ promptTokens: 100, completionTokens: 100 })).creditsMicro).toBe(20_000);
    const settledUnasked = await server.container.gateway.begin(call);
    expect((await settledUnasked.settle({ promptTokens: 100, completionTokens: 100 })).creditsMicro).toBe(20_000);
    expect(await ledgerKinds(fay)).toEqual(['daily_refresh', 'reserve', 'settle', 'reserve', 'settle', 'reserve', 'settle']);
    expect(await wallet(fay)).toMatchObject({ balanceMicro: 10_000_000 - 60_000, reservedMicro: 0 });
    expect((await server.container.billing.service.checkLedger()).mismatches).toEqual([]);
  });

  /** A chat call of 0.2 credits for a new user, and that user seen at ten credits: the first call held first and settled (0.02). */
  const seenAtTenCredits = async (externalId: string) => {
    const user = await userOf(externalId);
    const call = { modality: 'chat' as const, provider: 'openrouter' as const, service: 'chat' as const, user, model: 'openai/gpt-4o-mini', estimate: { promptTokens: 1000, maxCompletionTokens: 1000 }, holdAlongside: true };
    const first = await server.container.gateway.begin(call); // held first: 200,000 of 10,000,000, seen 9,800,000 after it
    await first.settle({ promptTokens: 100, completionTokens: 100 });
    return { user, call };
  };

  it("a lease left to confirm and settled unasked inside the caller's transaction is charged there, unheld, without waiting on itself", async () => {
    const { user: hal, call } = await seenAtTenCredits('ahead-hal');
    // Seen at ten credits: the hold waits for confirm, which this caller never asks for.
    const unasked = await server.container.gateway.begin(call);
    expect(await reservations(hal)).toHaveLength(1);
    // On the embedded database the caller's transaction holds its one connection: a hold written on another would wait forever.
    let timer: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      server.container.db.transaction((executor) => unasked.settle({ promptTokens: 100, completionTokens: 100 }, { executor })),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("settle waited on its caller's transaction")), 10_000);
      }),
    ]).finally(() => clearTimeout(timer));
    expect(settled.creditsMicro).toBe(20_000);
    expect(await reservations(hal)).toHaveLength(1);
    expect(await ledgerKinds(hal)).toEqual(['daily_refresh', 'reserve', 'settle', 'settle']);
    expect(await wallet(hal)).toMatchObject({ balanceMicro: 10_000_000 - 40_000, reservedMicro: 0 });
    expect((await server.container.billing.service.checkLedger()).mismatches).toEqual([]);
    // Its promise was withdrawn: the next call is sent ahead again, and nothing is left promised or held.
    const next = await server.container.gateway.begin(call);
    expect(await reservations(hal)).toHaveLength(1);
    await next.fail(new Error('not needed'));
    expect((await wallet(hal)).reservedMicro).toBe(0);
  });

  it('a call with an idempotency key is held before it leaves, never alongside (a retry must find the first charge)', async () => {
    const { user: ivy, call } = await seenAtTenCredits('ahead-ivy');
    const keyed = await server.container.gateway.begin({ ...call, idempotencyKey: 'ahead-ivy-1' });
    expect((await reservations(ivy)).map((row) => row.status).sort()).toEqual(['held', 'settled']);
    await keyed.settle({ promptTokens: 100, completionTokens: 100 });
    const retried = await server.container.gateway.begin({ ...call, idempotencyKey: 'ahead-ivy-1' });
    expect((await retried.settle({ promptTokens: 100, completionTokens: 100 })).creditsMicro).toBe(0);
    expect(await wallet(ivy)).toMatchObject({ balanceMicro: 10_000_000 - 40_000, reservedMicro: 0 });
  });

  it('holds under way or promised count against the balance seen: a burst stops being sent ahead before it could exhaust it', async () => {
    const { user: gil, call } = await seenAtTenCredits('ahead-gil');
    // Sent ahead while 9,800,000 less those promised is still twice 200,000: 48 of them.
    const ahead = [];
    for (let index = 0; index < 48; index += 1) ahead.push(await server.container.gateway.begin(call));
    expect(await reservations(gil)).toHaveLength(1);
    const heldFirst = await server.container.gateway.begin(call);
    expect(await reservations(gil)).toHaveLength(2);
    await heldFirst.fail(new Error('not needed'));
    // Given up before they left: the promise is withdrawn, and the next call is sent ahead again.
    for (const lease of ahead) await lease.fail(new Error('the client left'));
    const again = await server.container.gateway.begin(call);
    expect(await reservations(gil)).toHaveLength(2);
    await again.fail(new Error('not needed'));
    expect((await wallet(gil)).reservedMicro).toBe(0);
  });

  it('with no balance seen yet, or one under twice the estimate, the hold comes first and the vendor is never called', async () => {
    // Never seen by this process: its first turn holds before calling.
    const cy = await userOf('ahead-cy');
    await server.container.billing.service.wallet(cy);
    await drain(cy, 10_000, 'ahead-drain-cy');
    const before = upstreamCalls();
    expect((await chat('ahead-cy', 'Anyone home?')).status).toBe(402);
    expect(upstreamCalls()).toBe(before);

    // Seen, but the last hold left less than twice what the next one asks: it holds first too.
    const di = await userOf('ahead-di');
    expect((await chat('ahead-di', 'Hello.')).status).toBe(200);
    const [first] = await reservations(di);
    await drain(di, Math.round(first!.amountMicro * 1.5), 'ahead-drain-di');
    // Seen at ten credits: this hold is written alongside the call, and the balance still covers it.
    expect((await chat('ahead-di', 'Hello again.')).status).toBe(200);
    const afterCovered = upstreamCalls();
    await drain(di, 10_000, 'ahead-drain-di-2');
    expect((await chat('ahead-di', 'And again.')).status).toBe(402);
    expect(upstreamCalls()).toBe(afterCovered);
  });
  it("a hold's answer that comes in after a refusal never stands for the balance: the refusal's snapshot is newer", async () => {
    // One hold's answer is kept back, as a busy connection pool or event loop may: its ledger entry is
    // older than the later holds' and the refusal's, but this process reads it last.
    const dialect = new PgDialect();
    let keepBack: Promise<void> | undefined;
    const db = new Proxy(server.container.db, {
      get(target, property, receiver) {
        if (property !== 'execute') return Reflect.get(target, property, receiver);
        return async (query: SQL) => {
          const held = keepBack && dialect.sqlToQuery(query).sql.includes('INSERT INTO credit_reservations') ? keepBack : undefined;
          if (held) keepBack = undefined;
          const result = await target.execute(query);
          if (held) await held;
          return result;
        };
      },
    });
    const billing = new BillingService({ config: server.container.config, db, logger: server.container.logger });
    const hal = await userOf('ahead-hal');
    const { wallet: start, plan } = await billing.wallet(hal);
    const amountMicro = Math.floor(start.balanceMicro / 4);
    const call = { amountMicro, service: 'chat' as const, provider: 'openrouter', model: undefined, idempotencyKey: undefined };
    await billing.hold(hal, plan, call); // seen: three quarters left
    let letGo!: () => void;
    keepBack = new Promise<void>((resolve) => (letGo = resolve));
    const late = billing.hold(hal, plan, call); // written second, read last
    while (keepBack !== undefined) await new Promise((resolve) => setTimeout(resolve, 2));
    await billing.hold(hal, plan, call);
    await billing.hold(hal, plan, call); // the last quarter: nothing (or less than one hold) left
    await expect(billing.hold(hal, plan, call)).rejects.toMatchObject({ status: 402 });
    expect(billing.expectCovered(hal.id, amountMicro)).toBe(false);
    letGo();
    await late;
    // The late answer said half the balance was left; the refusal, read before it, knew better.
    expect(billing.expectCovered(hal.id, amountMicro)).toBe(false);
    // A newer hold after a top-up is believed again.
    await billing.grant({ userId: hal.id, amountMicro: 10 * amountMicro, kind: 'grant', idempotencyKey: 'ahead-hal-top-up' });
    await billing.hold(hal, plan, call);
    expect(billing.expectCovered(hal.id, amountMicro)).toBe(true);
    billing.forgetExpected(hal.id, amountMicro);
  });
  it('a hold written first leaves the credits promised to calls already on their way', async () => {
    // A call the process let go ahead of its hold (expectCovered) must still find its credits when the
    // hold is written; holds of requests that came after it, written first, may not take them.
    const billing = server.container.billing.service;
    const ivy = await userOf('ahead-ivy');
    const { wallet: start, plan } = await billing.wallet(ivy);
    const amountMicro = Math.floor(start.balanceMicro / 4);
    const call = { amountMicro, service: 'chat' as const, provider: 'openrouter', model: undefined, idempotencyKey: undefined };
    await billing.hold(ivy, plan, call); // seen: three holds left
    expect(billing.expectCovered(ivy.id, amountMicro)).toBe(true); // promised one of them
    await billing.hold(ivy, plan, call);
    await billing.hold(ivy, plan, call);
    const refused = await billing.hold(ivy, plan, call).then(() => undefined, (error: unknown) => error);
    // The one hold left is promised: the refusal counts it as held, not as balance.
    const rest = start.balanceMicro - 4 * amountMicro; // what 4 holds leave (less than one)
    expect(refused).toMatchObject({ status: 402 });
    expect((refused as { extra: { balance_micro: number; reserved_micro: number } }).extra).toMatchObject({ balance_micro: rest, reserved_micro: 4 * amountMicro });
    // The promised hold is written as its call leaves, and still finds its credits.
    await expect(billing.hold(ivy, plan, call, { expected: true })).resolves.toMatchObject({ amountMicro });
    expect((await wallet(ivy)).balanceMicro).toBe(rest);
    // Nothing is promised any more, and nothing is left for a fifth hold.
    expect(billing.expectCovered(ivy.id, amountMicro)).toBe(false);
    await expect(billing.hold(ivy, plan, call)).rejects.toMatchObject({ status: 402, extra: { balance_micro: rest, reserved_micro: 4 * amountMicro } });
  });
});
