import { z } from 'zod';
import { SCOPE_LABELS, type RankedMemory } from './retrieval.js';
import type { MemoryRow } from './store.js';

export const scopeSchema = z.enum(['core', 'user', 'group']);

export const memorySchema = z.object({
  id: z.string(),
  character_id: z.string(),
  scope: scopeSchema,
  user_id: z.string().nullable(),
  guild_id: z.string().nullable(),
  content: z.string(),
  importance: z.number(),
  source_message_ids: z.array(z.string()),
  created_at: z.string(),
  updated_at: z.string(),
  last_recalled_at: z.string().nullable(),
  expires_at: z.string().nullable(),
  metadata: z.record(z.string(), z.unknown()).nullable().describe('The caller\'s own data, returned as given'),
  external_id: z.string().nullable().describe('The caller\'s id, unique per character and scope'),
});

export const memoryListSchema = z.object({ data: z.array(memorySchema), next_cursor: z.string().nullable() });

export const searchResultSchema = z.object({
  id: z.string(),
  scope: scopeSchema,
  source: z.string().describe('The label the prompt uses: [core], [about you], [about this server]'),
  content: z.string(),
  score: z.number(),
  similarity: z.number().nullable(),
  text_rank: z.number().nullable(),
  relevant: z.boolean().describe('Above the relevance threshold or matching a word of the query; false for memories that only fill the answer up to limit'),
  importance: z.number(),
  created_at: z.string(),
});

const content = z.string().trim().min(1).max(2000);
const importance = z.number().min(0).max(1);
const expiresAt = z.iso.datetime({ offset: true }).nullable();
const externalId = z.string().trim().min(1).max(200);
const guildId = z.string().trim().min(1).max(200);
const memoryExternalId = z.string().trim().min(1).max(200).describe('Your id for the memory: unique per character and scope, so imports are idempotent');
/** A small JSON object (at most 8 KB serialised). */
const metadata = z
  .record(z.string().max(100), z.unknown())
  .refine((value) => JSON.stringify(value).length <= 8192, 'metadata is larger than 8 KB once serialised')
  .describe('Your own data about the memory (source, tags), at most 8 KB');

export const listQuerySchema = z.object({
  scope: scopeSchema.optional(),
  user_id: externalId.optional().describe('service/admin: an external or internal user id'),
  guild_id: guildId.optional().describe('service/admin only'),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(300).optional(),
});

export const createBodySchema = z.object({
  content,
  scope: scopeSchema.default('user'),
  importance: importance.optional(),
  user_id: externalId.optional(),
  guild_id: guildId.optional(),
  expires_at: expiresAt.optional(),
  metadata: metadata.optional(),
  external_id: memoryExternalId.optional(),
});

export const importBodySchema = z.object({
  memories: z
    .array(
      z.object({
        content,
        scope: scopeSchema.default('user'),
        importance: importance.optional(),
        expires_at: expiresAt.optional(),
        metadata: metadata.optional(),
        external_id: memoryExternalId.optional(),
      }),
    )
    .min(1)
    .max(1000)
    .describe('Up to 1,000 memories; one with an external_id already stored in its scope is updated (or left alone when unchanged)'),
  user_id: externalId.optional().describe('service/admin: whose user-scope memories these are (else the acting user)'),
  guild_id: guildId.optional().describe('service/admin: the guild of group-scope memories'),
});

export const importResultSchema = z.object({
  data: z.array(z.object({ id: z.string(), external_id: z.string().nullable(), status: z.enum(['created', 'updated', 'unchanged']) })),
  created: z.number().int(),
  updated: z.number().int(),
  unchanged: z.number().int(),
});

export const patchBodySchema = z
  .object({ content: content.optional(), importance: importance.optional(), expires_at: expiresAt.optional(), metadata: metadata.nullable().optional() })
  .refine(
    (body) => body.content !== undefined || body.importance !== undefined || body.expires_at !== undefined || body.metadata !== undefined,
    'Nothing to change: give content, importance, expires_at or metadata.',
  );

export const searchBodySchema = z.object({
  query: z.string().trim().min(1).max(4000),
  user_id: externalId.optional(),
  guild_id: guildId.optional(),
  limit: z.number().int().min(1).max(100).default(10),
  min_relevance: z
    .number()
    .min(-1)
    .max(1)
    .optional()
    .describe('Drop memories whose cosine similarity is below this and that match no word of the query; without it, answers hold `limit` memories whenever the scope does, the less relevant last (relevant: false)'),
});

export const consolidateBodySchema = z.object({ conversation_id: z.uuid().optional() }).optional();

export function presentMemory(row: MemoryRow) {
  return {
    id: row.id,
    character_id: row.characterId,
    scope: row.scope,
    user_id: row.userId,
    guild_id: row.guildId,
    content: row.content,
    importance: row.importance,
    source_message_ids: row.sourceMessageIds,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    last_recalled_at: row.lastRecalledAt?.toISOString() ?? null,
    expires_at: row.expiresAt?.toISOString() ?? null,
    metadata: row.metadata ?? null,
    external_id: row.externalId ?? null,
  };
}

export function presentSearchResult(memory: RankedMemory) {
  return {
    id: memory.id,
    scope: memory.scope,
    source: SCOPE_LABELS[memory.scope],
    content: memory.content,
    score: memory.score,
    similarity: memory.similarity ?? null,
    text_rank: memory.textRank ?? null,
    relevant: memory.relevant,
    importance: memory.importance,
    created_at: memory.createdAt.toISOString(),
  };
}

export function encodeCursor(row: MemoryRow): string {
  return Buffer.from(JSON.stringify([row.createdAt.toISOString(), row.id]), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): { createdAt: Date; id: string } | undefined {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (!Array.isArray(value) || typeof value[0] !== 'string' || typeof value[1] !== 'string') return undefined;
    const createdAt = new Date(value[0]);
    if (Number.isNaN(createdAt.getTime()) || !/^[0-9a-f-]{36}$/i.test(value[1])) return undefined;
    return { createdAt, id: value[1] };
  } catch {
    return undefined;
  }
}
