import http from 'node:http';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { creditLedger, usageEvents } from '../../src/infra/db/schema.js';
import { startOpenRouterFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read response bodies freely
type Turn = { status: number; body: any };

const TURNS = 1000;
const AFFORDABLE = 50;
/** 0.1 credits per 1,000 tokens = 100 micro-credits per token: every reservation is a whole number of tokens. */
const MICRO_PER_TOKEN = 100;
const MAX_TOKENS = 400;

/**
 * Done-when: 1,000 concurrent platform-paid chat turns over HTTP (POST /v1/characters/{id}/chat
 * against the real server, the real chat adapter and the OpenRouter fake) at a user whose balance
 * covers exactly 50 of them. Every turn is the same message in a channel of its own, so every
 * prompt — and so every reservation, (prompt tokens + max_tokens) × price — is the same; a first
 * turn at an empty wallet reads that reservation from its 402. The fake answers only once every
 * refusal is in, so no settled turn can hand credits back to a later one (the 50 held turns keep 50
 * of the client's 100 connections; the rest carry the refusals): exactly 50 must pass,
 * 950 get 402 insufficient_credits, and the ledger must sum to the balance. The plan's request
 * limit is far above 1,000 a minute, so only credits decide.
 */
describe.each(backends())('1,000 concurrent platform-paid chat turns over HTTP on %s storage', (backend) => {
  let server: TestServer;
  let openrouter: OpenAiCompatibleFake;

  beforeAll(async () => {
    openrouter = await startOpenRouterFake({ validKeys: ['platform-key'], reply: 'A short answer.' });
    server = await startTestServer(backend, { OPENROUTER_BASE_URL: openrouter.url, OPENROUTER_API_KEY: 'platform-key', RATE_LIMITS_ENABLED: 'true', UPSTREAM_MAX_RETRIES: '0',
      // 1,000 turns queue behind one another on the embedded database of a busy machine: no request may time out while it waits.
      REQUEST_TIMEOUT_MS: '900000', UPSTREAM_TIMEOUT_MS: '900000' });
  }, 240_000);

  afterAll(async () => {
    await server?.stop();
    await openrouter?.close();
  });

  it('lets exactly 50 through, refuses 950 with 402, and the ledger sums to the balance', async () => {
    const { container } = server;
    // No daily credits, no practical request limit: the balance alone decides.
    expect((await server.request('POST', '/v1/admin/plans', { body: { id: 'burst', name: 'Burst', daily_credits: 0, requests_per_minute: 100_000, concurrent_streams: 1000, credits_per_1k_tokens: 0.1 } })).status).toBe(201);
    const created = await server.request('POST', '/v1/characters', {
      body: { name: 'Burst', slug: 'burst', model_settings: { provider: 'openrouter', model: 'openai/gpt-4o-mini', max_tokens: MAX_TOKENS } },
    });
    expect(created.status).toBe(201);
    const { user: registered } = await container.identity.service.registerUser('burst-user', 'burst');
    await container.identity.service.updateUser(registered.id, { plan: 'burst' });
    const user = (await container.identity.service.findUser(registered.id))!;

    // All 1,000 turns are sent at once; node:http (no client timeouts) carries them over at most 100
    // connections at a time. 1,000 sockets opened at once starve a server that shares its process
    // (and, embedded, its database) with the test on a busy machine: connections were reset.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 100 });
    const turn = (channel: string): Promise<Turn> =>
      new Promise((resolve, reject) => {
        const payload = JSON.stringify({ content: 'Tell me something short.', channel_id: channel, username: 'burst' });
        const outgoing = http.request(
          `${server.url}/v1/characters/burst/chat`,
          { method: 'POST', agent, headers: { authorization: `Bearer ${server.internalKey}`, 'x-user-id': 'burst-user', 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
          (incoming) => {
            const chunks: Buffer[] = [];
            incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
            incoming.on('end', () => resolve({ status: incoming.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
            incoming.on('error', reject);
          },
        );
        outgoing.on('error', reject);
        outgoing.end(payload);
      });

    // The empty wallet refuses the first turn and names what one turn reserves.
    const probe = await turn('probe');
    expect(probe.status).toBe(402);
    expect(probe.body).toMatchObject({ code: 'insufficient_credits', balance_micro: 0 });
    const perTurn: number = probe.body.estimated_cost_micro;
    expect(perTurn % MICRO_PER_TOKEN).toBe(0);
    expect(perTurn / MICRO_PER_TOKEN).toBeGreaterThan(MAX_TOKENS); // prompt tokens + the answer's cap
    expect(openrouter.requestsTo('/chat/completions')).toHaveLength(0);
    await container.billing.service.grant({ userId: user.id, amountMicro: AFFORDABLE * perTurn, kind: 'grant', idempotencyKey: 'burst-funds' });

    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    openrouter.faults.add({ route: '/chat/completions', until: gate });
    const responses: Turn[] = [];
    const turns = Array.from({ length: TURNS }, (_, index) =>
      turn(`burst-${index}`).then((response) => {
        responses.push(response);
        return response;
      }),
    );
    const deadline = Date.now() + 780_000;
    while (responses.length < TURNS - AFFORDABLE && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    // Every refusal is in while the 50 admitted turns still hold their reservations upstream.
    expect(responses.map((response) => response.status)).toEqual(Array<number>(TURNS - AFFORDABLE).fill(402));
    for (const refused of responses) expect(refused.body).toMatchObject({ code: 'insufficient_credits', estimated_cost_micro: perTurn, balance_micro: 0 });
    expect(await container.billing.service.wallet(user).then((view) => view.wallet)).toMatchObject({ balanceMicro: 0, reservedMicro: AFFORDABLE * perTurn });
    openGate();
    const all = await Promise.all(turns);
    const succeeded = all.filter((response) => response.status === 200);
    expect(succeeded).toHaveLength(AFFORDABLE);
    expect(all.filter((response) => response.status === 402)).toHaveLength(TURNS - AFFORDABLE);
    expect(openrouter.requestsTo('/chat/completions')).toHaveLength(AFFORDABLE);
    for (const response of succeeded) expect(response.body.response).toBe('A short answer.');

    // Each admitted turn is charged its real tokens at the plan's price; the rest of its hold went back.
    const charged = succeeded.reduce((sum, response) => sum + response.body.usage.total_tokens * MICRO_PER_TOKEN, 0);
    expect(charged).toBeGreaterThan(0);
    expect(charged).toBeLessThan(AFFORDABLE * perTurn);
    const after = (await container.billing.service.wallet(user)).wallet;
    expect(after).toMatchObject({ balanceMicro: AFFORDABLE * perTurn - charged, reservedMicro: 0 });
    const [sum] = await container.db
      .select({ total: sql<string>`coalesce(sum(${creditLedger.amountMicro}), 0)` })
      .from(creditLedger)
      .where(eq(creditLedger.userId, user.id));
    expect(Number(sum!.total)).toBe(after.balanceMicro);
    const kinds = await container.db
      .select({ kind: creditLedger.kind, count: sql<string>`count(*)` })
      .from(creditLedger)
      .where(eq(creditLedger.userId, user.id))
      .groupBy(creditLedger.kind);
    expect(Object.fromEntries(kinds.map((row) => [row.kind, Number(row.count)]))).toEqual({ grant: 1, reserve: AFFORDABLE, settle: AFFORDABLE });
    const usage = await container.db.select({ service: usageEvents.service, credits: usageEvents.creditsMicro }).from(usageEvents).where(eq(usageEvents.userId, user.id));
    expect(usage.filter((row) => row.service === 'chat')).toHaveLength(AFFORDABLE);
    expect((await container.billing.service.checkLedger()).mismatches).toEqual([]);
  }, 900_000);
});
