import { bigint, date, doublePrecision, integer, pgTable, primaryKey, text, uuid } from 'drizzle-orm/pg-core';
import { users } from '../../infra/db/schema.js';

/**
 * Usage rolled up per user, UTC day, service and payer, upserted in the same transaction as each
 * usage event: GET /v1/me/usage reads at most days × services × 2 rows, never the event table.
 */
export const usageDaily = pgTable(
  'usage_daily',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    day: date('day', { mode: 'string' }).notNull(),
    service: text('service').notNull(),
    paidBy: text('paid_by', { enum: ['user', 'platform'] }).notNull(),
    requests: integer('requests').notNull().default(0),
    promptTokens: bigint('prompt_tokens', { mode: 'number' }).notNull().default(0),
    completionTokens: bigint('completion_tokens', { mode: 'number' }).notNull().default(0),
    characters: bigint('characters', { mode: 'number' }).notNull().default(0),
    seconds: doublePrecision('seconds').notNull().default(0),
    images: integer('images').notNull().default(0),
    creditsMicro: bigint('credits_micro', { mode: 'number' }).notNull().default(0),
    costUsd: doublePrecision('cost_usd').notNull().default(0),
  },
  (table) => [primaryKey({ name: 'usage_daily_pkey', columns: [table.userId, table.day, table.service, table.paidBy] })],
);
