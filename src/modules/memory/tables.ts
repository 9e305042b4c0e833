import { pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';

/**
 * Where memory formation stands in each conversation, per speaker: the last message already read
 * (`formed_until`), and a lease (`lock_token`, `locked_until`) so only one formation of the same
 * conversation and speaker runs at a time, across processes. Foreign keys (cascade on the
 * conversation and the user) are declared in drizzle/0008_memory_formation_import.sql.
 */
export const memoryFormationState = pgTable(
  'memory_formation_state',
  {
    conversationId: uuid('conversation_id').notNull(),
    userId: uuid('user_id').notNull(),
    formedUntil: timestamp('formed_until', { withTimezone: true }),
    lockedUntil: timestamp('locked_until', { withTimezone: true }),
    lockToken: text('lock_token'),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [primaryKey({ columns: [table.conversationId, table.userId] })],
);
