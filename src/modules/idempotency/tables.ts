import { index, integer, jsonb, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';

/**
 * One row per `Idempotency-Key` a user sent to a route that opts in: the request's fingerprint, whether
 * the first request is still running (`in_flight`, held until `locked_until`) or `done`, and the answer
 * to replay (status, a few headers, the body as UTF-8 text or base64). Rows expire after
 * IDEMPOTENCY_TTL_SECONDS and are deleted by the `idempotency.purge` job. The user foreign key
 * (cascade) is declared in drizzle/0012_idempotency_keys.sql.
 */
export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    userId: uuid('user_id').notNull(),
    route: text('route').notNull(),
    key: text('key').notNull(),
    fingerprint: text('fingerprint').notNull(),
    state: text('state', { enum: ['in_flight', 'done'] }).notNull().default('in_flight'),
    lockedUntil: timestamp('locked_until', { withTimezone: true }).notNull(),
    responseStatus: integer('response_status'),
    responseHeaders: jsonb('response_headers').$type<Record<string, string>>(),
    responseBody: text('response_body'),
    responseEncoding: text('response_encoding', { enum: ['utf8', 'base64'] }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  },
  (table) => [primaryKey({ columns: [table.userId, table.route, table.key] }), index('idempotency_keys_expires_at_idx').on(table.expiresAt)],
);
