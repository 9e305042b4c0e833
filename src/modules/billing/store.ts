import { and, asc, desc, eq, lt, type SQL } from 'drizzle-orm';
import { sql } from '../../infra/db/sql.js';
import type { Executor } from '../../infra/db/database.js';
import { RELAXED_COMMIT } from '../../infra/db/relaxed-commit.js';
import { plans } from '../../infra/db/schema.js';
import { creditLedger, creditReservations, wallets, type LedgerKind, type LedgerRow, type ReservationRow, type WalletRow } from './tables.js';

export type PlanRow = typeof plans.$inferSelect;
export type PlanInsert = typeof plans.$inferInsert;

function rowsOf<T>(result: unknown): T[] {
  return (result as { rows: T[] }).rows;
}

/** Postgres error code of a unique-constraint violation (drizzle may wrap the driver's error). */
export function isUniqueViolation(error: unknown): boolean {
  for (let current = error as { code?: unknown; cause?: unknown } | undefined, depth = 0; current && depth < 4; current = current.cause as typeof current, depth += 1) {
    if (current.code === '23505') return true;
  }
  return false;
}

// ---- plans ----

export async function listPlans(db: Executor, options: { publicOnly: boolean }): Promise<PlanRow[]> {
  const query = db.select().from(plans);
  return (options.publicOnly ? query.where(eq(plans.public, true)) : query).orderBy(asc(plans.sortOrder), asc(plans.id));
}

export async function findPlan(db: Executor, planId: string): Promise<PlanRow | undefined> {
  const [row] = await db.select().from(plans).where(eq(plans.id, planId)).limit(1);
  return row;
}

export async function insertPlan(db: Executor, values: PlanInsert): Promise<PlanRow | undefined> {
  const [row] = await db.insert(plans).values(values).onConflictDoNothing().returning();
  return row;
}

export async function updatePlan(db: Executor, planId: string, changes: Partial<PlanInsert>): Promise<PlanRow | undefined> {
  const [row] = await db
    .update(plans)
    .set({ ...changes, updatedAt: new Date() })
    .where(eq(plans.id, planId))
    .returning();
  return row;
}

// ---- wallets ----

export async function findWallet(db: Executor, userId: string): Promise<WalletRow | undefined> {
  const [row] = await db.select().from(wallets).where(eq(wallets.userId, userId)).limit(1);
  return row;
}

/**
 * The lazy daily refresh, on the first use of a UTC day: today's daily credits are topped up to
 * the plan's amount (unused ones never stack beyond it). Creates the wallet on first sight. One
 * transaction with the wallet row locked, so concurrent first uses refresh once.
 */
export async function refreshDaily(db: Executor, userId: string, today: string, dailyMicro: number): Promise<WalletRow> {
  return db.transaction(async (transaction) => {
    await transaction.insert(wallets).values({ userId }).onConflictDoNothing();
    const [wallet] = await transaction.select().from(wallets).where(eq(wallets.userId, userId)).for('update');
    if (!wallet) throw new Error('wallet vanished');
    if (wallet.dailyRefreshedOn === today) return wallet;
    // Down to the plan's amount (a downgrade) but never below zero; up to it when unused credits are fewer.
    const amount = Math.max(dailyMicro - wallet.dailyMicro, -wallet.balanceMicro);
    const balance = wallet.balanceMicro + amount;
    const daily = Math.min(Math.max(wallet.dailyMicro + amount, 0), dailyMicro, balance);
    const [updated] = await transaction
      .update(wallets)
      .set({ balanceMicro: balance, dailyMicro: daily, dailyRefreshedOn: today, updatedAt: new Date() })
      .where(eq(wallets.userId, userId))
      .returning();
    if (amount !== 0) {
      await transaction.insert(creditLedger).values({
        userId,
        kind: 'daily_refresh',
        amountMicro: amount,
        balanceAfterMicro: balance,
        idempotencyKey: `daily:${userId}:${today}`,
        reason: `daily credits for ${today}`,
      });
    }
    return updated!;
  });
}

