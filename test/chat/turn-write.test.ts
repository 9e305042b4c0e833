import { asc, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { creditLedger, messages, usageEvents, wallets } from '../../src/infra/db/schema.js';
import { startOpenRouterFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { countStatements } from '../helpers/statement-counter.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * Issue 14: a chat turn's write — both messages, the settle of its reservation and its usage row —
 * is one statement (data-modifying CTEs). What it writes must be exactly what the transaction it
 * replaced wrote; where the settle needs more than one statement (a charge above the reservation)
 * or the statement fails (here: the usage roll-up refuses), the turn is written in a transaction,
 * where metering failures are logged and never fail the answer.
 */
describe.each(backends())("a chat turn's write (%s)", (backend) => {
  let server: TestServer;
  let openrouter: OpenAiCompatibleFake;

  beforeAll(async () => {
    openrouter = await startOpenRouterFake({ reply: 'Written down, every word.' });
    server = await startTestServer(backend, { OPENROUTER_BASE_URL: openrouter.url, OPENROUTER_API_KEY: 'test-key', MEMORY_FORMATION_DELAY_MS: '600000' });
    expect((await server.request('POST', '/v1/characters', { body: { name: 'Scribe', slug: 'scribe' } })).status).toBe(201);
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    await openrouter?.close();
  });

  const turn = (externalId: string, content: string, extra: Record<string, unknown> = {}) =>
    server.request('POST', '/v1/chat/completions', {
      key: server.internalKey,
      headers: { 'x-user-id': externalId },
      body: { model: 'character/scribe', messages: [{ role: 'user', content }], ...extra },
    });
  const userId = async (externalId: string) => (await server.container.identity.service.registerUser(externalId, undefined)).user.id;
  const ledger = async (id: string) =>
    (await server.container.db.select().from(creditLedger).where(eq(creditLedger.userId, id)).orderBy(asc(creditLedger.id))).map((entry) => ({ kind: entry.kind, amount: entry.amountMicro, balanceAfter: entry.balanceAfterMicro, reason: entry.reason }));
  const wallet = async (id: string) => (await server.container.db.select().from(wallets).where(eq(wallets.userId, id)))[0]!;
  const usageRows = async (id: string) => server.container.db.select().from(usageEvents).where(eq(usageEvents.userId, id)).orderBy(asc(usageEvents.createdAt));
  const storedMessages = async (id: string) =>
    server.container.db.select({ role: messages.role, status: messages.status, content: messages.content }).from(messages).where(eq(messages.speakerUserId, id)).orderBy(asc(messages.createdAt));

  it('writes the messages, the settle, the ledger and the usage row in one statement, with the amounts the transaction wrote', async () => {
    expect((await turn('writer-ann', 'First, a warm-up.')).status).toBe(200);
    const counter = countStatements(server.container.db);
    let statements: string[];
    try {
      const answered = await turn('writer-ann', 'Now write this down.');
      expect(answered.status, answered.text).toBe(200);
      statements = [...counter.statements];
    } finally {
      counter.restore();
    }
    const writes = statements.filter((statement) => /insert into "?messages"?/i.test(statement));
    expect(writes).toHaveLength(1);
    expect(statements.some((statement) => /^(begin|savepoint)/i.test(statement.trim()))).toBe(false);

    const ann = await userId('writer-ann');
    const entries = await ledger(ann);
    expect(entries.map((entry) => entry.kind)).toEqual(['daily_refresh', 'reserve', 'settle', 'reserve', 'settle']);
    const events = await usageRows(ann);
    expect(events).toHaveLength(2);
    for (const [index, event] of events.entries()) {
      const [reserve, settle] = [entries[1 + index * 2]!, entries[2 + index * 2]!];
      // What the turn cost is what its reservation kept, and what its usage row says it was charged.
      expect(event.creditsMicro).toBe(-(reserve.amount + settle.amount));
      expect(event.creditsMicro).toBeGreaterThan(0);
      expect(settle.balanceAfter).toBe(reserve.balanceAfter + settle.amount);
    }
    const held = await wallet(ann);
    expect(held.reservedMicro).toBe(0);
    expect(held.balanceMicro).toBe(entries.at(-1)!.balanceAfter);
    expect((await server.container.billing.service.checkLedger()).mismatches).toEqual([]);
    expect((await storedMessages(ann)).map((message) => [message.role, message.status])).toEqual([
      ['user', 'complete'],
      ['user', 'complete'],
    ]);
    const usage = await server.request('GET', '/v1/me/usage?days=1', { key: server.internalKey, headers: { 'x-user-id': 'writer-ann' } });
    expect(usage.body.services.chat).toMatchObject({ requests: 2, credits_micro: events[0]!.creditsMicro + events[1]!.creditsMicro, paid_by: { platform: 2, user: 0 } });
  });

  it('charges a turn that used more than it reserved the excess too, written in a transaction', async () => {
    // Words the fake counts at four characters a token while the reservation's estimate counts one
    // token a word, and a one-token answer cap: the upstream reports far more than was reserved.
    const answered = await turn('writer-bo', 'understanding '.repeat(300), { max_tokens: 1 });
    expect(answered.status, answered.text).toBe(200);
    const bo = await userId('writer-bo');
    const entries = await ledger(bo);
    expect(entries.map((entry) => entry.kind)).toEqual(['daily_refresh', 'reserve', 'settle', 'settle']);
    expect(entries[3]!.reason).toBe('usage above the estimate');
    const [, reserve, settle, excess] = entries;
    expect(settle!.amount).toBe(0); // the whole reservation was used
    expect(excess!.amount).toBeLessThan(0);
    const [event] = await usageRows(bo);
    expect(event!.creditsMicro).toBe(-(reserve!.amount + excess!.amount));
    expect((await wallet(bo)).reservedMicro).toBe(0);
    expect((await server.container.billing.service.checkLedger()).mismatches).toEqual([]);
    expect((await storedMessages(bo)).map((message) => message.status)).toEqual(['complete']);
  });

  it('answers and charges when the usage roll-up refuses: the one statement fails, the transaction logs the metering failure', async () => {
    const cy = await userId('writer-cy');
    await server.container.db.execute(sql.raw(`
      CREATE OR REPLACE FUNCTION refuse_usage_roll_up() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.user_id = '${cy}'::uuid THEN RAISE EXCEPTION 'usage roll-up refused for this test'; END IF;
        RETURN NEW;
      END $$`));
    await server.container.db.execute(sql.raw('CREATE TRIGGER refuse_usage_roll_up BEFORE INSERT ON usage_daily FOR EACH ROW EXECUTE FUNCTION refuse_usage_roll_up()'));
    try {
      const answered = await turn('writer-cy', 'Keep this even if the meter jams.');
      expect(answered.status, answered.text).toBe(200);
      expect(answered.body.choices[0].message.content).toBe('Written down, every word.');
    } finally {
      await server.container.db.execute(sql.raw('DROP TRIGGER refuse_usage_roll_up ON usage_daily'));
    }
    expect((await storedMessages(cy)).map((message) => [message.content, message.status])).toEqual([['Keep this even if the meter jams.', 'complete']]);
    // Charged once, by the transaction; the usage row went with the refused roll-up (under its savepoint).
    expect((await ledger(cy)).map((entry) => entry.kind)).toEqual(['daily_refresh', 'reserve', 'settle']);
    expect((await wallet(cy)).reservedMicro).toBe(0);
    expect(await usageRows(cy)).toHaveLength(0);
    expect(server.logs.some((line) => line.includes("the turn's one-statement write failed"))).toBe(true);
    expect(server.logs.some((line) => line.includes('could not record usage') && line.includes('usage roll-up refused'))).toBe(true);
    expect((await server.container.billing.service.checkLedger()).mismatches).toEqual([]);
  });
});
