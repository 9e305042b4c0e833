import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { creditReservations } from '../../src/modules/billing/tables.js';
import { startOpenRouterFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

const MAX_TOKENS = 300;
/** The free plan: 0.1 credits per 1,000 tokens = 100 micro-credits per token. */
const MICRO_PER_TOKEN = 100;
const MEMORY_TOKEN_BUDGET = 400;

/**
 * Issue 14: the turn's credit reservation does not wait for memory recall. While recall is held
 * open (the memory service's recall gated by the test), the reservation is already in the
 * database; it holds the prompt estimate with the memory section at its budget, and the turn,
 * once recall answers, is charged for the prompt it sent (the provider's count) — never the budget.
 */
describe.each(backends())('reservation alongside recall (%s)', (backend) => {
  let server: TestServer;
  let openrouter: OpenAiCompatibleFake;

  beforeAll(async () => {
    openrouter = await startOpenRouterFake({ validKeys: ['platform-key'], reply: 'Overlapped.' });
    server = await startTestServer(backend, {
      OPENROUTER_BASE_URL: openrouter.url,
      OPENROUTER_API_KEY: 'platform-key',
      MEMORY_FORMATION_DELAY_MS: '600000',
      MEMORY_TOKEN_BUDGET: String(MEMORY_TOKEN_BUDGET),
    });
    expect((await server.request('POST', '/v1/characters', { body: { name: 'Overlap', slug: 'overlap' } })).status).toBe(201);
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    await openrouter?.close();
  });

  it('holds credits while recall still runs, and charges the prompt sent, not the memory budget', async () => {
    const memory = server.container.memory.service;
    const original = memory.recall.bind(memory);
    let recallStarted = false;
    let openRecall!: () => void;
    const recallGate = new Promise<void>((resolve) => (openRecall = resolve));
    memory.recall = async (...args: Parameters<typeof memory.recall>) => {
      recallStarted = true;
      await recallGate;
      return original(...args);
    };
    try {
      const answering = server.request('POST', '/v1/chat/completions', {
        key: server.internalKey,
        headers: { 'x-user-id': 'overlap-user' },
        body: { model: 'character/overlap', messages: [{ role: 'user', content: 'Do you remember me?' }], max_tokens: MAX_TOKENS },
      });
      await expect.poll(() => recallStarted).toBe(true);
      const userId = (await server.container.identity.service.findUserByReference('overlap-user'))!.id;
      // Recall is still held open: the reservation is there already.
      await expect.poll(async () => (await server.container.db.select().from(creditReservations).where(eq(creditReservations.userId, userId))).map((row) => row.status)).toEqual(['held']);
      const [held] = await server.container.db.select().from(creditReservations).where(eq(creditReservations.userId, userId));
      // The hold counts the memory section at its budget (an upper bound) and the answer's cap.
      expect(held!.amountMicro).toBeGreaterThanOrEqual((MEMORY_TOKEN_BUDGET + MAX_TOKENS) * MICRO_PER_TOKEN);
      openRecall();
      const answered = await answering;
      expect(answered.status, answered.text).toBe(200);
      const body = answered.body as { usage: { prompt_tokens: number; completion_tokens: number } };
      const [settled] = await server.container.db.select().from(creditReservations).where(eq(creditReservations.userId, userId));
      expect(settled!.status).toBe('settled');
      // Charged what the provider reported for the prompt and the answer, well below the hold.
      expect(settled!.chargedMicro).toBe((body.usage.prompt_tokens + body.usage.completion_tokens) * MICRO_PER_TOKEN);
      expect(settled!.chargedMicro).toBeLessThan(held!.amountMicro - MEMORY_TOKEN_BUDGET * MICRO_PER_TOKEN);
    } finally {
      openRecall();
      memory.recall = original;
    }
  });
});
