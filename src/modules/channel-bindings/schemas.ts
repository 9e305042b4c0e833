import { z } from 'zod';
import type { ChannelBinding } from './service.js';

/** Request and response shapes of /v1/channel-bindings (snake_case, contract §3). */

const snowflake = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9@_:.-]{1,100}$/, 'an id: letters, digits and @ _ : . - only');

export const PLATFORMS = ['discord'] as const;

export const triggersSchema = z.object({
  mention: z.boolean().describe('Answer when the bot is @mentioned'),
  reply: z.boolean().describe("Answer replies to this character's messages"),
  name: z.boolean().describe("Answer when the character's name appears in a message"),
  words: z.array(z.string().trim().min(1).max(100)).max(50).describe('Answer when any of these words or phrases appears'),
  every_message: z.boolean().describe('Answer every message in the place'),
});

export const freeWillSchema = z.object({
  enabled: z.boolean(),
  probability: z.number().min(0).max(1).describe('Chance of an unprompted reply to a message nobody addressed to the character'),
  cooldown_seconds: z.number().int().min(0).max(86_400).describe('At least this long between unprompted replies in one channel'),
});

export const bindingSchema = z.object({
  id: z.string(),
  platform: z.enum(PLATFORMS),
  guild_id: z.string().describe('The server; "@me" binds direct messages'),
  channel_id: z.string().nullable(),
  category_id: z.string().nullable(),
  scope: z.enum(['channel', 'category', 'server']),
  character: z.object({ id: z.string(), slug: z.string(), name: z.string(), avatar_url: z.string().nullable() }),
  triggers: triggersSchema,
  free_will: freeWillSchema,
  voice_replies: z.boolean(),
  created_at: z.string(),
  updated_at: z.string(),
});

export const createBindingBodySchema = z
  .object({
    platform: z.enum(PLATFORMS).default('discord'),
    guild_id: snowflake.describe('The server id; "@me" for direct messages'),
    channel_id: snowflake.nullable().optional().describe('Bind one channel (threads follow their parent channel)'),
    category_id: snowflake.nullable().optional().describe('Bind every channel of a category that has no binding of its own'),
    character: z.string().trim().min(1).max(200).describe('Character id or slug'),
    triggers: triggersSchema.partial().optional(),
    free_will: freeWillSchema.partial().optional(),
    voice_replies: z.boolean().optional(),
  })
  .refine((body) => !(body.channel_id && body.category_id), { message: 'Give channel_id or category_id, not both', path: ['category_id'] });

export const updateBindingBodySchema = z.object({
  triggers: triggersSchema.partial().optional(),
  free_will: freeWillSchema.partial().optional(),
  voice_replies: z.boolean().optional(),
});

export const listQuerySchema = z.object({
  platform: z.enum(PLATFORMS).default('discord'),
  guild_id: snowflake.optional(),
  channel_id: snowflake.optional(),
  category_id: snowflake.optional(),
  character: z.string().trim().min(1).max(200).optional().describe('Character id or slug'),
});

export const resolveQuerySchema = z.object({
  platform: z.enum(PLATFORMS).default('discord'),
  guild_id: snowflake.describe('The server; "@me" for direct messages'),
  channel_id: snowflake.optional().describe('The channel (for a thread: its parent channel)'),
  category_id: snowflake.optional().describe("The channel's category, if any"),
});

export const bindingListSchema = z.object({ data: z.array(bindingSchema) });
export const resolvedSchema = z.object({
  scope: z.enum(['channel', 'category', 'server']).nullable().describe('Where the answering bindings come from; null when none applies'),
  data: z.array(bindingSchema),
});

export function presentBinding(binding: ChannelBinding): z.infer<typeof bindingSchema> {
  return {
    id: binding.id,
    platform: binding.platform,
    guild_id: binding.guildId,
    channel_id: binding.channelId,
    category_id: binding.categoryId,
    scope: binding.scope,
    character: binding.character,
    triggers: {
      mention: binding.triggers.mention,
      reply: binding.triggers.reply,
      name: binding.triggers.name,
      words: binding.triggers.words,
      every_message: binding.triggers.everyMessage,
    },
    free_will: { enabled: binding.freeWill.enabled, probability: binding.freeWill.probability, cooldown_seconds: binding.freeWill.cooldownSeconds },
    voice_replies: binding.voiceReplies,
    created_at: binding.createdAt.toISOString(),
    updated_at: binding.updatedAt.toISOString(),
  };
}
