import { and, desc, eq, exists, gt, inArray, isNotNull, isNull, ne, or, type SQL } from 'drizzle-orm';
import { sql } from '../../infra/db/sql.js';
import type { Executor } from '../../infra/db/database.js';
import { conversations, messages } from '../../infra/db/schema.js';

export type ConversationRow = typeof conversations.$inferSelect;
export type MessageRow = typeof messages.$inferSelect;
export type MessageInsert = typeof messages.$inferInsert;

export interface Place {
  userId: string;
  guildId: string | undefined;
  channelId: string | undefined;
}

/**
 * One conversation per character and place: `dm:<userId>` without a channel, otherwise
 * `channel:<guildId or ->:<channelId>` shared by every member of that channel.
 */
export function placeKey(place: Place): string {
  if (!place.channelId) return `dm:${place.userId}`;
  return `channel:${place.guildId ?? '-'}:${place.channelId}`;
}

/** Postgres error code of a foreign-key violation (drizzle may wrap the driver's error). */
export function isForeignKeyViolation(error: unknown, constraint?: string): boolean {
  for (let current = error as { code?: unknown; constraint?: unknown; cause?: unknown } | undefined, depth = 0; current && depth < 4; current = current.cause as typeof current, depth += 1) {
    if (current.code === '23503') return constraint === undefined || current.constraint === constraint;
  }
  return false;
}

/** The foreign key of a message to its conversation (its violation: the conversation is gone). */
export const MESSAGE_CONVERSATION_FOREIGN_KEY = 'messages_conversation_id_conversations_id_fk';

export async function findOrCreateConversation(db: Executor, characterId: string, place: Place): Promise<ConversationRow> {
  const key = placeKey(place);
  const direct = !place.channelId;
  // Almost every turn continues an existing conversation: one read, and an insert only the first time.
  const [found] = await db
    .select()
    .from(conversations)
    .where(and(eq(conversations.characterId, characterId), eq(conversations.placeKey, key)))
    .limit(1);
  if (found) return found;
  const inserted = await db
    .insert(conversations)
    .values({
      characterId,
      placeKey: key,
      userId: direct ? place.userId : null,
      guildId: direct ? null : (place.guildId ?? null),
      channelId: direct ? null : (place.channelId ?? null),
    })
    .onConflictDoNothing({ target: [conversations.characterId, conversations.placeKey] })
    .returning();
  if (inserted[0]) return inserted[0];
  const [existing] = await db
    .select()
    .from(conversations)
    .where(and(eq(conversations.characterId, characterId), eq(conversations.placeKey, key)))
    .limit(1);
  return existing!;
}

export async function findConversation(db: Executor, conversationId: string): Promise<ConversationRow | undefined> {
  const [row] = await db.select().from(conversations).where(eq(conversations.id, conversationId)).limit(1);
  return row;
}

/** Whether the user took part: their own DM, or a channel conversation they have spoken in. */
export async function isParticipant(db: Executor, conversation: ConversationRow, userId: string): Promise<boolean> {
  if (conversation.userId !== null) return conversation.userId === userId;
  const [row] = await db
    .select({ id: messages.id })
    .from(messages)
    .where(and(eq(messages.conversationId, conversation.id), eq(messages.speakerUserId, userId)))
    .limit(1);
  return row !== undefined;
}

export interface ConversationSummary extends ConversationRow {
  messageCount: number;
  lastMessageAt: Date | null;
}

/** The user's conversations (DMs and channels they spoke in), most recently updated first. */
export async function listConversations(
  db: Executor,
  userId: string | undefined,
  options: { limit: number; afterConversationId?: string | undefined },
): Promise<ConversationSummary[]> {
  const spokeIn = exists(
    db
      .select({ one: sql`1` })
      .from(messages)
      .where(and(eq(messages.conversationId, conversations.id), eq(messages.speakerUserId, userId ?? '00000000-0000-0000-0000-000000000000'))),
  );
  const ownership = userId === undefined ? undefined : or(eq(conversations.userId, userId), and(isNull(conversations.userId), spokeIn));
  const rows = await db
    .select({
      conversation: conversations,
      messageCount: sql<number>`(select count(*)::int from messages m where m.conversation_id = ${conversations.id})`,
      lastMessageAt: sql<Date | string | null>`(select max(m.created_at) from messages m where m.conversation_id = ${conversations.id})`,
    })
    .from(conversations)
    .where(
      and(
        ownership,
        options.afterConversationId
          ? sql`(${conversations.updatedAt}, ${conversations.id}) < (select c.updated_at, c.id from conversations c where c.id = ${options.afterConversationId})`
          : undefined,
      ),
    )
    .orderBy(desc(conversations.updatedAt), desc(conversations.id))
    .limit(options.limit);
  return rows.map((row) => ({
    ...row.conversation,
    messageCount: Number(row.messageCount),
    lastMessageAt: row.lastMessageAt === null ? null : new Date(row.lastMessageAt),
  }));
}

