import { z } from 'zod';
import type { ConversationSummary, ConversationRow, MessageRow } from './store.js';

/** Request and response shapes of the chat, OpenAI-compatible and conversation routes (snake_case). */

const idText = z.string().trim().min(1).max(200);

export const botChatBodySchema = z.object({
  content: z.string().max(2_000_000).describe('The message (at most MAX_MESSAGE_CHARS characters), or a command: !wack, !reset, !sleep, !info, !help'),
  user_id: idText.optional().describe('External end-user id (service keys; X-User-Id also works)'),
  username: z.string().trim().min(1).max(100).optional(),
  guild_id: idText.optional(),
  channel_id: idText.optional(),
  attachment_url: z.string().max(14_000_000).optional().describe('An image URL (http/https) or a data:image/…;base64 URL'),
  stream: z.boolean().optional().default(false),
});

export const usageSchema = z.object({
  prompt_tokens: z.number().int(),
  completion_tokens: z.number().int(),
  total_tokens: z.number().int(),
  cost_usd: z.number().nullable(),
});

export const botChatResponseSchema = z.object({
  response: z.string(),
  character_id: z.string(),
  conversation_id: z.string(),
  message_id: z.string().nullable(),
  memories_used: z.number().int(),
  memory_ids: z.array(z.string()).describe('The memories in this turn\'s prompt, best first'),
  processing_time: z.number().describe('seconds'),
  tokens_used: z.number().int(),
  usage: usageSchema,
  api_keys_status: z.record(z.string(), z.enum(['user', 'platform'])).describe('Who paid, per provider used in this turn'),
  status: z.enum(['complete', 'partial', 'blocked']),
  command: z.string().nullable(),
});

const contentPartSchema = z.union([
  z.object({ type: z.literal('text'), text: z.string() }),
  z.object({ type: z.literal('image_url'), image_url: z.object({ url: z.string().min(1), detail: z.enum(['auto', 'low', 'high']).optional() }) }),
]);

export const openAiMessageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: z.union([z.string(), z.array(contentPartSchema), z.null()]),
  name: z.string().max(64).optional(),
});

export const openAiChatBodySchema = z
  .object({
    model: z.string().min(1).describe('character/<slug> (or shapesinc/<slug>)'),
    messages: z.array(openAiMessageSchema).min(1).max(500),
    stream: z.boolean().optional().default(false),
    temperature: z.number().min(0).max(2).optional(),
    max_tokens: z.number().int().min(1).max(128_000).optional(),
    max_completion_tokens: z.number().int().min(1).max(128_000).optional(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).passthrough().optional(),
    user: z.string().max(200).optional(),
  })
  .passthrough();

export const openAiCompletionSchema = z
  .object({
    id: z.string(),
    object: z.literal('chat.completion'),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(
      z.object({
        index: z.number().int(),
        message: z.object({ role: z.literal('assistant'), content: z.string() }),
        finish_reason: z.string(),
      }),
    ),
    usage: z.object({ prompt_tokens: z.number().int(), completion_tokens: z.number().int(), total_tokens: z.number().int() }),
    conversation_id: z.string(),
  })
  .passthrough();

export const modelListSchema = z.object({
  object: z.literal('list'),
  data: z.array(z.object({ id: z.string(), object: z.literal('model'), created: z.number().int(), owned_by: z.string() })),
});

export const conversationSchema = z.object({
  id: z.string(),
  character_id: z.string(),
  user_id: z.string().nullable(),
  guild_id: z.string().nullable(),
  channel_id: z.string().nullable(),
  place_key: z.string(),
  context_reset_at: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
  message_count: z.number().int().optional(),
  last_message_at: z.string().nullable().optional(),
});

export const messageSchema = z.object({
  id: z.string(),
  conversation_id: z.string(),
  role: z.enum(['system', 'user', 'assistant']),
  speaker_user_id: z.string().nullable(),
  speaker_name: z.string().nullable(),
  content: z.string(),
  token_count: z.number().int(),
  status: z.enum(['complete', 'partial', 'blocked']),
  metadata: z.record(z.string(), z.unknown()),
  created_at: z.string(),
});

export const messageListSchemaFor = z.object({ data: z.array(messageSchema), next_cursor: z.string().nullable() });

export function presentConversation(row: ConversationRow | ConversationSummary): z.infer<typeof conversationSchema> {
  return {
    id: row.id,
    character_id: row.characterId,
    user_id: row.userId,
    guild_id: row.guildId,
    channel_id: row.channelId,
    place_key: row.placeKey,
    context_reset_at: row.contextResetAt?.toISOString() ?? null,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    ...('messageCount' in row ? { message_count: row.messageCount, last_message_at: row.lastMessageAt?.toISOString() ?? null } : {}),
  };
}

export function presentMessage(row: MessageRow): z.infer<typeof messageSchema> {
  return {
    id: row.id,
    conversation_id: row.conversationId,
    role: row.role,
    speaker_user_id: row.speakerUserId,
    speaker_name: row.speakerName,
    content: row.content,
    token_count: row.tokenCount,
    status: row.status,
    metadata: row.metadata,
    created_at: row.createdAt.toISOString(),
  };
}
