import { and, asc, desc, eq } from 'drizzle-orm';
import { sql } from '../../infra/db/sql.js';
import type { Executor } from '../../infra/db/database.js';
import { paymentTransactions, products, stripeEvents, subscriptions, type PaymentRow, type ProductRow, type SubscriptionRow } from './tables.js';

export async function listProducts(db: Executor, options: { includeInactive: boolean }): Promise<ProductRow[]> {
  return db
    .select()
    .from(products)
    .where(options.includeInactive ? undefined : eq(products.active, true))
    .orderBy(asc(products.sortOrder), asc(products.id));
}

export async function findProduct(db: Executor, id: string): Promise<ProductRow | undefined> {
  const [row] = await db.select().from(products).where(eq(products.id, id)).limit(1);
  return row;
}

export async function insertProduct(db: Executor, values: typeof products.$inferInsert): Promise<ProductRow | undefined> {
  const [row] = await db.insert(products).values(values).onConflictDoNothing().returning();
  return row;
}

export async function updateProduct(db: Executor, id: string, changes: Partial<typeof products.$inferInsert>): Promise<ProductRow | undefined> {
  const [row] = await db
    .update(products)
    .set({ ...changes, updatedAt: new Date() })
    .where(eq(products.id, id))
    .returning();
  return row;
}

/** Claims an event id; false when it was already handled (or is being handled by a concurrent delivery, which then wins). */
export async function claimEvent(db: Executor, id: string, type: string): Promise<boolean> {
  const rows = await db.insert(stripeEvents).values({ id, type, outcome: 'processing' }).onConflictDoNothing().returning({ id: stripeEvents.id });
  return rows.length === 1;
}

export async function recordEventOutcome(db: Executor, id: string, outcome: string): Promise<void> {
  await db.update(stripeEvents).set({ outcome }).where(eq(stripeEvents.id, id));
}

export async function insertPayment(db: Executor, values: typeof paymentTransactions.$inferInsert): Promise<PaymentRow | undefined> {
  const [row] = await db.insert(paymentTransactions).values(values).onConflictDoNothing().returning();
  return row;
}

export async function findPaymentByPaymentIntent(db: Executor, paymentIntentId: string): Promise<PaymentRow | undefined> {
  // The row is locked: two refund events of one charge are applied one after the other.
  const [row] = await db.select().from(paymentTransactions).where(eq(paymentTransactions.paymentIntentId, paymentIntentId)).orderBy(desc(paymentTransactions.createdAt)).limit(1).for('update');
  return row;
}

export async function updatePayment(db: Executor, id: string, changes: Partial<typeof paymentTransactions.$inferInsert>): Promise<void> {
  await db
    .update(paymentTransactions)
    .set({ ...changes, updatedAt: new Date() })
    .where(eq(paymentTransactions.id, id));
}

export async function listPayments(db: Executor, userId: string, limit: number): Promise<PaymentRow[]> {
  return db.select().from(paymentTransactions).where(eq(paymentTransactions.userId, userId)).orderBy(desc(paymentTransactions.createdAt)).limit(limit);
}

export async function findSubscription(db: Executor, id: string): Promise<SubscriptionRow | undefined> {
  const [row] = await db.select().from(subscriptions).where(eq(subscriptions.id, id)).limit(1);
  return row;
}

export async function upsertSubscription(db: Executor, values: typeof subscriptions.$inferInsert): Promise<SubscriptionRow> {
  const { id: _id, userId: _userId, createdAt: _createdAt, ...changes } = values;
  const [row] = await db
    .insert(subscriptions)
    .values(values)
    .onConflictDoUpdate({ target: subscriptions.id, set: { ...changes, updatedAt: new Date() } })
    .returning();
  return row!;
}

/** Another subscription of this user that still grants a plan (so cancelling one does not demote). */
export async function otherLiveSubscription(db: Executor, userId: string, exceptId: string): Promise<SubscriptionRow | undefined> {
  const [row] = await db
    .select()
    .from(subscriptions)
    .where(and(eq(subscriptions.userId, userId), sql`${subscriptions.id} <> ${exceptId}`, sql`${subscriptions.status} IN ('active', 'trialing', 'past_due')`))
    .orderBy(desc(subscriptions.updatedAt))
    .limit(1);
  return row;
}