/** Stores a message; `touch` moves the conversation up in listings. */
export async function insertMessage(db: Executor, values: MessageInsert, options: { touch: boolean } = { touch: true }): Promise<MessageRow> {
  const [row] = await db.insert(messages).values(values).returning();
  if (options.touch) await touchConversation(db, values.conversationId);
  return row!;
}

/**
 * The turn's write as ONE statement: the conversation touched, its messages inserted and the other
 * modules' CTEs (`parts`: the charge and the usage row, see StatementParts; none when the caller
 * settles in its own transaction) — atomic without BEGIN and COMMIT, one round trip. A conversation
 * gone from the database fails the messages' foreign key and, with it, the whole statement: nothing
 * is charged.
 */
export async function writeTurn(
  db: Executor,
  conversationId: string,
  values: MessageInsert[],
  parts: { ctes: SQL[]; creditsMicro: SQL } = { ctes: [], creditsMicro: sql`0` },
): Promise<{ stored: HistoryRow[]; creditsMicro: number }> {
  const result = await db.execute(writeTurnStatement(conversationId, values, parts));
  const [row] = (result as { rows: Array<{ credits_micro: string | number | null }> }).rows;
  // The rows as written (every column the history keeps was set here, none by the database).
  const stored = values.map((value) => ({
    id: value.id!,
    role: value.role,
    content: value.content,
    speakerUserId: value.speakerUserId ?? null,
    speakerName: value.speakerName ?? null,
    tokenCount: value.tokenCount ?? 0,
    status: value.status ?? 'complete',
    createdAt: value.createdAt!,
  }));
  return { stored, creditsMicro: Number(row?.credits_micro ?? 0) };
}

/** The statement of writeTurn (exported so tests can compare how it is built). */
export function writeTurnStatement(conversationId: string, values: MessageInsert[], parts: { ctes: SQL[]; creditsMicro: SQL } = { ctes: [], creditsMicro: sql`0` }): SQL {
  // Plain SQL rather than Drizzle's builders: built on every turn, where the builders cost ≈ 6× more.
  const rows = values.map(
    (value) =>
      sql`(${value.id}::uuid, ${conversationId}::uuid, ${value.role}::text, ${value.speakerUserId ?? null}::uuid, ${value.speakerName ?? null}::text, ${value.content}::text,
        ${value.tokenCount ?? 0}::int, ${value.status ?? 'complete'}::text, ${JSON.stringify(value.metadata ?? {})}::jsonb, ${(value.createdAt ?? new Date()).toISOString()}::timestamptz)`,
  );
  const ctes = values.length > 0
    ? [
        sql`touched AS (UPDATE conversations SET updated_at = ${new Date().toISOString()}::timestamptz WHERE id = ${conversationId}::uuid RETURNING id)`,
        sql`inserted AS (
          INSERT INTO messages (id, conversation_id, role, speaker_user_id, speaker_name, content, token_count, status, metadata, created_at)
          VALUES ${sql.join(rows, sql`, `)} RETURNING id
        )`,
        ...parts.ctes,
      ]
    : parts.ctes;
  return sql`WITH ${sql.join(ctes, sql`, `)} SELECT ${parts.creditsMicro} AS credits_micro`;
}

async function touchConversation(db: Executor, conversationId: string): Promise<void> {
  await db.update(conversations).set({ updatedAt: new Date() }).where(eq(conversations.id, conversationId));
}

export type HistoryRow = Pick<MessageRow, 'id' | 'role' | 'content' | 'speakerUserId' | 'speakerName' | 'tokenCount' | 'status' | 'createdAt'>;

const HISTORY_COLUMNS = {
  id: messages.id,
  role: messages.role,
  content: messages.content,
  speakerUserId: messages.speakerUserId,
  speakerName: messages.speakerName,
  tokenCount: messages.tokenCount,
  status: messages.status,
  createdAt: messages.createdAt,
};

