import { sql } from '../../infra/db/sql.js';
import { bigint, date, index, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { users } from '../../infra/db/schema.js';

/**
 * Credits in integer micro-credits (1 credit = 1,000,000 micro). `balance_micro` is what the user
 * may spend now (the sum of their ledger); `daily_micro` is the part of it that came from today's
 * daily credits (spent first, reset to the plan's amount on the first use of each UTC day);
 * `reserved_micro` is held by calls in flight.
 */
export const wallets = pgTable('wallets', {
  userId: uuid('user_id')
    .primaryKey()
    .references(() => users.id, { onDelete: 'cascade' }),
  balanceMicro: bigint('balance_micro', { mode: 'number' }).notNull().default(0),
  dailyMicro: bigint('daily_micro', { mode: 'number' }).notNull().default(0),
  reservedMicro: bigint('reserved_micro', { mode: 'number' }).notNull().default(0),
  dailyRefreshedOn: date('daily_refreshed_on', { mode: 'string' }),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

export const LEDGER_KINDS = ['grant', 'daily_refresh', 'purchase', 'reserve', 'settle', 'release', 'refund', 'adjustment'] as const;
export type LedgerKind = (typeof LEDGER_KINDS)[number];

/**
 * The append-only credit ledger (a trigger refuses UPDATE): every change of a balance is one row,
 * written in the same transaction as the wallet, with a unique idempotency key.
 */
export const creditLedger = pgTable(
  'credit_ledger',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    kind: text('kind', { enum: LEDGER_KINDS }).notNull(),
    amountMicro: bigint('amount_micro', { mode: 'number' }).notNull(),
    balanceAfterMicro: bigint('balance_after_micro', { mode: 'number' }).notNull(),
    idempotencyKey: text('idempotency_key').notNull(),
    reservationId: uuid('reservation_id'),
    reference: text('reference'),
    reason: text('reason'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [uniqueIndex('credit_ledger_idempotency_key').on(table.idempotencyKey), index('credit_ledger_user_id_idx').on(table.userId, table.id)],
);

/** Credits held for one platform-paid call between authorize and settle / release. */
export const creditReservations = pgTable(
  'credit_reservations',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    status: text('status', { enum: ['held', 'settled', 'released'] }).notNull().default('held'),
    amountMicro: bigint('amount_micro', { mode: 'number' }).notNull(),
    /** The part of the hold taken from today's daily credits (given back there first). */
    dailyPartMicro: bigint('daily_part_micro', { mode: 'number' }).notNull().default(0),
    chargedMicro: bigint('charged_micro', { mode: 'number' }).notNull().default(0),
    service: text('service').notNull(),
    provider: text('provider').notNull(),
    model: text('model'),
    idempotencyKey: text('idempotency_key'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    endedAt: timestamp('ended_at', { withTimezone: true }),
  },
  (table) => [
    uniqueIndex('credit_reservations_idempotency_key').on(table.userId, table.idempotencyKey),
    index('credit_reservations_held_idx').on(table.expiresAt).where(sql`status = 'held'`),
  ],
);

export type WalletRow = typeof wallets.$inferSelect;
export type LedgerRow = typeof creditLedger.$inferSelect;
export type ReservationRow = typeof creditReservations.$inferSelect;
