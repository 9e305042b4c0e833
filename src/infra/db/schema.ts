import { sql } from './sql.js';
import {
  bigint,
  boolean,
  customType,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  real,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

/**
 * The one Drizzle schema for both backends (PGlite and PostgreSQL). Migrations in drizzle/
 * are generated from it (`npm run db:generate`) and applied at start-up.
 */

const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();
const updatedAt = () => timestamp('updated_at', { withTimezone: true }).notNull().defaultNow();
const id = () => uuid('id').primaryKey().defaultRandom();

/** pgvector column without a fixed dimension, so the embedder can change; indexes cast per dimension. */
export const vector = customType<{ data: number[]; driverData: string }>({
  dataType: () => 'vector',
  toDriver: (value) => `[${value.join(',')}]`,
  fromDriver: (value) => (typeof value === 'string' ? (JSON.parse(value) as number[]) : (value as number[])),
});

const tsvector = customType<{ data: string }>({ dataType: () => 'tsvector' });

export const plans = pgTable('plans', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  allowsPlatformKeys: boolean('allows_platform_keys').notNull().default(true),
  dailyCredits: integer('daily_credits').notNull().default(0),
  requestsPerMinute: integer('requests_per_minute').notNull().default(20),
  features: jsonb('features').$type<Record<string, unknown>>().notNull().default({}),
  createdAt: createdAt(),
  // Limits and prices added by the billing module (drizzle/0004_billing.sql), which is the plans' only writer.
  description: text('description').notNull().default(''),
  creditsPer1kTokensMicro: bigint('credits_per_1k_tokens_micro', { mode: 'number' }).notNull().default(100_000),
  creditsPerImageMicro: bigint('credits_per_image_micro', { mode: 'number' }).notNull().default(1_000_000),
  creditsPerAudioSecondMicro: bigint('credits_per_audio_second_micro', { mode: 'number' }).notNull().default(10_000),
  concurrentStreams: integer('concurrent_streams').notNull().default(1),
  voiceSecondsPerMonth: integer('voice_seconds_per_month').notNull().default(600),
  imagesPerDay: integer('images_per_day').notNull().default(5),
  /** Price per month in the currency's smallest unit; null for a custom (enterprise) price. */
  priceCents: integer('price_cents'),
  currency: text('currency').notNull().default('usd'),
  public: boolean('public').notNull().default(true),
  sortOrder: integer('sort_order').notNull().default(0),
  updatedAt: updatedAt(),
});

export const users = pgTable('users', {
  id: id(),
  username: text('username'),
  planId: text('plan_id')
    .notNull()
    .default('free')
    .references(() => plans.id),
  active: boolean('active').notNull().default(true),
  quotas: jsonb('quotas').$type<Record<string, number>>().notNull().default({}),
  createdAt: createdAt(),
  lastActiveAt: timestamp('last_active_at', { withTimezone: true }),
});

