import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobQueue } from '../../src/infra/queue/queue.js';
import { conversations, messages } from '../../src/infra/db/schema.js';
import { ConversationSummaries } from '../../src/modules/memory/conversation-summaries.js';
import type { MemoryModel } from '../../src/modules/memory/memory-model.js';
import { countStatements } from '../helpers/statement-counter.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * Issue 14: every exchange of a speaker in a conversation within one formation window shares one
 * job, which runs when the window has closed. A process that queued the window's job does not ask
 * the queue again for the next exchanges of that window (on Redis each ask was a script, a stream
 * entry and a round trip per turn); another speaker, another conversation or the next window does.
 * Likewise a conversation whose summary is queued is not counted (nor its summary queued) again on
 * every turn until the job has run, only once a segment later.
 */
describe.each(backends())('memory formation queueing (%s)', (backend) => {
  let server: TestServer;
  let asked: string[];
  let delays: number[];

  beforeAll(async () => {
    server = await startTestServer(backend, { MEMORY_FORMATION_DELAY_MS: '600000' });
    const queue = server.container.queue;
    const enqueue = queue.enqueue.bind(queue);
    asked = [];
    delays = [];
    queue.enqueue = async (...args: Parameters<typeof queue.enqueue>) => {
      if (args[0] === 'memory.form') {
        asked.push(args[2]?.jobId ?? '');
        delays.push(args[2]?.delayMs ?? 0);
      }
      return enqueue(...args);
    };
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  const exchange = (conversationId: string, userId: string) =>
    server.container.memory.service.rememberExchange({
      characterId: randomUUID(),
      userId,
      guildId: undefined,
      channelId: 'dm',
      conversationId,
      userMessageId: randomUUID(),
      assistantMessageId: randomUUID(),
      provider: 'openrouter',
      chatModel: 'openai/gpt-4o-mini',
    });

  it('asks the queue once per conversation, speaker and window', async () => {
    const conversation = randomUUID();
    const [alice, bob] = [randomUUID(), randomUUID()];
    const before = (await server.container.queue.stats()).delayed;
    await exchange(conversation, alice);
    await exchange(conversation, alice);
    await exchange(conversation, alice);
    await exchange(conversation, bob);
    await exchange(randomUUID(), alice);
    expect(asked).toHaveLength(3);
    expect(new Set(asked).size).toBe(3);
    expect(asked.every((jobId) => jobId.startsWith('memory-form.'))).toBe(true);
    // One delayed job each: the conversation's two speakers and the other conversation.
    expect((await server.container.queue.stats()).delayed - before).toBe(3);
    // Each waits at least the configured delay whatever the clock (windows are aligned to it), at most two.
    for (const delay of delays) {
      expect(delay).toBeGreaterThanOrEqual(600_000);
      expect(delay).toBeLessThanOrEqual(1_200_050);
    }
  });

  it('counts a conversation whose summary is queued again only a segment later, not on every turn', async () => {
    const { db, characters, identity, memory } = server.container;
    const character = await characters.service.create({ name: `Summary Keeper ${randomUUID().slice(0, 8)}` }, { userId: null });
    const user = (await identity.service.registerUser(`summaries-${randomUUID()}`, 'sam')).user;
    const [conversation] = await db.insert(conversations).values({ characterId: character.id, userId: user.id, placeKey: `dm:${user.id}:${randomUUID()}` }).returning();
    let clock = Date.now() - 3_600_000;
    const talk = async () => {
      for (const role of ['user', 'assistant'] as const) {
        clock += 1000;
        await db.insert(messages).values({ conversationId: conversation!.id, role, speakerUserId: role === 'user' ? user.id : null, content: `${role} says hello`, createdAt: new Date(clock) });
      }
    };
    const queued: string[] = [];
    const queue = { enqueue: async (_name: string, _payload: unknown, options?: { jobId?: string }) => void queued.push(options?.jobId ?? '') } as unknown as JobQueue;
    // Nothing runs the queued job here: the summary stays pending, as on a busy server.
    const summaries = new ConversationSummaries({ db, queue, memory: memory.service, model: {} as MemoryModel, logger: { warn: () => undefined } as unknown as Logger, everyMessages: 4 });
    const exchange = { conversationId: conversation!.id, userId: user.id, provider: null, chatModel: 'openai/gpt-4o-mini' };
    await talk();
    await talk();
    await summaries.maybeQueue(exchange);
    expect(queued).toHaveLength(1);
    const counter = countStatements(db);
    try {
      // Four more exchanges (eight messages, two segments): asked again once a segment later, not four times.
      for (let turn = 0; turn < 4; turn += 1) {
        await talk();
        await summaries.maybeQueue(exchange);
      }
    } finally {
      counter.restore();
    }
    expect(queued).toHaveLength(3);
    expect(new Set(queued).size).toBe(1);
    expect(counter.statements.filter((statement) => statement.includes('last_summarized_at'))).toHaveLength(2);
  });
});
