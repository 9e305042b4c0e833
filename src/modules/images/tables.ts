import { sql } from '../../infra/db/sql.js';
import { bigint, boolean, doublePrecision, index, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { characters, users } from '../../infra/db/schema.js';

/**
 * Generated images: one row per image, several rows per generation (n). The row exists from the
 * moment the request is accepted (`pending`), so a client can follow it; bytes live in stored media
 * (`media_id`), the rest of what is known about the image lives here.
 */
export const generatedImages = pgTable(
  'generated_images',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    generationId: uuid('generation_id').notNull(),
    /** Position within its generation (0 … n-1). */
    position: integer('position').notNull().default(0),
    characterId: uuid('character_id').references(() => characters.id, { onDelete: 'set null' }),
    status: text('status', { enum: ['pending', 'running', 'succeeded', 'failed'] }).notNull().default('pending'),
    provider: text('provider').notNull(),
    model: text('model').notNull(),
    style: text('style'),
    prompt: text('prompt').notNull(),
    negativePrompt: text('negative_prompt'),
    revisedPrompt: text('revised_prompt'),
    /** What was asked (the one request shape) and what the vendor was sent, with warnings. */
    parameters: jsonb('parameters').$type<Record<string, unknown>>().notNull().default({}),
    seed: bigint('seed', { mode: 'number' }),
    width: integer('width'),
    height: integer('height'),
    byteSize: integer('byte_size'),
    contentType: text('content_type'),
    mediaId: uuid('media_id'),
    title: text('title'),
    favorite: boolean('favorite').notNull().default(false),
    costUsd: doublePrecision('cost_usd').notNull().default(0),
    creditsMicro: bigint('credits_micro', { mode: 'number' }).notNull().default(0),
    paidBy: text('paid_by', { enum: ['user', 'platform'] }),
    /** The vendor task while it runs (fal URLs, KIE task ids), so a restarted job resumes polling. */
    providerTask: jsonb('provider_task').$type<Record<string, unknown>>(),
    errorCode: text('error_code'),
    errorMessage: text('error_message'),
    errorStatus: integer('error_status'),
    requestId: text('request_id'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    completedAt: timestamp('completed_at', { withTimezone: true }),
  },
  (table) => [
    index('generated_images_user_created_idx').on(table.userId, table.createdAt.desc(), table.id.desc()),
    index('generated_images_user_favorite_idx').on(table.userId, table.createdAt.desc()).where(sql`${table.favorite}`),
    index('generated_images_generation_idx').on(table.generationId, table.position),
  ],
);

export type GeneratedImageRow = typeof generatedImages.$inferSelect;
