import { and, asc, eq, gt } from 'drizzle-orm';
import { sql } from '../../infra/db/sql.js';
import type { Logger } from 'pino';
import { BoundedMap } from '../../infra/bounded-map.js';
import type { Database, Executor } from '../../infra/db/database.js';
import { conversations, messages } from '../../infra/db/schema.js';
import type { JobQueue } from '../../infra/queue/index.js';
import type { MemoryModel } from './memory-model.js';
import type { MemoryService } from './service.js';

declare module '../../infra/queue/queue.js' {
  interface JobPayloads {
    'memory.summarize': {
      conversationId: string;
      /** Who paid for the turn that triggered it; the job resolves a key for that user again. */
      payerUserId: string;
      provider: string | null;
      chatModel: string;
    };
  }
}

const MAX_MESSAGES = 200;
const SUMMARY_IMPORTANCE = 0.4;
/** An exchange stores the user's message and the answer. */
const EXCHANGE_MESSAGES = 2;
/** Conversations whose distance to the threshold a process remembers (the oldest are forgotten: they are counted again). */
const UNTIL_THRESHOLD_ENTRIES = 50_000;

export interface ConversationSummariesDependencies {
  db: Database;
  queue: JobQueue;
  memory: MemoryService;
  /** The model call, through the gateway (metered, keyed for the payer, a rejected key reported). */
  model: MemoryModel;
  logger: Logger;
  everyMessages: number;
  now?: () => Date;
}

/**
 * Long conversations are summarised periodically: every `everyMessages` messages since the last
 * summary, one model call condenses the segment into a memory of the place (user scope in a DM,
 * group scope in a server channel), so that what was talked about survives beyond short-term
 * history even where no single fact was extracted. Without a usable model a compact excerpt is
 * stored instead. Channels outside any server are not summarised: their participants share no
 * scope that all of them, and only them, can read.
 */
export class ConversationSummaries {
  /**
   * Per conversation, the messages this process still has to see before the count can reach the
   * threshold (from the last check: `everyMessages` − what was counted; a whole segment after it
   * queued a summary). An exchange adds two, so most turns need no statement at all. Other
   * replicas' turns only bring the threshold nearer, so with several replicas a summary can come later (up to once every replica's own count is
   * reached), never earlier or twice.
   */
  private readonly untilThreshold = new BoundedMap<string, number>(UNTIL_THRESHOLD_ENTRIES);

  constructor(private readonly dependencies: ConversationSummariesDependencies) {}

  /** Called after each exchange: queues a summary when the conversation has grown enough. */
  async maybeQueue(exchange: { conversationId: string; userId: string; provider: string | null; chatModel: string }): Promise<void> {
    const { db, queue, everyMessages } = this.dependencies;
    if (everyMessages <= 0) return;
    const remaining = (this.untilThreshold.get(exchange.conversationId) ?? 0) - EXCHANGE_MESSAGES;
    if (remaining > 0) {
      this.untilThreshold.set(exchange.conversationId, remaining);
      return;
    }
    this.untilThreshold.delete(exchange.conversationId);
    // One statement, O(everyMessages): the count stops at the threshold (on the conversation/created_at
    // index), so a conversation whose summaries never ran does not cost more with every turn.
    const row = await this.segment(db, exchange.conversationId, everyMessages);
    if (!row) return;
    if (row.count < everyMessages) {
      this.untilThreshold.set(exchange.conversationId, everyMessages - row.count);
      return;
    }
    // One job per segment: the id names where the segment starts, so it coalesces while pending
    // and a later segment (after the summary moved the marker) gets a new id.
    const segmentStart = row.since ? new Date(row.since).getTime() : 0;
    await queue.enqueue(
      'memory.summarize',
      { conversationId: exchange.conversationId, payerUserId: exchange.userId, provider: exchange.provider, chatModel: exchange.chatModel },
      { jobId: `memory-summary.${exchange.conversationId}.${segmentStart}`, attempts: 3, background: true },
    );
    // The segment's job is queued: the next check comes a whole segment later (by then the summary
    // has moved the marker, or the same job is asked for once more). Checking again on every turn
    // until the job ran cost a statement and a queue round trip per turn of a busy conversation.
    this.untilThreshold.set(exchange.conversationId, everyMessages);
  }