export interface ReserveInput {
  reservationId: string;
  userId: string;
  amountMicro: number;
  today: string;
  service: string;
  provider: string;
  model: string | undefined;
  idempotencyKey: string | undefined;
  expiresAt: Date;
  /** What the balance must still hold after this amount (credits this process promised to calls under way; see BillingService.expectCovered). */
  keepMicro?: number;
}

/**
 * Holds credits for one call: one statement (so one transaction) that debits the wallet only where
 * the balance covers the amount — a conditional UPDATE the row lock serialises, so concurrent
 * reservations can never overspend — and writes the reservation and its ledger entry.
 *
 * Either way it answers with a balance and the user's newest ledger entry id as one consistent pair:
 * when held, the balance after this hold and its entry; when not (the balance does not cover it or
 * today's refresh has not happened yet), the wallet's balance and newest entry as of the statement's
 * snapshot. Undefined only when the user has no wallet.
 *
 * Its commit does not wait for the disk (RELAXED_COMMIT): nothing acknowledged rests on a hold until
 * the turn's own write — a synchronous commit that carries the hold to disk with it — and a hold lost
 * in a database crash belongs to a call that failed with it, nothing charged. So a streamed answer's
 * first token, which waits for the hold, does not also wait for a WAL flush (issue 14, thirteenth pass).
 * Run it as its own statement (the warm-up's, inside a transaction always rolled back, is the one exception).
 */
export async function reserve(db: Executor, input: ReserveInput): Promise<{ held: boolean; balanceMicro: number; entryId: number } | undefined> {
  const result = await db.execute(reserveStatement(input));
  const row = rowsOf<{ held: boolean; balance: string | number; entry_id: string | number }>(result)[0];
  return row ? { held: row.held, balanceMicro: Number(row.balance), entryId: Number(row.entry_id) } : undefined;
}

/** The statement of reserve (exported so tests can compare how it is built). */
export function reserveStatement(input: ReserveInput): SQL {
  return sql`
    WITH debit AS (
      UPDATE wallets SET balance_micro = balance_micro - ${input.amountMicro}::bigint, reserved_micro = reserved_micro + ${input.amountMicro}::bigint, updated_at = now()
      WHERE user_id = ${input.userId}::uuid AND balance_micro >= ${input.amountMicro + (input.keepMicro ?? 0)}::bigint AND daily_refreshed_on = ${input.today}::date
      RETURNING balance_micro
    ), hold AS (
      INSERT INTO credit_reservations (id, user_id, status, amount_micro, service, provider, model, idempotency_key, expires_at)
      SELECT ${input.reservationId}::uuid, ${input.userId}::uuid, 'held', ${input.amountMicro}::bigint, ${input.service}::text, ${input.provider}::text, ${input.model ?? null}::text, ${input.idempotencyKey ?? null}::text, ${input.expiresAt.toISOString()}::timestamptz
      FROM debit RETURNING id
    ), entry AS (
      INSERT INTO credit_ledger (user_id, kind, amount_micro, balance_after_micro, idempotency_key, reservation_id, reference)
      SELECT ${input.userId}::uuid, 'reserve', ${-input.amountMicro}::bigint, debit.balance_micro, ${`reserve:${input.reservationId}`}::text, hold.id, ${`${input.service}:${input.provider}${input.model ? `:${input.model}` : ''}`}::text
      FROM debit, hold RETURNING id
    ), ${RELAXED_COMMIT}
    SELECT true AS held, debit.balance_micro AS balance, entry.id AS entry_id FROM debit, entry, relaxed_commit
    UNION ALL
    SELECT false, wallets.balance_micro, coalesce((SELECT max(id) FROM credit_ledger WHERE user_id = ${input.userId}::uuid), 0)
    FROM wallets WHERE wallets.user_id = ${input.userId}::uuid AND NOT EXISTS (SELECT 1 FROM debit)`;
}

