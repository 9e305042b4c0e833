import { and, asc, eq, gt } from 'drizzle-orm';
import { sql } from '../../infra/db/sql.js';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Cache } from '../../infra/cache/index.js';
import type { Database } from '../../infra/db/database.js';
import { conversations, messages } from '../../infra/db/schema.js';
import { acquireFormationLease, releaseFormationLease } from './formation-lock.js';
import type { MemoryModel } from './memory-model.js';
import type { MemoryFormer, MemoryService } from './service.js';
import type { MemoryScope } from './store.js';

/**
 * Memory formation. ONE model call both extracts durable facts and reconciles them with what is
 * already remembered: the nearest existing memories of the same scopes are listed in the prompt
 * with short ids, and the model answers add / update / delete operations. One call instead of
 * extract-then-compare halves cost and latency; the candidates are few (the nearest ten), so the
 * prompt stays small. Without a usable model (no key, a failing call, unreadable JSON) a compact
 * summary of the exchange is stored instead, so nothing said is lost.
 *
 * Formation never writes core memories: those reach every user's prompt, and a conversation
 * with one user must not put words in front of another. Group memories are formed only in a
 * guild channel, where every reader was in the same server.
 */

const MESSAGE_WINDOW = 20;
const CANDIDATES = 10;
/** How long one formation may hold its conversation, and how long another waits for it. */
const FORMATION_LEASE_MS = 5 * 60_000;
const FORMATION_WAIT_MS = 60_000;
const MAX_MEMORY_LENGTH = 500;

const operationSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('add'), scope: z.enum(['user', 'group', 'core']).default('user'), content: z.string().trim().min(3).max(MAX_MEMORY_LENGTH), importance: z.number().min(0).max(1).default(0.5) }),
  z.object({ op: z.literal('update'), id: z.string(), content: z.string().trim().min(3).max(MAX_MEMORY_LENGTH), importance: z.number().min(0).max(1).optional() }),
  z.object({ op: z.literal('delete'), id: z.string() }),
]);
const answerSchema = z.object({ operations: z.array(z.unknown()).max(30) });

export type FormationOperation = z.infer<typeof operationSchema>;

export interface FormationDependencies {
  db: Database;
  cache: Cache;
  memory: MemoryService;
  /** The model call, through the gateway (metered, keyed per user, a rejected key reported). */
  model: MemoryModel;
  logger: Logger;
  now?: () => Date;
}

interface TranscriptMessage {
  id: string;
  role: 'system' | 'user' | 'assistant';
  content: string;
  createdAt: Date;
}

export class MemoryFormation implements MemoryFormer {
  private readonly now: () => Date;

  constructor(private readonly dependencies: FormationDependencies) {
    this.now = dependencies.now ?? (() => new Date());
  }

  /** The `memory.form` job: asks the provider of the chat again (the gateway resolves the user's key), then forms. */
  async handleJob(payload: { characterId: string; userId: string; guildId: string | null; conversationId: string; provider: string | null; chatModel: string }): Promise<'success' | 'skipped'> {
    const changed = await this.formFromConversation(payload);
    return changed > 0 ? 'success' : 'skipped';
  }

  async formFromConversation(request: { characterId: string; userId: string; guildId: string | null; conversationId: string; provider: string | null; chatModel: string }): Promise<number> {
    const { cache, logger, db } = this.dependencies;
    // One run at a time per conversation and speaker (see formation-lock.ts); a run that waited
    // starts where the previous one finished, so concurrent `!sleep`s store each fact once.
    const place = { conversationId: request.conversationId, userId: request.userId };
    const lease = await acquireFormationLease(db, place, { leaseMs: FORMATION_LEASE_MS, waitMs: FORMATION_WAIT_MS });
    if (!lease) {
      logger.info({ conversationId: request.conversationId }, 'memory formation for this conversation is still running elsewhere; skipped');
      return 0;
    }
    let formedThrough: string | undefined;
    try {
      // Before the formation state lived in the database, the cursor was kept in the cache.
      const legacyCursor = lease.formedUntil ? undefined : await cache.get<string>(`memory:formed:${request.conversationId}:${request.userId}`);
      const { transcript, guildId } = await this.newMessages(request.conversationId, request.userId, lease.formedUntil ? 'recorded' : legacyCursor ? new Date(legacyCursor) : undefined);
      formedThrough = transcript.at(-1)?.id;
      // Nothing new from this speaker: no model call, nothing stored.
      if (!transcript.some((message) => message.role === 'user')) return 0;
      // The conversation knows its server even when the caller (e.g. `!sleep` over HTTP) does not.
      request = { ...request, guildId: request.guildId ?? guildId };
      let changed: number;
      const operations = request.provider ? await this.askModel(request, request.provider, transcript) : undefined;
      if (operations) {
        changed = await this.apply(request, operations.operations, operations.candidates, transcript);
      } else {
        changed = await this.storeSummary(request, transcript);
      }
      logger.debug({ conversationId: request.conversationId, changed, withModel: operations !== undefined }, 'memories formed');
      return changed;
    } finally {
      await releaseFormationLease(db, place, lease.token, formedThrough);
    }
  }