  /** Where the conversation's current segment starts, and its messages counted up to `cap`. */
  private async segment(db: Executor, conversationId: string, cap: number): Promise<{ since: Date | string | null; count: number } | undefined> {
    const result = await db.execute(
      sql`SELECT c.last_summarized_at AS since, (SELECT count(*)::int FROM (SELECT 1 FROM messages x WHERE x.conversation_id = c.id AND x.created_at > coalesce(c.last_summarized_at, '-infinity'::timestamptz) LIMIT ${cap}) segment) AS count FROM conversations c WHERE c.id = ${conversationId}`,
    );
    const [found] = (result as { rows: Array<{ since: Date | string | null; count: number | string }> }).rows;
    return found ? { since: found.since, count: Number(found.count) } : undefined;
  }

  /** The start-up warm-up's check of a turn (src/modules/warm-up.ts), on `db`, the warm-up's transaction. */
  async warmUp(db: Executor, conversationId: string): Promise<void> {
    if (this.dependencies.everyMessages > 0) await this.segment(db, conversationId, this.dependencies.everyMessages);
  }

  async handleJob(payload: { conversationId: string; payerUserId: string; provider: string | null; chatModel: string }): Promise<'success' | 'skipped'> {
    const { db, memory, logger } = this.dependencies;
    const [conversation] = await db.select().from(conversations).where(eq(conversations.id, payload.conversationId)).limit(1);
    if (!conversation) return 'skipped';
    const scope = conversation.userId ? { scope: 'user' as const, userId: conversation.userId, guildId: null } : conversation.guildId ? { scope: 'group' as const, userId: null, guildId: conversation.guildId } : undefined;
    if (!scope) return 'skipped';
    const rows = await db
      .select()
      .from(messages)
      .where(and(eq(messages.conversationId, conversation.id), conversation.lastSummarizedAt ? gt(messages.createdAt, conversation.lastSummarizedAt) : undefined))
      .orderBy(asc(messages.createdAt))
      .limit(MAX_MESSAGES);
    const segment = rows.filter((row) => row.status !== 'blocked' && row.status !== 'failed' && row.role !== 'system');
    if (segment.length < this.dependencies.everyMessages || segment.length === 0) return 'skipped';
    const transcript = segment
      .map((row) => `${row.role === 'assistant' ? 'Character' : (row.speakerName ?? 'User')}: ${row.content.replace(/\s+/g, ' ').slice(0, 600)}`)
      .join('\n');
    const modelSummary = payload.provider ? await this.askModel(payload.provider, payload, conversation.characterId, transcript) : undefined;
    const summary = modelSummary ?? this.excerpt(segment);
    const date = (this.dependencies.now?.() ?? new Date()).toISOString().slice(0, 10);
    await memory.create({
      characterId: conversation.characterId,
      ...scope,
      content: `Conversation summary (up to ${date}): ${summary}`,
      importance: SUMMARY_IMPORTANCE,
      sourceMessageIds: segment.map((row) => row.id),
    });
    await db.update(conversations).set({ lastSummarizedAt: segment.at(-1)!.createdAt }).where(eq(conversations.id, conversation.id));
    logger.debug({ conversationId: conversation.id, messages: segment.length, withModel: modelSummary !== undefined }, 'conversation summarised');
    return 'success';
  }

  private async askModel(provider: string, payload: { payerUserId: string; chatModel: string }, characterId: string, transcript: string): Promise<string | undefined> {
    const result = await this.dependencies.model.complete({
      userId: payload.payerUserId,
      characterId,
      provider,
      model: payload.chatModel,
      messages: [
        {
          role: 'system',
          content:
            'Summarise this conversation segment for the character\'s long-term memory in at most four sentences: the topics, decisions, plans and how the people felt. Third person; name speakers as they are named. Plain text only.',
        },
        { role: 'user', content: transcript },
      ],
      maxTokens: 300,
      purpose: 'conversation summary',
    });
    const text = result?.text.replace(/\s+/g, ' ').trim();
    return text ? text.slice(0, 1200) : undefined;
  }

  /** The no-model fallback: what the users said, clipped. */
  private excerpt(segment: Array<{ role: string; content: string; speakerName: string | null }>): string {
    const said = segment
      .filter((row) => row.role === 'user')
      .map((row) => `${row.speakerName ? `${row.speakerName}: ` : ''}${row.content.replace(/\s+/g, ' ').trim().slice(0, 80)}`)
      .join(' / ');
    return `the users said ${said.length > 600 ? `${said.slice(0, 599)}…` : said}`;
  }
}