/**
 * Ends a held reservation: `chargedMicro` (at most the hold) is spent — from today's daily
 * credits first — and the rest goes back to the balance. One statement; only a reservation still
 * `held` changes, so settling or releasing twice does nothing the second time.
 */
export async function endReservation(
  db: Executor,
  reservationId: string,
  outcome: { kind: 'settle' | 'release'; chargedMicro: number; reason?: string | undefined },
): Promise<{ ended: boolean; chargedMicro: number }> {
  const ending = endReservationCtes(reservationId, outcome, '');
  const result = await db.execute(sql`WITH ${sql.join(ending.ctes, sql`, `)} SELECT ${ending.chargedMicro} AS charged_micro WHERE EXISTS (SELECT 1 FROM entry)`);
  const row = rowsOf<{ charged_micro: string | number }>(result)[0];
  return row ? { ended: true, chargedMicro: Number(row.charged_micro) } : { ended: false, chargedMicro: 0 };
}

/**
 * Ending a held reservation as data-modifying CTEs (`<prefix>ended`, `<prefix>credit`,
 * `<prefix>entry`): the reservation is marked settled (charging at most its amount) or released,
 * the wallet gets back what was not charged, and the ledger records it — all only while the
 * reservation is still held (the stale-reservation job may have released it). `chargedMicro` is
 * the amount charged, as an expression (NULL when nothing was ended).
 */
export function endReservationCtes(
  reservationId: string,
  outcome: { kind: 'settle' | 'release'; chargedMicro: number; reason?: string | undefined },
  prefix: '' | 'settle_',
): { ctes: SQL[]; chargedMicro: SQL } {
  const status = outcome.kind === 'settle' ? 'settled' : 'released';
  const charged = outcome.kind === 'settle' ? Math.max(0, Math.round(outcome.chargedMicro)) : 0;
  const ended = sql.raw(`${prefix}ended`);
  const credit = sql.raw(`${prefix}credit`);
  const entry = sql.raw(`${prefix}entry`);
  return {
    ctes: [
      sql`${ended} AS (
      UPDATE credit_reservations
      SET status = ${status}::text, charged_micro = LEAST(amount_micro, ${charged}::bigint), ended_at = now(),
          idempotency_key = CASE WHEN ${status}::text = 'released' THEN NULL ELSE idempotency_key END
      WHERE id = ${reservationId}::uuid AND status = 'held'
      RETURNING user_id, amount_micro, charged_micro
    )`,
      sql`${credit} AS (
      UPDATE wallets SET balance_micro = wallets.balance_micro + ${ended}.amount_micro - ${ended}.charged_micro,
        reserved_micro = wallets.reserved_micro - ${ended}.amount_micro,
        daily_micro = GREATEST(wallets.daily_micro - ${ended}.charged_micro, 0), updated_at = now()
      FROM ${ended} WHERE wallets.user_id = ${ended}.user_id
      RETURNING wallets.balance_micro
    )`,
      sql`${entry} AS (
      INSERT INTO credit_ledger (user_id, kind, amount_micro, balance_after_micro, idempotency_key, reservation_id, reason)
      SELECT ${ended}.user_id, ${outcome.kind}::text, ${ended}.amount_micro - ${ended}.charged_micro, ${credit}.balance_micro, ${`${outcome.kind}:${reservationId}`}::text, ${reservationId}::uuid, ${outcome.reason?.slice(0, 500) ?? null}::text
      FROM ${ended}, ${credit} RETURNING id
    )`,
    ],
    chargedMicro: sql`(SELECT ${ended}.charged_micro FROM ${ended})`,
  };
}

export async function findReservationByKey(db: Executor, userId: string, idempotencyKey: string): Promise<ReservationRow | undefined> {
  const [row] = await db
    .select()
    .from(creditReservations)
    .where(and(eq(creditReservations.userId, userId), eq(creditReservations.idempotencyKey, idempotencyKey)))
    .limit(1);
  return row;
}

