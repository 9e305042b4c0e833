import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { creditLedger, usageEvents } from '../../src/infra/db/schema.js';
import { startOpenRouterFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

type ChatBody = { messages?: Array<{ role: string; content?: unknown }> };
/** The instructions of a call (formation and summaries put theirs in the messages). */
const systemText = (body: unknown) => JSON.stringify((body as ChatBody).messages ?? []);
const FORMATION = 'Answer with JSON only';
const SUMMARY = 'Summarise this conversation segment';

/**
 * Memory formation and conversation summaries are background provider calls the gateway meters
 * under `memory`; they need the plan's `long_term_memory` feature. Over HTTP: a user on a plan
 * without it chats (platform-paid) and no formation or summary call reaches the vendor, nothing is
 * charged or recorded under memory; a user on a plan with it gets both, paid.
 */
describe.each(backends())('memory work needs the plan\'s long_term_memory feature (%s)', (backend) => {
  let server: TestServer;
  let fake: OpenAiCompatibleFake;

  beforeAll(async () => {
    fake = await startOpenRouterFake({
      validKeys: ['platform-key'],
      reply: (body: ChatBody) => {
        const system = systemText(body);
        if (system.includes(SUMMARY)) return 'They talked about tea and trains.';
        if (system.includes(FORMATION)) return '{"operations":[{"op":"add","scope":"user","content":"The user likes green tea.","importance":0.6}]}';
        return 'Noted!';
      },
    });
    server = await startTestServer(backend, {
      OPENROUTER_BASE_URL: fake.url,
      OPENROUTER_API_KEY: 'platform-key',
      MEMORY_FORMATION_DELAY_MS: '0',
      MEMORY_SUMMARY_EVERY_MESSAGES: '4',
      RUN_WORKERS_IN_PROCESS: 'true',
    });
    expect((await server.request('POST', '/v1/characters', { body: { name: 'Keeper', slug: 'keeper' } })).status).toBe(201);
    const plan = await server.request('POST', '/v1/admin/plans', {
      body: { id: 'forgetful', name: 'Forgetful', daily_credits: 10, requests_per_minute: 100, credits_per_1k_tokens: 0.1, features: { long_term_memory: false } },
    });
    expect(plan.status).toBe(201);
    expect(plan.body.features).toMatchObject({ long_term_memory: false, platform_keys: true });
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    await fake?.close();
  });

  const say = (userId: string, channel: string, content: string) =>
    server.request('POST', '/v1/chat/completions', {
      key: server.internalKey,
      headers: { 'x-user-id': userId, 'x-guild-id': `guild-${userId}`, 'x-channel-id': channel },
      body: { model: 'character/keeper', messages: [{ role: 'user', content }] },
    });
  /** Three turns (six messages) of one user, then every job they queued has run. */
  const converse = async (userId: string) => {
    for (const content of ['I like green tea.', 'Trains are my other hobby.', 'Tea on a train is the best.']) {
      const answer = await say(userId, 'tea-room', content);
      expect(answer.status).toBe(200);
      await server.container.queue.whenIdle(30_000);
    }
  };
  const memoryCalls = () => fake.requestsTo('/chat/completions').filter((request) => systemText(request.body).includes(FORMATION) || systemText(request.body).includes(SUMMARY));
  const memoryUsage = async (userId: string) => {
    const user = await server.container.identity.service.findUserByReference(userId);
    return server.container.db.select().from(usageEvents).where(and(eq(usageEvents.userId, user!.id), eq(usageEvents.service, 'memory')));
  };

  it('a plan without long_term_memory gets no paid formation or summary call', async () => {
    const { user } = await server.container.identity.service.registerUser('forgetful-user', 'Fay');
    await server.container.identity.service.updateUser(user.id, { plan: 'forgetful' });
    const before = memoryCalls().length;
    await converse('forgetful-user');
    expect(memoryCalls().length - before).toBe(0);
    expect(await memoryUsage('forgetful-user')).toEqual([]);
    // Only the three chat turns were charged.
    const entries = await server.container.db.select().from(creditLedger).where(eq(creditLedger.userId, user.id));
    expect(entries.filter((entry) => entry.kind === 'reserve')).toHaveLength(3);
  });

  it('a plan with it (free) gets formation and summaries, metered under memory', async () => {
    const before = memoryCalls().length;
    await converse('remembering-user');
    const calls = memoryCalls().slice(before);
    expect(calls.some((request) => systemText(request.body).includes(FORMATION))).toBe(true);
    expect(calls.some((request) => systemText(request.body).includes(SUMMARY))).toBe(true);
    const usage = await memoryUsage('remembering-user');
    expect(usage).toHaveLength(calls.length);
    expect(usage.every((row) => row.paidBy === 'platform' && row.creditsMicro > 0)).toBe(true);
  });
});
