import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conversations, messages } from '../../src/infra/db/schema.js';
import type { EnqueueOptions, JobQueue } from '../../src/infra/queue/index.js';
import { createLogger } from '../../src/infra/logging/logger.js';
import { ConversationSummaries } from '../../src/modules/memory/conversation-summaries.js';
import type { MemoryModel } from '../../src/modules/memory/memory-model.js';
import { countStatements } from '../helpers/statement-counter.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * The per-turn check whether a conversation needs a summary: one statement, which counts no
 * further than the threshold, and queues a summary exactly when enough messages are new.
 */
describe.each(backends())('summary check per turn (%s)', (backend) => {
  let server: TestServer;
  let characterId: string;
  let userId: string;
  const EVERY = 5;

  beforeAll(async () => {
    server = await startTestServer(backend);
    characterId = (await server.container.characters.service.create({ name: 'Summarised' }, { userId: null })).id;
    userId = (await server.container.identity.service.registerUser('summary-check-user', 'user')).user.id;
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  function summariesWithQueue(): { summaries: ConversationSummaries; queued: Array<{ name: string; options: EnqueueOptions | undefined }> } {
    const queued: Array<{ name: string; options: EnqueueOptions | undefined }> = [];
    const queue = {
      enqueue: async (name: string, _payload: unknown, options?: EnqueueOptions) => {
        queued.push({ name, options });
      },
    } as unknown as JobQueue;
    const summaries = new ConversationSummaries({
      db: server.container.db,
      queue,
      memory: server.container.memory.service,
      model: {} as MemoryModel,
      logger: createLogger('silent'),
      everyMessages: EVERY,
    });
    return { summaries, queued };
  }

  async function addMessages(conversationId: string, count: number, from: Date): Promise<void> {
    await server.container.db.insert(messages).values(
      Array.from({ length: count }, (_, index) => ({
        conversationId,
        role: index % 2 === 0 ? ('user' as const) : ('assistant' as const),
        content: `message ${index}`,
        createdAt: new Date(from.getTime() + index * 1000),
      })),
    );
  }

  it('queues at the threshold, not before, in one statement each time', async () => {
    const [conversation] = await server.container.db.insert(conversations).values({ characterId, userId, placeKey: `dm:${userId}:check` }).returning();
    const { summaries, queued } = summariesWithQueue();
    const exchange = { conversationId: conversation!.id, userId, provider: null, chatModel: 'm' };
    const start = new Date(Date.now() - 3_600_000);
    await addMessages(conversation!.id, EVERY - 1, start);
    const counter = countStatements(server.container.db);
    try {
      await summaries.maybeQueue(exchange);
    } finally {
      counter.restore();
    }
    expect(counter.statements).toHaveLength(1);
    expect(queued).toEqual([]);

    await addMessages(conversation!.id, 1, new Date(start.getTime() + 100_000));
    await summaries.maybeQueue(exchange);
    expect(queued).toHaveLength(1);
    expect(queued[0]).toMatchObject({ name: 'memory.summarize', options: { jobId: `memory-summary.${conversation!.id}.0` } });

    // A summary moved the marker: only what came after it counts, and the next segment gets its own id.
    // (The process that queued a summary counts that conversation again only a segment of its own
    // exchanges later; the messages here arrive in bulk, as another replica's would, so a second
    // process — a fresh one — does the counting.)
    const { summaries: another, queued: queuedByAnother } = summariesWithQueue();
    const marker = new Date(start.getTime() + 200_000);
    await server.container.db.update(conversations).set({ lastSummarizedAt: marker }).where(eq(conversations.id, conversation!.id));
    await addMessages(conversation!.id, EVERY - 1, new Date(marker.getTime() + 1000));
    await another.maybeQueue(exchange);
    expect(queuedByAnother).toEqual([]);
    await addMessages(conversation!.id, 3, new Date(marker.getTime() + 100_000));
    await another.maybeQueue(exchange);
    expect(queuedByAnother).toHaveLength(1);
    expect(queuedByAnother[0]?.options?.jobId).toBe(`memory-summary.${conversation!.id}.${marker.getTime()}`);
    expect(queued).toHaveLength(1);
  });

  it('after a check, the exchanges that cannot reach the threshold yet cost no statement; the summary still comes when they do', async () => {
    const every = 10;
    const [conversation] = await server.container.db.insert(conversations).values({ characterId, userId, placeKey: `dm:${userId}:skip` }).returning();
    const queued: string[] = [];
    const summaries = new ConversationSummaries({
      db: server.container.db,
      queue: { enqueue: async (name: string) => void queued.push(name) } as unknown as JobQueue,
      memory: server.container.memory.service,
      model: {} as MemoryModel,
      logger: createLogger('silent'),
      everyMessages: every,
    });
    const exchange = { conversationId: conversation!.id, userId, provider: null, chatModel: 'm' };
    const start = Date.now() - 3_600_000;
    const statementsPerExchange: number[] = [];
    // Five exchanges of two messages each reach the threshold of ten.
    for (let turn = 0; turn < 5; turn += 1) {
      await addMessages(conversation!.id, 2, new Date(start + turn * 10_000));
      const counter = countStatements(server.container.db);
      try {
        await summaries.maybeQueue(exchange);
      } finally {
        counter.restore();
      }
      statementsPerExchange.push(counter.statements.length);
    }
    // The first check counts 2 (8 to go); exchanges 2–4 bring it to 8 without asking; the fifth counts 10 and queues.
    expect(statementsPerExchange).toEqual([1, 0, 0, 0, 1]);
    expect(queued).toEqual(['memory.summarize']);

    // Messages stored by another replica only bring the threshold nearer: the summary then comes at this process's next check.
    const [shared] = await server.container.db.insert(conversations).values({ characterId, userId, placeKey: `dm:${userId}:shared` }).returning();
    const other = { ...exchange, conversationId: shared!.id };
    queued.length = 0;
    await addMessages(shared!.id, 2, new Date(start));
    await summaries.maybeQueue(other);
    await addMessages(shared!.id, 20, new Date(start + 10_000));
    for (let turn = 0; turn < 4; turn += 1) await summaries.maybeQueue(other);
    expect(queued).toEqual(['memory.summarize']);
  });

  it('a long unsummarised conversation costs the same bounded statement', async () => {
    const [conversation] = await server.container.db.insert(conversations).values({ characterId, userId, placeKey: `dm:${userId}:long` }).returning();
    await addMessages(conversation!.id, 400, new Date(Date.now() - 3_600_000));
    const { summaries, queued } = summariesWithQueue();
    const counter = countStatements(server.container.db);
    try {
      await summaries.maybeQueue({ conversationId: conversation!.id, userId, provider: null, chatModel: 'm' });
    } finally {
      counter.restore();
    }
    expect(counter.statements).toHaveLength(1);
    // The count stops at the threshold instead of reading all 400 messages.
    expect(counter.statements[0]).toMatch(/LIMIT \$\d+\) segment/);
    expect(queued).toHaveLength(1);
  });

  it('an unknown conversation queues nothing', async () => {
    const { summaries, queued } = summariesWithQueue();
    await summaries.maybeQueue({ conversationId: '00000000-0000-4000-8000-000000000000', userId, provider: null, chatModel: 'm' });
    expect(queued).toEqual([]);
  });
});
