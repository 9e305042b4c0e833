import { boolean, doublePrecision, index, integer, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { characters, users } from '../../infra/db/schema.js';

/** The voice registry: friendly names over vendor voice ids (seeded by migration 0006b_voice). */
export const voices = pgTable(
  'voices',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    provider: text('provider').notNull(),
    providerVoiceId: text('provider_voice_id').notNull(),
    language: text('language'),
    gender: text('gender'),
    description: text('description').notNull().default(''),
    cloned: boolean('cloned').notNull().default(false),
    active: boolean('active').notNull().default(true),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [uniqueIndex('voices_name_key').on(table.name)],
);

/** One row per speech or transcription request, whatever its outcome (seed 003's usage log). */
export const voiceRequests = pgTable(
  'voice_requests',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id').references(() => users.id, { onDelete: 'cascade' }),
    characterId: uuid('character_id').references(() => characters.id, { onDelete: 'set null' }),
    kind: text('kind', { enum: ['speech', 'transcription'] }).notNull(),
    /** Which door it came in by: tts, character, chat, transcription. */
    source: text('source').notNull(),
    provider: text('provider'),
    model: text('model'),
    voice: text('voice'),
    characters: integer('characters').notNull().default(0),
    seconds: doublePrecision('seconds').notNull().default(0),
    status: text('status', { enum: ['success', 'error', 'quota_exceeded', 'rate_limited'] }).notNull(),
    errorCode: text('error_code'),
    requestId: text('request_id'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [index('voice_requests_user_created_idx').on(table.userId, table.createdAt)],
);

export type VoiceRow = typeof voices.$inferSelect;
export type VoiceRequestRow = typeof voiceRequests.$inferSelect;