/** External identities: `discord:<id>`, an OIDC `sub` qualified by issuer, a service's own user id… */
export const userIdentities = pgTable(
  'user_identities',
  {
    id: id(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    externalId: text('external_id').notNull(),
    createdAt: createdAt(),
  },
  (table) => [uniqueIndex('user_identities_external_id_key').on(table.externalId), index('user_identities_user_id_idx').on(table.userId)],
);

export const apiKeys = pgTable(
  'api_keys',
  {
    id: id(),
    /** The public, non-secret part shown in listings and used to find the row. */
    prefix: text('prefix').notNull(),
    hash: text('hash').notNull(),
    role: text('role', { enum: ['admin', 'service', 'user'] }).notNull(),
    name: text('name').notNull(),
    userId: uuid('user_id').references(() => users.id, { onDelete: 'cascade' }),
    createdAt: createdAt(),
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (table) => [uniqueIndex('api_keys_prefix_key').on(table.prefix)],
);

export const providerKeys = pgTable(
  'provider_keys',
  {
    id: id(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    provider: text('provider').notNull(),
    name: text('name').notNull(),
    /** AES-256-GCM: base64 of iv | ciphertext | tag, under the vault key `encryptionKeyId`. */
    ciphertext: text('ciphertext').notNull(),
    encryptionKeyId: text('encryption_key_id').notNull(),
    masked: text('masked').notNull(),
    status: text('status', { enum: ['valid', 'invalid', 'unchecked', 'unreachable'] })
      .notNull()
      .default('unchecked'),
    statusDetail: text('status_detail'),
    active: boolean('active').notNull().default(true),
    createdAt: createdAt(),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
    lastCheckedAt: timestamp('last_checked_at', { withTimezone: true }),
  },
  (table) => [index('provider_keys_user_provider_idx').on(table.userId, table.provider)],
);

export interface ModelSettings {
  provider?: 'openrouter' | 'openai' | 'xai' | 'gemini';
  model?: string;
  temperature?: number;
  maxTokens?: number;
  fallbackModels?: string[];
  vision?: boolean;
  /** How the character draws (`!imagine`): its image provider, style and model; unset = the user's. */
  image?: CharacterImageSettings;
}

/** A character's preferred image generation (the images module reads it). */
export interface CharacterImageSettings {
  provider?: 'fal' | 'openai' | 'stability' | 'kie';
  style?: 'fast' | 'quality' | 'pro';
  model?: string;
}

/** A character's spoken voice beyond its voice_id (the voice module reads it). */
export interface CharacterVoiceSettings {
  provider?: 'elevenlabs' | 'minimax';
  model?: string;
  speed?: number;
  stability?: number;
  similarityBoost?: number;
  style?: number;
  emotion?: string;
}

export const characters = pgTable(
  'characters',
  {
    id: id(),
    slug: text('slug').notNull(),
    name: text('name').notNull(),
    description: text('description').notNull().default(''),
    personalityTraits: jsonb('personality_traits').$type<Record<string, number>>().notNull().default({}),
    interactionStyle: text('interaction_style').notNull().default('casual'),
    voiceCharacteristics: jsonb('voice_characteristics').$type<Record<string, unknown>>().notNull().default({}),
    knowledgeDomains: jsonb('knowledge_domains').$type<string[]>().notNull().default([]),
    exampleDialogues: jsonb('example_dialogues').$type<Array<{ user: string; assistant: string }>>().notNull().default([]),
    backstory: text('backstory').notNull().default(''),
    scenario: text('scenario').notNull().default(''),
    voiceId: text('voice_id'),
    greeting: text('greeting'),
    alternateGreetings: jsonb('alternate_greetings').$type<string[]>().notNull().default([]),
    modelSettings: jsonb('model_settings').$type<ModelSettings>().notNull().default({}),
    /** How the character speaks aloud (voice_id names the voice): provider, model, speed, stability… */
    voiceSettings: jsonb('voice_settings').$type<CharacterVoiceSettings>().notNull().default({}),
    systemPromptOverride: text('system_prompt_override'),
    postHistoryInstructions: text('post_history_instructions'),
    /** Character Card fields kept for faithful round trips. */
    card: jsonb('card').$type<Record<string, unknown>>().notNull().default({}),
    characterBook: jsonb('character_book').$type<Record<string, unknown> | null>(),
    avatar: text('avatar'),
    ownerUserId: uuid('owner_user_id').references(() => users.id, { onDelete: 'set null' }),
    visibility: text('visibility', { enum: ['private', 'public'] }).notNull().default('public'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (table) => [uniqueIndex('characters_slug_key').on(table.slug)],
);

export const conversations = pgTable(
  'conversations',
  {
    id: id(),
    characterId: uuid('character_id')
      .notNull()
      .references(() => characters.id, { onDelete: 'cascade' }),
    /** Set for direct conversations; null for a server channel shared by its members. */
    userId: uuid('user_id').references(() => users.id, { onDelete: 'cascade' }),
    guildId: text('guild_id'),
    channelId: text('channel_id'),
    /** `dm:<userId>` or `channel:<guildId>:<channelId>`: one conversation per character and place. */
    placeKey: text('place_key').notNull(),
    contextResetAt: timestamp('context_reset_at', { withTimezone: true }),
    lastSummarizedAt: timestamp('last_summarized_at', { withTimezone: true }),
    /** `!voice`: answers in this conversation are spoken too (migration 0013). */
    voiceReplies: boolean('voice_replies').notNull().default(false),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (table) => [uniqueIndex('conversations_character_place_key').on(table.characterId, table.placeKey)],
);

export const messages = pgTable(
  'messages',
  {
    id: id(),
    conversationId: uuid('conversation_id')
      .notNull()
      .references(() => conversations.id, { onDelete: 'cascade' }),
    role: text('role', { enum: ['system', 'user', 'assistant'] }).notNull(),
    speakerUserId: uuid('speaker_user_id').references(() => users.id, { onDelete: 'set null' }),
    speakerName: text('speaker_name'),
    content: text('content').notNull(),
    tokenCount: integer('token_count').notNull().default(0),
    /** `partial` when the client left mid-stream: what was generated is still kept; `failed`: a user message whose turn got no answer (not in later prompts). */
    status: text('status', { enum: ['complete', 'partial', 'blocked', 'failed'] }).notNull().default('complete'),
    metadata: jsonb('metadata').$type<Record<string, unknown>>().notNull().default({}),
    createdAt: createdAt(),
  },
  (table) => [index('messages_conversation_created_idx').on(table.conversationId, table.createdAt)],
);

export const memories = pgTable(
  'memories',
  {
    id: id(),
    characterId: uuid('character_id')
      .notNull()
      .references(() => characters.id, { onDelete: 'cascade' }),
    scope: text('scope', { enum: ['core', 'user', 'group'] }).notNull(),
    userId: uuid('user_id').references(() => users.id, { onDelete: 'cascade' }),
    guildId: text('guild_id'),
    content: text('content').notNull(),
    sourceMessageIds: jsonb('source_message_ids').$type<string[]>().notNull().default([]),
    importance: real('importance').notNull().default(0.5),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    lastRecalledAt: timestamp('last_recalled_at', { withTimezone: true }),
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    embedding: vector('embedding'),
    embeddingModel: text('embedding_model'),
    embeddingDimensions: integer('embedding_dimensions'),
    searchVector: tsvector('search_vector').generatedAlwaysAs(sql`to_tsvector('english', content)`),
    /** The caller's own data about the memory (source, tags), returned as given. */
    metadata: jsonb('metadata').$type<Record<string, unknown>>(),
    /** The caller's id for the memory, unique per character and scope: imports are idempotent by it. */
    externalId: text('external_id'),
  },
  (table) => [
    index('memories_scope_idx').on(table.characterId, table.scope, table.userId, table.guildId),
    index('memories_search_vector_idx').using('gin', table.searchVector),
  ],
);

export const usageEvents = pgTable(
  'usage_events',
  {
    id: id(),
    userId: uuid('user_id').references(() => users.id, { onDelete: 'cascade' }),
    characterId: uuid('character_id').references(() => characters.id, { onDelete: 'set null' }),
    service: text('service', { enum: ['chat', 'embedding', 'vision', 'speech', 'transcription', 'image', 'memory'] }).notNull(),
    provider: text('provider').notNull(),
    model: text('model'),
    promptTokens: integer('prompt_tokens').notNull().default(0),
    completionTokens: integer('completion_tokens').notNull().default(0),
    characters: integer('characters').notNull().default(0),
    seconds: doublePrecision('seconds').notNull().default(0),
    images: integer('images').notNull().default(0),
    /** Credits charged for the call in micro-credits (1 credit = 1,000,000); 0 when the user's own key paid. */
    creditsMicro: bigint('credits_micro', { mode: 'number' }).notNull().default(0),
    costUsd: doublePrecision('cost_usd').notNull().default(0),
    costSource: text('cost_source', { enum: ['provider', 'price_table', 'unknown'] }).notNull().default('unknown'),
    paidBy: text('paid_by', { enum: ['user', 'platform'] }).notNull(),
    providerKeyId: uuid('provider_key_id'),
    requestId: text('request_id'),
    createdAt: createdAt(),
  },
  (table) => [index('usage_events_user_created_idx').on(table.userId, table.createdAt)],
);

export const moderationEvents = pgTable('moderation_events', {
  id: id(),
  userId: uuid('user_id').references(() => users.id, { onDelete: 'cascade' }),
  characterId: uuid('character_id').references(() => characters.id, { onDelete: 'cascade' }),
  direction: text('direction', { enum: ['input', 'output'] }).notNull(),
  category: text('category').notNull(),
  excerpt: text('excerpt').notNull(),
  createdAt: createdAt(),
});

/** Small key/value facts about this installation (e.g. that the bootstrap admin key was printed). */
export const systemSettings = pgTable('system_settings', {
  key: text('key').primaryKey(),
  value: jsonb('value').notNull(),
  updatedAt: updatedAt(),
});
export * from '../../modules/market/tables.js';
export * from '../../modules/media/tables.js';

export * from '../../modules/channel-bindings/tables.js';
export * from '../../modules/images/tables.js';

export * from '../../modules/billing/tables.js';
export * from '../../modules/usage/tables.js';
export * from '../../modules/voice/tables.js';
export * from '../../modules/memory/tables.js';
export * from '../../modules/identity/link-code-tables.js';
export * from '../../modules/idempotency/tables.js';