export async function staleReservationIds(db: Executor, now: Date, limit: number): Promise<string[]> {
  const rows = await db
    .select({ id: creditReservations.id })
    .from(creditReservations)
    .where(and(eq(creditReservations.status, 'held'), lt(creditReservations.expiresAt, now)))
    .orderBy(asc(creditReservations.expiresAt))
    .limit(limit);
  return rows.map((row) => row.id);
}

export interface EntryInput {
  userId: string;
  kind: LedgerKind;
  /** Signed: positive adds to the balance. */
  amountMicro: number;
  idempotencyKey: string;
  reference?: string | null | undefined;
  reason?: string | null | undefined;
}

/**
 * A credit or debit outside the reserve/settle cycle (grants, purchases, refunds, adjustments). A
 * debit takes at most the balance (`clamp`) or fails (returns the shortfall without writing). A
 * repeated idempotency key returns the first entry.
 *
 * One statement, so one round trip and one atomic change: the wallet row is locked (FOR UPDATE,
 * which in READ COMMITTED reads the newest committed balance), the amount is decided from that
 * balance, the ledger entry is inserted — `ON CONFLICT DO NOTHING` on its unique idempotency key —
 * and the wallet is updated only when that entry was written. A key that raced in from another
 * request therefore moves nothing and aborts nothing (the caller's transaction stays usable). A
 * wallet seen for the first time is created, then the statement runs again.
 */
export async function applyEntry(
  db: Executor,
  input: EntryInput,
  options: { clamp: boolean },
): Promise<{ entry: LedgerRow; duplicate: boolean; shortfallMicro: number } | { entry: undefined; duplicate: false; shortfallMicro: number; balanceMicro: number }> {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const result = await db.execute(sql`
      WITH cur AS (
        SELECT user_id, balance_micro FROM wallets WHERE user_id = ${input.userId}::uuid FOR UPDATE
      ), calc AS (
        SELECT user_id, balance_micro AS before,
          CASE WHEN ${input.amountMicro}::bigint >= 0 OR balance_micro >= -${input.amountMicro}::bigint THEN ${input.amountMicro}::bigint
               WHEN ${options.clamp}::boolean THEN -balance_micro
               ELSE NULL END AS applied
        FROM cur
      ), entry AS (
        INSERT INTO credit_ledger (user_id, kind, amount_micro, balance_after_micro, idempotency_key, reference, reason)
        SELECT user_id, ${input.kind}::text, applied, before + applied, ${input.idempotencyKey}::text, ${input.reference ?? null}::text, ${input.reason ?? null}::text
        FROM calc WHERE applied IS NOT NULL
        ON CONFLICT DO NOTHING
        RETURNING id, user_id, kind, amount_micro, balance_after_micro, idempotency_key, reservation_id, reference, reason, created_at
      ), moved AS (
        UPDATE wallets SET balance_micro = entry.balance_after_micro, daily_micro = LEAST(wallets.daily_micro, entry.balance_after_micro), updated_at = now()
        FROM entry WHERE wallets.user_id = entry.user_id
        RETURNING wallets.user_id
      )
      SELECT calc.before, calc.applied, entry.*, (SELECT count(*) FROM moved) AS moved
      FROM calc LEFT JOIN entry ON true`);
    const row = rowsOf<{
      before: string | number;
      applied: string | number | null;
      id: string | number | null;
      user_id: string;
      kind: LedgerKind;
      amount_micro: string | number;
      balance_after_micro: string | number;
      idempotency_key: string;
      reservation_id: string | null;
      reference: string | null;
      reason: string | null;
      created_at: Date | string;
      moved: string | number;
    }>(result)[0];
    if (!row) {
      // No wallet yet: create it (empty) and decide again.
      await db.insert(wallets).values({ userId: input.userId }).onConflictDoNothing();
      continue;
    }
    const before = Number(row.before);
    const shortfall = input.amountMicro < 0 && -input.amountMicro > before ? -input.amountMicro - before : 0;
    if (row.id !== null && row.id !== undefined) {
      if (Number(row.moved) !== 1) throw new Error('ledger entry written without its wallet change');
      const entry: LedgerRow = {
        id: Number(row.id),
        userId: row.user_id,
        kind: row.kind,
        amountMicro: Number(row.amount_micro),
        balanceAfterMicro: Number(row.balance_after_micro),
        idempotencyKey: row.idempotency_key,
        reservationId: row.reservation_id,
        reference: row.reference,
        reason: row.reason,
        createdAt: row.created_at instanceof Date ? row.created_at : new Date(row.created_at),
      };
      return { entry, duplicate: false, shortfallMicro: shortfall };
    }
    // Nothing written: the key was used before (the first entry is the answer), or the balance is short.
    const first = await findEntryByKey(db, input.idempotencyKey);
    if (first) return { entry: first, duplicate: true, shortfallMicro: 0 };
    return { entry: undefined, duplicate: false as const, shortfallMicro: shortfall, balanceMicro: before };
  }
  throw new Error('wallet vanished');
}

