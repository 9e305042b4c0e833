import { sql } from '../../infra/db/sql.js';
import { bigint, boolean, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { plans, users } from '../../infra/db/schema.js';

/** What the market sells: credit packs and subscriptions, as data (admin API). */
export const products = pgTable('products', {
  id: text('id').primaryKey(),
  kind: text('kind', { enum: ['credit_pack', 'subscription'] }).notNull(),
  name: text('name').notNull(),
  description: text('description'),
  /** Credits of a pack, or a subscription's bonus credits per period (whole credits). */
  credits: integer('credits').notNull(),
  /** Price in the currency's smallest unit (cents). */
  priceCents: integer('price_cents').notNull(),
  currency: text('currency').notNull().default('usd'),
  /** Subscriptions only: the billing period. */
  interval: text('interval', { enum: ['month', 'year'] }),
  /** Subscriptions only: the plan it grants. */
  planId: text('plan_id').references(() => plans.id),
  active: boolean('active').notNull().default(true),
  sortOrder: integer('sort_order').notNull().default(0),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/** Every payment Stripe told us about: a pack, a subscription invoice, and what refunds took back. */
export const paymentTransactions = pgTable(
  'payment_transactions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id').references(() => users.id, { onDelete: 'set null' }),
    provider: text('provider').notNull().default('stripe'),
    kind: text('kind', { enum: ['credit_pack', 'subscription'] }).notNull(),
    productId: text('product_id'),
    checkoutSessionId: text('checkout_session_id'),
    paymentIntentId: text('payment_intent_id'),
    invoiceId: text('invoice_id'),
    subscriptionId: text('subscription_id'),
    customerId: text('customer_id'),
    amountCents: integer('amount_cents').notNull(),
    currency: text('currency').notNull(),
    creditsMicro: bigint('credits_micro', { mode: 'number' }).notNull().default(0),
    status: text('status', { enum: ['paid', 'partially_refunded', 'refunded'] }).notNull(),
    refundedCents: integer('refunded_cents').notNull().default(0),
    /** Credits taken back by refunds, and what could not be taken back (already spent). */
    revokedMicro: bigint('revoked_micro', { mode: 'number' }).notNull().default(0),
    unrecoveredMicro: bigint('unrecovered_micro', { mode: 'number' }).notNull().default(0),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    uniqueIndex('payment_transactions_checkout_session_idx').on(table.checkoutSessionId).where(sql`invoice_id IS NULL`),
    uniqueIndex('payment_transactions_invoice_idx').on(table.invoiceId),
    index('payment_transactions_payment_intent_idx').on(table.paymentIntentId),
    index('payment_transactions_user_idx').on(table.userId, table.createdAt),
  ],
);

/** Webhook events already handled, by Stripe's event id: delivery is at-least-once. */
export const stripeEvents = pgTable('stripe_events', {
  id: text('id').primaryKey(),
  type: text('type').notNull(),
  outcome: text('outcome').notNull(),
  receivedAt: timestamp('received_at', { withTimezone: true }).notNull().defaultNow(),
});

/** A user's Stripe subscription and the plan it grants. */
export const subscriptions = pgTable(
  'subscriptions',
  {
    id: text('id').primaryKey(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    customerId: text('customer_id'),
    productId: text('product_id'),
    planId: text('plan_id').notNull(),
    status: text('status').notNull(),
    cancelAtPeriodEnd: boolean('cancel_at_period_end').notNull().default(false),
    currentPeriodEnd: timestamp('current_period_end', { withTimezone: true }),
    raw: jsonb('raw').$type<Record<string, unknown>>(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [index('subscriptions_user_idx').on(table.userId)],
);

export type ProductRow = typeof products.$inferSelect;
export type PaymentRow = typeof paymentTransactions.$inferSelect;
export type SubscriptionRow = typeof subscriptions.$inferSelect;