  /** This speaker's messages (and the replies to them) after the cursor, the newest window only. */
  private async newMessages(conversationId: string, userId: string, after: Date | 'recorded' | undefined): Promise<{ transcript: TranscriptMessage[]; guildId: string | null }> {
    const { db } = this.dependencies;
    const [conversation] = await db.select().from(conversations).where(eq(conversations.id, conversationId)).limit(1);
    if (!conversation) return { transcript: [], guildId: null };
    const rows = await db
      .select()
      .from(messages)
      .where(
        and(
          eq(messages.conversationId, conversationId),
          // 'recorded': after the message formation last read, compared at the column's full precision.
          after === 'recorded'
            ? sql`${messages.createdAt} > (SELECT s.formed_until FROM memory_formation_state s WHERE s.conversation_id = ${conversationId} AND s.user_id = ${userId})`
            : after
              ? gt(messages.createdAt, after)
              : undefined,
        ),
      )
      .orderBy(asc(messages.createdAt))
      .limit(500);
    const direct = conversation.userId === userId;
    const kept: TranscriptMessage[] = [];
    let lastUserWasSpeaker = false;
    for (const row of rows) {
      if (row.status === 'blocked' || row.status === 'failed' || row.role === 'system') continue;
      if (row.role === 'user') {
        lastUserWasSpeaker = row.speakerUserId === userId || (direct && row.speakerUserId === null);
        if (lastUserWasSpeaker) kept.push(row);
      } else if (lastUserWasSpeaker) {
        kept.push(row);
      }
    }
    return { transcript: kept.slice(-MESSAGE_WINDOW), guildId: conversation.guildId };
  }

  private async askModel(
    request: { characterId: string; userId: string; guildId: string | null; chatModel: string },
    provider: string,
    transcript: TranscriptMessage[],
  ): Promise<{ operations: FormationOperation[]; candidates: Map<string, { id: string; scope: MemoryScope }> } | undefined> {
    const { model, memory, logger } = this.dependencies;
    const userText = transcript.filter((message) => message.role === 'user').map((message) => message.content).join('\n');
    const nearest = await memory.search({
      filter: { characterId: request.characterId, includeCore: false, userId: request.userId, guildId: request.guildId ?? undefined },
      query: userText,
      limit: CANDIDATES,
      minRelevance: 0,
    });
    const candidates = new Map(nearest.map((candidate, index) => [`m${index + 1}`, { id: candidate.id, scope: candidate.scope }]));
    const existing = nearest.map((candidate, index) => `m${index + 1} [${candidate.scope}] ${candidate.content}`).join('\n') || '(none)';
    const conversationText = transcript.map((message) => `${message.role === 'user' ? 'User' : 'Character'}: ${message.content.slice(0, 2000)}`).join('\n');
    const scopes = request.guildId
      ? '"user" (a fact about the user) or "group" (a fact about the server/community they are in)'
      : '"user" (a fact about the user)';
    const system = [
      'You maintain the long-term memory of a character who chats with users.',
      'From the conversation, extract durable facts worth remembering in later conversations: the user\'s name, preferences, life, plans, relationships, and requests about how to be treated.',
      'Ignore small talk, questions, and what the character said unless the user confirmed it. Write each memory as one short, self-contained sentence in the third person ("The user …").',
      'Compare with the existing memories: if a fact is already remembered, skip it; if it changes or refines one, update that one by its id; if the user says a remembered fact is wrong or no longer true, delete it.',
      `Scopes: ${scopes}. Importance: 0 (trivia) to 1 (essential).`,
      'Answer with JSON only: {"operations":[{"op":"add","scope":"user","content":"…","importance":0.6},{"op":"update","id":"m1","content":"…","importance":0.7},{"op":"delete","id":"m2"}]}. Answer {"operations":[]} when nothing is worth remembering.',
    ].join('\n');
    const prompt = `Existing memories:\n${existing}\n\nConversation:\n${conversationText}`;
    const result = await model.complete({
      userId: request.userId,
      characterId: request.characterId,
      provider,
      model: request.chatModel,
      messages: [{ role: 'system', content: system }, { role: 'user', content: prompt }],
      maxTokens: 800,
      purpose: 'memory formation',
    });
    if (!result) return undefined;
    const operations = parseOperations(result.text);
    if (!operations) logger.info({ model: request.chatModel }, 'the memory model did not answer usable JSON; storing a summary instead');
    return operations ? { operations, candidates } : undefined;
  }