export async function findEntryByKey(db: Executor, idempotencyKey: string): Promise<LedgerRow | undefined> {
  const [row] = await db.select().from(creditLedger).where(eq(creditLedger.idempotencyKey, idempotencyKey)).limit(1);
  return row;
}

export async function listEntries(db: Executor, userId: string, options: { limit: number; beforeId: number | undefined }): Promise<LedgerRow[]> {
  const condition = options.beforeId === undefined ? eq(creditLedger.userId, userId) : and(eq(creditLedger.userId, userId), lt(creditLedger.id, options.beforeId));
  return db.select().from(creditLedger).where(condition).orderBy(desc(creditLedger.id)).limit(options.limit);
}

export interface LedgerMismatch {
  userId: string;
  balanceMicro: number;
  ledgerSumMicro: number;
  reservedMicro: number;
  heldMicro: number;
}

/** Wallets whose balance is not the sum of their ledger, or whose reserved total is not their open holds. */
export async function checkLedger(db: Executor): Promise<{ wallets: number; entries: number; mismatches: LedgerMismatch[] }> {
  const mismatches = rowsOf<{ user_id: string; balance_micro: string; ledger_sum: string; reserved_micro: string; held: string }>(
    await db.execute(sql`
      SELECT coalesce(w.user_id, l.user_id) AS user_id, coalesce(w.balance_micro, 0) AS balance_micro, coalesce(l.total, 0) AS ledger_sum,
             coalesce(w.reserved_micro, 0) AS reserved_micro, coalesce(r.held, 0) AS held
      FROM wallets w
      FULL JOIN (SELECT user_id, sum(amount_micro) AS total FROM credit_ledger GROUP BY user_id) l ON l.user_id = w.user_id
      LEFT JOIN (SELECT user_id, sum(amount_micro) AS held FROM credit_reservations WHERE status = 'held' GROUP BY user_id) r ON r.user_id = coalesce(w.user_id, l.user_id)
      WHERE coalesce(w.balance_micro, 0) <> coalesce(l.total, 0) OR coalesce(w.reserved_micro, 0) <> coalesce(r.held, 0)
      LIMIT 1000`),
  );
  const [counts] = rowsOf<{ wallets: string; entries: string }>(
    await db.execute(sql`SELECT (SELECT count(*) FROM wallets) AS wallets, (SELECT count(*) FROM credit_ledger) AS entries`),
  );
  return {
    wallets: Number(counts?.wallets ?? 0),
    entries: Number(counts?.entries ?? 0),
    mismatches: mismatches.map((row) => ({
      userId: row.user_id,
      balanceMicro: Number(row.balance_micro),
      ledgerSumMicro: Number(row.ledger_sum),
      reservedMicro: Number(row.reserved_micro),
      heldMicro: Number(row.held),
    })),
  };
}
