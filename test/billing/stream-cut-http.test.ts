import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { creditLedger, messages, usageEvents } from '../../src/infra/db/schema.js';
import { countTokens } from '../../src/modules/characters/token-counter.js';
import { startOpenRouterFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

const LONG_REPLY = Array.from({ length: 60 }, (_, index) => `word${index}`).join(' ');
const MAX_TOKENS = 500;
/** The free plan: 0.1 credits per 1,000 tokens = 100 micro-credits per token. */
const MICRO_PER_TOKEN = 100;

/**
 * Done-when: a streamed turn cut mid-way settles only what was delivered — over HTTP, through the
 * chat route, the real chat adapter and the OpenRouter fake whose stream dies after a few events.
 * The turn reserved (its prompt estimate with the memory budget + max_tokens) × price; it is charged
 * (the prompt it sent + the tokens of the partial answer it stored) × price, and the rest goes back.
 */
describe.each(backends())('a streamed chat turn cut mid-way over HTTP (%s)', (backend) => {
  let server: TestServer;
  let openrouter: OpenAiCompatibleFake;

  beforeAll(async () => {
    openrouter = await startOpenRouterFake({ validKeys: ['platform-key'], reply: LONG_REPLY });
    server = await startTestServer(backend, { OPENROUTER_BASE_URL: openrouter.url, OPENROUTER_API_KEY: 'platform-key', RATE_LIMITS_ENABLED: 'true', UPSTREAM_MAX_RETRIES: '0' });
    expect((await server.request('POST', '/v1/characters', { body: { name: 'Cutter', slug: 'cutter' } })).status).toBe(201);
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    await openrouter?.close();
  });

  it('charges the prompt and the delivered part only, and gives the rest of the hold back', async () => {
    openrouter.faults.cutStream(8, { route: '/chat/completions', times: 1 });
    const response = await server.request('POST', '/v1/chat/completions', {
      key: server.internalKey,
      headers: { 'x-user-id': 'cut-user' },
      body: { model: 'character/cutter', messages: [{ role: 'user', content: 'Tell me a long story.' }], stream: true, max_tokens: MAX_TOKENS },
    });
    expect(response.status).toBe(200);
    const delivered = response.text
      .split('\n')
      .filter((line) => line.startsWith('data: {'))
      .map((line) => JSON.parse(line.slice(6)) as { choices?: Array<{ delta?: { content?: string } }> })
      .map((chunk) => chunk.choices?.[0]?.delta?.content ?? '')
      .join('');
    expect(delivered.length).toBeGreaterThan(0);
    expect(delivered.length).toBeLessThan(LONG_REPLY.length);

    const user = (await server.container.identity.service.findUserByReference('cut-user'))!;
    const [partial] = await server.container.db.select().from(messages).where(and(eq(messages.role, 'assistant'), eq(messages.status, 'partial')));
    expect(partial?.content).toBe(delivered);
    const entries = await server.container.db.select().from(creditLedger).where(eq(creditLedger.userId, user.id)).orderBy(creditLedger.id);
    expect(entries.map((entry) => entry.kind)).toEqual(['daily_refresh', 'reserve', 'settle']);
    const reserved = -entries[1]!.amountMicro;
    // The cut stream reported no usage: the turn meters its own estimate of the prompt it sent, and
    // the tokens of what it delivered (recorded on the usage row).
    const [usage] = await server.container.db.select().from(usageEvents).where(eq(usageEvents.userId, user.id));
    const promptTokens = usage!.promptTokens;
    expect(Number.isInteger(promptTokens) && promptTokens > 0).toBe(true);
    expect(usage!.completionTokens).toBe(countTokens(delivered));
    // The reservation held at least that prompt and the whole max_tokens.
    expect(reserved).toBeGreaterThanOrEqual((promptTokens + MAX_TOKENS) * MICRO_PER_TOKEN);
    const charged = reserved - entries[2]!.amountMicro;
    expect(charged).toBe((promptTokens + countTokens(delivered)) * MICRO_PER_TOKEN);
    expect(charged).toBeLessThan((promptTokens + countTokens(LONG_REPLY)) * MICRO_PER_TOKEN);
    expect(usage!.creditsMicro).toBe(charged);
    expect((await server.container.billing.service.wallet(user)).wallet).toMatchObject({ balanceMicro: 10_000_000 - charged, reservedMicro: 0 });
    expect((await server.container.billing.service.checkLedger()).mismatches).toEqual([]);
  });
});