  private async apply(
    request: { characterId: string; userId: string; guildId: string | null },
    operations: FormationOperation[],
    candidates: Map<string, { id: string; scope: MemoryScope }>,
    transcript: TranscriptMessage[],
  ): Promise<number> {
    const { memory } = this.dependencies;
    const sourceMessageIds = transcript.map((message) => message.id);
    let changed = 0;
    for (const operation of operations) {
      switch (operation.op) {
        case 'add': {
          // Core is never formed from a conversation, and group only inside a guild (see above).
          const scope: MemoryScope = operation.scope === 'group' && request.guildId ? 'group' : 'user';
          await memory.create({
            characterId: request.characterId,
            scope,
            userId: scope === 'user' ? request.userId : null,
            guildId: scope === 'group' ? request.guildId : null,
            content: operation.content,
            importance: operation.importance,
            sourceMessageIds,
          });
          changed += 1;
          break;
        }
        case 'update': {
          // Only ids the prompt listed: the model cannot reach memories outside this user's scopes.
          const target = candidates.get(operation.id);
          if (!target) break;
          if (await memory.update(target.id, { content: operation.content, importance: operation.importance, sourceMessageIds })) changed += 1;
          break;
        }
        case 'delete': {
          const target = candidates.get(operation.id);
          if (target) changed += await memory.remove([target.id]);
          break;
        }
      }
    }
    return changed;
  }

  /** The no-model fallback: one compact user-scope memory of what the user said (and the reply). */
  private async storeSummary(request: { characterId: string; userId: string }, transcript: TranscriptMessage[]): Promise<number> {
    const { memory } = this.dependencies;
    const said = transcript.filter((message) => message.role === 'user').map((message) => message.content.replace(/\s+/g, ' ').trim());
    const replied = transcript.filter((message) => message.role === 'assistant').at(-1)?.content.replace(/\s+/g, ' ').trim();
    const date = this.now().toISOString().slice(0, 10);
    let content = `On ${date} the user said: "${clip(said.join(' / '), 320)}"`;
    if (replied) content += `; the character replied: "${clip(replied, 120)}"`;
    const existing = await memory.list({ characterId: request.characterId, scope: 'user', userId: request.userId, limit: 20 });
    if (existing.some((row) => row.content === content)) return 0;
    await memory.create({
      characterId: request.characterId,
      scope: 'user',
      userId: request.userId,
      guildId: null,
      content,
      importance: 0.3,
      sourceMessageIds: transcript.map((message) => message.id),
    });
    return 1;
  }
}

function clip(text: string, length: number): string {
  return text.length <= length ? text : `${text.slice(0, length - 1)}…`;
}

/** The model's JSON (possibly fenced or with prose around it), keeping only well-formed operations. */
export function parseOperations(text: string): FormationOperation[] | undefined {
  const start = text.indexOf('{');
  const end = text.lastIndexOf('}');
  if (start < 0 || end <= start) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.slice(start, end + 1));
  } catch {
    return undefined;
  }
  const answer = answerSchema.safeParse(parsed);
  if (!answer.success) return undefined;
  const operations: FormationOperation[] = [];
  for (const item of answer.data.operations) {
    const operation = operationSchema.safeParse(item);
    if (operation.success) operations.push(operation.data);
  }
  return operations;
}
