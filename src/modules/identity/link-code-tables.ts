import { index, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { apiKeys, users } from '../../infra/db/schema.js';

/**
 * One-time link codes (drizzle/0015): the Discord bot's `/setup` asks for one for the Discord user
 * (service key + X-User-Id); the dashboard redeems it for a user API key bound to that user. Only a
 * SHA-256 of the code is stored; a code is used at most once and expires (10 minutes).
 */
export const linkCodes = pgTable(
  'link_codes',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    codeHash: text('code_hash').notNull(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    /** The platform key that asked for the code (the bot's service key), null for env keys. */
    createdByKeyId: uuid('created_by_key_id').references(() => apiKeys.id, { onDelete: 'set null' }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    usedAt: timestamp('used_at', { withTimezone: true }),
    /** The user key the redemption created. */
    apiKeyId: uuid('api_key_id').references(() => apiKeys.id, { onDelete: 'set null' }),
  },
  (table) => [uniqueIndex('link_codes_code_hash_key').on(table.codeHash), index('link_codes_user_id_idx').on(table.userId)],
);

export type LinkCodeRow = typeof linkCodes.$inferSelect;
