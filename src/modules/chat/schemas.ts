import { z } from 'zod';
import type { ConversationSummary, ConversationRow, MessageRow } from './store.js';

/** Request and response shapes of the chat, OpenAI-compatible and conversation routes (snake_case). */

const idText = z.string().trim().min(1).max(200);

export const botChatBodySchema = z.object({
  content: z.string().max(2_000_000).optional().default('').describe('The message (at most MAX_MESSAGE_CHARS characters), or a command: !wack, !reset, !sleep, !info, !help, !voice; may be empty with audio_url'),
  user_id: idText.optional().describe('External end-user id (service keys; X-User-Id also works)'),
  username: z.string().trim().min(1).max(100).optional(),
  guild_id: idText.optional(),
  channel_id: idText.optional(),
  attachment_url: z.string().max(14_000_000).optional().describe('An image URL (http/https) or a data:image/…;base64 URL'),
  audio_url: z
    .string()
    .min(1)
    .max(40_000_000)
    .optional()
    .describe('A voice message: an http(s) URL (fetched SSRF-safely, at most AUDIO_INPUT_MAX_BYTES) or a data:audio/…;base64 URL. It is transcribed and the transcript is your message (after content, when both are sent)'),
  voice: z
    .boolean()
    .optional()
    .describe("Speak the answer in the character's voice: the answer carries audio_url (signed, expiring). Unset = the conversation's !voice setting; false = text only this time"),
  stream: z.boolean().optional().default(false),
}).meta({
  examples: [
    { content: 'Hello! Do you remember me?' },
    { content: 'Who here likes tea?', user_id: '123456789012345678', username: 'Carol', guild_id: '987654321098765432', channel_id: '112233445566778899', stream: true },
  ],
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
  transcript: z.string().optional().describe('With audio_url: what the voice message said (your message as stored)'),
  audio_url: z.string().nullable().optional().describe('A spoken answer was asked for: a signed URL of the stored MP3 (no bearer token needed until audio_expires_at), or null with audio_error'),
  audio_expires_at: z.string().nullable().optional(),
  audio_seconds: z.number().nullable().optional(),
  audio_error: z
    .object({ status: z.number().int(), code: z.string(), message: z.string() })
    .nullable()
    .optional()
    .describe('Why the answer has no audio (e.g. 429 voice quota, 402 credits, 502 speech vendor): the text answer stands and nothing was charged for the speech'),
}).meta({
  examples: [
    {
      response: 'Of course, Carol: you told me about your garden last week. How are the roses?',
      character_id: '0b9e7f8e-5c1d-4a57-9d0b-7f0a4f3c2e11',
      conversation_id: '5f2c8a4e-1d3b-4c6a-8e9f-0a1b2c3d4e5f',
      message_id: '7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d',
      memories_used: 2,
      processing_time: 1.42,
      tokens_used: 812,
      usage: { prompt_tokens: 790, completion_tokens: 22, total_tokens: 812, cost_usd: 0.000131 },
      api_keys_status: { openrouter: 'user' },
      status: 'complete',
      command: null,
    },
  ],
});

const contentPartSchema = z.union([
  z.object({ type: z.literal('text'), text: z.string() }),
  z.object({ type: z.literal('image_url'), image_url: z.object({ url: z.string().min(1), detail: z.enum(['auto', 'low', 'high']).optional() }) }),
  z
    .object({ type: z.literal('input_audio'), input_audio: z.object({ data: z.string().min(1).max(40_000_000), format: z.string().min(1).max(10) }) })
    .describe("A voice message (base64 wav or mp3): on the last user message it is transcribed and the transcript is the message; in earlier messages it is left out (send their transcripts as text)"),
]);

const toolCallSchema = z.object({
  id: z.string().min(1).max(200),
  type: z.literal('function'),
  function: z.object({ name: z.string().min(1).max(200), arguments: z.string().max(200_000) }),
});

export const openAiMessageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(contentPartSchema), z.null()]).optional().default(null),
  name: z.string().max(64).optional(),
  tool_calls: z.array(toolCallSchema).max(128).optional().describe('An assistant turn that called tools'),
  tool_call_id: z.string().min(1).max(200).optional().describe('On a tool message: the call it answers'),
});

const toolSchema = z.looseObject({
  type: z.literal('function'),
  function: z.looseObject({ name: z.string().min(1).max(64), description: z.string().optional(), parameters: z.record(z.string(), z.unknown()).optional(), strict: z.boolean().nullable().optional() }),
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
    user: z.string().max(200).optional().describe('The end user (like X-User-Id, for service keys)'),
    tools: z.array(toolSchema).max(128).optional().describe('Passed through to the model; tool calls come back in OpenAI\'s shape'),
    tool_choice: z.union([z.enum(['none', 'auto', 'required']), z.looseObject({ type: z.string() })]).optional(),
    parallel_tool_calls: z.boolean().optional(),
    response_format: z.looseObject({ type: z.enum(['text', 'json_object', 'json_schema']) }).optional().describe('Passed through (JSON mode, structured outputs)'),
    stop: z.union([z.string(), z.array(z.string()).max(4)]).optional(),
    seed: z.number().int().optional(),
    top_p: z.number().min(0).max(1).optional(),
    frequency_penalty: z.number().min(-2).max(2).optional(),
    presence_penalty: z.number().min(-2).max(2).optional(),
    n: z.number().int().min(1).max(128).optional().describe('Only 1 is supported (a character gives one answer); more is a 422'),
  })
  .passthrough()
  .meta({
    examples: [
      { model: 'character/luna', messages: [{ role: 'user', content: 'Hello, Luna!' }] },
      {
        model: 'shapesinc/luna',
        stream: true,
        messages: [
          { role: 'system', content: 'Answer in French.' },
          { role: 'user', content: 'What is the weather in Paris?' },
        ],
        tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }],
      },
    ],
  });

export const openAiCompletionSchema = z
  .object({
    id: z.string(),
    object: z.literal('chat.completion'),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(
      z.object({
        index: z.number().int(),
        message: z.object({ role: z.literal('assistant'), content: z.string().nullable(), tool_calls: z.array(toolCallSchema).optional() }),
        finish_reason: z.string(),
      }),
    ),
    usage: z.object({ prompt_tokens: z.number().int(), completion_tokens: z.number().int(), total_tokens: z.number().int() }),
    conversation_id: z.string(),
  })
  .passthrough()
  .meta({
    examples: [
      {
        id: 'chatcmpl-7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d',
        object: 'chat.completion',
        created: 1767225600,
        model: 'character/luna',
        choices: [{ index: 0, message: { role: 'assistant', content: 'Hello! The stars are bright tonight.' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 412, completion_tokens: 9, total_tokens: 421 },
        conversation_id: '5f2c8a4e-1d3b-4c6a-8e9f-0a1b2c3d4e5f',
      },
    ],
  });

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
  status: z.enum(['complete', 'partial', 'blocked', 'failed']).describe('failed: a user message whose turn got no answer (left out of later prompts)'),
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
