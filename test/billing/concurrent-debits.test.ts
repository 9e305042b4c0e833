import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { creditLedger } from '../../src/infra/db/schema.js';
import type { ChatResult } from '../../src/providers/chat/chat-model.js';
import { startOpenRouterFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

const TURNS = 1000;
const AFFORDABLE = 50;

/**
 * Done-when: 1,000 concurrent platform-paid chat calls at a user whose balance covers exactly 50
 * of them. The upstream (the OpenRouter fake behind the real chat adapter) answers only once
 * every refusal is in, so no settled call can hand credits back to a later one: exactly 50 must
 * pass, 950 get 402 insufficient_credits, and the ledger must sum to the balance.
 */
describe.each(backends())('1,000 concurrent platform-paid calls on %s storage', (backend) => {
  let server: TestServer;
  let openrouter: OpenAiCompatibleFake;

  beforeAll(async () => {
    openrouter = await startOpenRouterFake({ validKeys: ['platform-key'], reply: 'A short answer.' });
    server = await startTestServer(backend, { OPENROUTER_BASE_URL: openrouter.url, OPENROUTER_API_KEY: 'platform-key', RATE_LIMITS_ENABLED: 'true', UPSTREAM_MAX_RETRIES: '0' });
  }, 240_000);

  afterAll(async () => {
    await server?.stop();
    await openrouter?.close();
  });

  it('lets exactly 50 through, refuses 950 with 402, and the ledger sums to the balance', async () => {
    const { container } = server;
    // No daily credits, no request limit: the balance alone decides.
    expect((await server.request('POST', '/v1/admin/plans', { body: { id: 'burst', name: 'Burst', daily_credits: 0, requests_per_minute: 100_000, credits_per_1k_tokens: 0.1 } })).status).toBe(201);
    const { user: registered } = await container.identity.service.registerUser('burst-user', undefined);
    await container.identity.service.updateUser(registered.id, { plan: 'burst' });
    const user = (await container.identity.service.findUser(registered.id))!;
    const estimate = { promptTokens: 600, maxCompletionTokens: 400 }; // 1,000 tokens at 0.1 credits = 100,000 micro
    const perCall = 100_000;
    await container.billing.service.wallet(user);
    await container.billing.service.grant({ userId: user.id, amountMicro: AFFORDABLE * perCall, kind: 'grant', idempotencyKey: 'burst-funds' });

    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    let refused = 0;
    let other = 0;
    const calls = Array.from({ length: TURNS }, (_, index) =>
      container.gateway
        .call({ modality: 'chat', provider: 'openrouter', service: 'chat', user, model: 'openai/gpt-4o-mini', estimate, requestId: `burst-${index}` }, async (adapter, key) => {
          await gate;
          const answer: ChatResult = await adapter.complete({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: `turn ${index}` }], maxTokens: 400 }, key);
          return { result: answer, usage: { model: answer.model, promptTokens: answer.usage.promptTokens, completionTokens: answer.usage.completionTokens, providerCostUsd: answer.usage.costUsd } };
        })
        .then(
          (answer) => ({ ok: true as const, answer }),
          (error: unknown) => {
            if ((error as { code?: string }).code === 'insufficient_credits') refused += 1;
            else other += 1;
            return { ok: false as const, error };
          },
        ),
    );
    const deadline = Date.now() + 200_000;
    while (refused + other < TURNS - AFFORDABLE && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    // Every refusal is in while the 50 admitted calls still hold their reservations.
    expect(refused).toBe(TURNS - AFFORDABLE);
    const holding = (await container.billing.service.wallet(user)).wallet;
    expect(holding).toMatchObject({ balanceMicro: 0, reservedMicro: AFFORDABLE * perCall });
    openGate();
    const outcomes = await Promise.all(calls);
    expect(other).toBe(0);
    const succeeded = outcomes.filter((outcome) => outcome.ok);
    expect(succeeded).toHaveLength(AFFORDABLE);
    expect(openrouter.requestsTo('/chat/completions')).toHaveLength(AFFORDABLE);

    const charged = succeeded.reduce((sum, outcome) => sum + Math.ceil(((outcome.answer.usage.promptTokens + outcome.answer.usage.completionTokens) * perCall) / 1000), 0);
    const after = (await container.billing.service.wallet(user)).wallet;
    expect(after).toMatchObject({ balanceMicro: AFFORDABLE * perCall - charged, reservedMicro: 0 });
    const [sum] = await container.db
      .select({ total: sql<string>`coalesce(sum(${creditLedger.amountMicro}), 0)` })
      .from(creditLedger)
      .where(eq(creditLedger.userId, user.id));
    expect(Number(sum!.total)).toBe(after.balanceMicro);
    expect((await container.billing.service.checkLedger()).mismatches).toEqual([]);
  }, 300_000);
});