/** Messages after the last context reset, newest first, at most `limit` (the prompt trims further by tokens). */
export async function recentMessages(db: Executor, conversation: ConversationRow, limit: number): Promise<HistoryRow[]> {
  return db
    .select(HISTORY_COLUMNS)
    .from(messages)
    .where(
      and(
        eq(messages.conversationId, conversation.id),
        // A turn that got no answer (its user message `failed`) is not part of the history.
        ne(messages.status, 'failed'),
        conversation.contextResetAt ? gt(messages.createdAt, conversation.contextResetAt) : undefined,
      ),
    )
    .orderBy(desc(messages.createdAt), desc(messages.id))
    .limit(limit);
}

/**
 * A page of messages, newest first, after the cursor message in that order. The cursor is
 * compared in SQL (microsecond timestamps, id as tie-breaker), not through a JavaScript Date.
 */
export async function listMessages(
  db: Executor,
  conversationId: string,
  options: { limit: number; afterMessageId?: string | undefined; visibleToUserId?: string | undefined },
): Promise<MessageRow[]> {
  const cursor = options.afterMessageId
    ? sql`(${messages.createdAt}, ${messages.id}) < (select c.created_at, c.id from messages c where c.id = ${options.afterMessageId})`
    : undefined;
  // A channel member sees what was said from their first message in it on (not what came before they joined).
  const visible = options.visibleToUserId
    ? sql`${messages.createdAt} >= (select min(f.created_at) from messages f where f.conversation_id = ${conversationId} and f.speaker_user_id = ${options.visibleToUserId})`
    : undefined;
  return db
    .select()
    .from(messages)
    .where(and(eq(messages.conversationId, conversationId), cursor, visible))
    .orderBy(desc(messages.createdAt), desc(messages.id))
    .limit(options.limit);
}

export async function countMessages(db: Executor, conversationId: string): Promise<{ total: number; sinceReset: number }> {
  const conversation = await findConversation(db, conversationId);
  const [row] = await db
    .select({
      total: sql<number>`count(*)::int`,
      sinceReset: conversation?.contextResetAt
        ? sql<number>`count(*) filter (where ${messages.createdAt} > ${conversation.contextResetAt.toISOString()}::timestamptz)::int`
        : sql<number>`count(*)::int`,
    })
    .from(messages)
    .where(eq(messages.conversationId, conversationId));
  return { total: Number(row?.total ?? 0), sinceReset: Number(row?.sinceReset ?? 0) };
}

export async function resetContext(db: Executor, conversationId: string, at: Date): Promise<ConversationRow | undefined> {
  const [row] = await db.update(conversations).set({ contextResetAt: at, updatedAt: at }).where(eq(conversations.id, conversationId)).returning();
  return row;
}

/** `!voice`: whether answers in this conversation are spoken too. */
export async function setVoiceReplies(db: Executor, conversationId: string, on: boolean): Promise<void> {
  await db.update(conversations).set({ voiceReplies: on }).where(eq(conversations.id, conversationId));
}

export async function deleteConversation(db: Executor, conversationId: string): Promise<boolean> {
  const rows = await db.delete(conversations).where(eq(conversations.id, conversationId)).returning({ id: conversations.id });
  return rows.length > 0;
}

/** A user's part of the conversations: their DMs with every message, and what they wrote in shared channels. */
export async function userConversations(db: Executor, userId: string): Promise<{ conversations: ConversationRow[]; messages: MessageRow[] }> {
  const direct = await db.select().from(conversations).where(eq(conversations.userId, userId));
  const directMessages = direct.length > 0 ? await db.select().from(messages).where(inArray(messages.conversationId, direct.map((conversation) => conversation.id))) : [];
  // In shared channels only what the user wrote is theirs.
  const channelMessages = await db
    .select()
    .from(messages)
    .innerJoin(conversations, eq(conversations.id, messages.conversationId))
    .where(and(eq(messages.speakerUserId, userId), isNotNull(conversations.guildId)));
  return { conversations: direct, messages: [...directMessages, ...channelMessages.map((row) => row.messages)] };
}

/** Everything the user said anywhere (their DMs themselves go with the user row's cascade). */
export async function deleteUserMessages(db: Executor, userId: string): Promise<void> {
  await db.delete(messages).where(eq(messages.speakerUserId, userId));
}
