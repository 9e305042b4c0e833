import { randomUUID } from 'node:crypto';
import { type SQL } from 'drizzle-orm';
import { sql } from '../../infra/db/sql.js';
import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import { BoundedMap } from '../../infra/bounded-map.js';
import type { Events } from '../../infra/cache/index.js';
import type { Database, Executor } from '../../infra/db/database.js';
import { ConflictError, InsufficientCreditsError, NotFoundError, ValidationError } from '../../infra/http/errors.js';
import type { MeteredService } from '../gateway/billing-port.js';
import type { UserRow } from '../identity/store.js';
import { utcDay } from './limits.js';
import { PlanCatalog } from './plan-catalog.js';
import { creditsFromMicro, MICRO_PER_CREDIT } from './pricing.js';
import * as store from './store.js';
import type { PlanInsert, PlanRow } from './store.js';
import type { LedgerRow, WalletRow } from './tables.js';

export type { PlanRow } from './store.js';

/** The largest single credit movement accepted (1 billion credits): anything larger is a typo or an attack. */
export const MAX_AMOUNT_MICRO = 1_000_000_000 * MICRO_PER_CREDIT;

export const PLAN_FEATURES = ['long_term_memory', 'voice', 'image_generation', 'platform_keys'] as const;
export type PlanFeatureName = (typeof PLAN_FEATURES)[number];

export interface BillingServiceDependencies {
  config: Readonly<Config>;
  db: Database;
  logger: Logger;
  /** The clock (tests move it across UTC midnight). */
  now?: () => Date;
  /** Cross-replica invalidation of the per-process plan cache (absent: this process only). */
  events?: Events | undefined;
  /** The plans (shared with the modules that read them); absent: one of this service's own. */
  plans?: PlanCatalog | undefined;
}

export interface GrantInput {
  userId: string;
  /** Micro-credits; positive. A refund takes this much back (down to zero, never below). */
  amountMicro: number;
  kind: 'grant' | 'purchase' | 'refund' | 'adjustment';
  /** Unique per movement: a repeat returns the first result and moves nothing. */
  idempotencyKey: string;
  reference?: string | undefined;
  reason?: string | undefined;
  /** The caller's transaction (e.g. the market's, so a payment and its credits commit together). */
  executor?: Executor | undefined;
}

export interface GrantResult {
  entry: LedgerRow;
  /** True when this idempotency key was used before: nothing moved this time. */
  duplicate: boolean;
  balanceMicro: number;
  /** For a refund: what could not be taken back because the balance was spent. */
  shortfallMicro: number;
}

export interface HeldCredits {
  reservationId: string;
  amountMicro: number;
}

/**
 * Plans, wallets and the credit ledger. Every balance change is a ledger entry written in the
 * same transaction (or single statement) as the wallet row, under a unique idempotency key.
 */
export class BillingService {
  /** Users whose daily refresh already ran today in this process: saves a transaction per call. */
  private readonly refreshed = new Map<string, string>();
  /**
   * Each user's balance as this process last saw it (after its last hold here): with `underway`,
   * what `expectCovered` decides on. Only a guess — other replicas, grants and settles move the
   * real balance — so the database still decides every hold.
   */
  private readonly seenBalance = new BoundedMap<string, { balanceMicro: number; entryId: number }>(50_000);
  /** Per user, the micro-credits of this process's holds under way or promised by `expectCovered` and not written yet. */
  private readonly underway = new Map<string, number>();
  /**
   * Per user, the part of `underway` promised by `expectCovered` (calls already on their way, their
   * holds written as they leave). A hold written first leaves that much in the balance: otherwise a
   * request that came later could take what was promised, and a call already made would then be
   * refused its hold (issue 14, fourteenth pass: on a slow machine, 1–6 of 1,000 burst turns).
   */
  private readonly promised = new Map<string, number>();
  /** Plans by id, cached per process: every metered call reads its plan; changes are published to every replica. */
  readonly plans: PlanCatalog;

  constructor(private readonly dependencies: BillingServiceDependencies) {
    this.plans = dependencies.plans ?? new PlanCatalog({ db: dependencies.db, events: dependencies.events });
  }

  async startCache(): Promise<void> {
    await this.plans.start();
  }

  async closeCache(): Promise<void> {
    await this.plans.close();
  }

  now(): Date {
    return this.dependencies.now?.() ?? new Date();
  }

  // ---- plans ----

  listPlans(options: { publicOnly: boolean }): Promise<PlanRow[]> {
    return this.plans.list(options);
  }

  async getPlan(planId: string): Promise<PlanRow> {
    const plan = await this.plans.findIn(this.dependencies.db, planId);
    if (!plan) throw new NotFoundError('Plan');
    return plan;
  }

  /** The user's plan; a user on a plan that was removed is treated as on `free`. */
  async planFor(user: UserRow): Promise<PlanRow> {
    const plan = (await this.plans.find(user.planId)) ?? (await this.plans.find('free'));
    if (!plan) throw new Error(`neither plan "${user.planId}" nor "free" exists`);
    return plan;
  }

  async createPlan(values: PlanInsert & { id: string }): Promise<PlanRow> {
    const created = await this.plans.create(values);
    if (!created) throw new ConflictError(`A plan "${values.id}" already exists: change it with PATCH /v1/admin/plans/${values.id}.`, { extra: { field: 'id' } });
    return created;
  }

  async updatePlan(planId: string, changes: Partial<PlanInsert>): Promise<PlanRow> {
    const updated = await this.plans.update(planId, changes);
    if (!updated) throw new NotFoundError('Plan');
    return updated;
  }

  // ---- wallet ----

  /** The wallet after today's lazy refresh (created on first sight), with the plan it follows. */
  async wallet(user: UserRow): Promise<{ wallet: WalletRow; plan: PlanRow; nextRefreshAt: Date }> {
    const plan = await this.planFor(user);
    const now = this.now();
    const wallet = (await this.refresh(user.id, plan, utcDay(now), true))!;
    return { wallet, plan, nextRefreshAt: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1)) };
  }

  private async refresh(userId: string, plan: PlanRow, today: string, force: boolean): Promise<WalletRow | undefined> {
    if (!force && this.refreshed.get(userId) === today) return undefined;
    const wallet = await store.refreshDaily(this.dependencies.db, userId, today, plan.dailyCredits * MICRO_PER_CREDIT);
    if (this.refreshed.size > 50_000) this.refreshed.clear();
    this.refreshed.set(userId, today);
    return wallet;
  }

  async transactions(userId: string, options: { limit: number; cursor: string | undefined }): Promise<{ data: LedgerRow[]; nextCursor: string | null }> {
    let beforeId: number | undefined;
    if (options.cursor !== undefined) {
      beforeId = Number(Buffer.from(options.cursor, 'base64url').toString('utf8'));
      if (!Number.isSafeInteger(beforeId) || beforeId < 1) throw new ValidationError('query.cursor', 'The cursor is not one this API gave out.');
    }
    const rows = await store.listEntries(this.dependencies.db, userId, { limit: options.limit + 1, beforeId });
    const page = rows.slice(0, options.limit);
    const last = page.at(-1);
    return { data: page, nextCursor: rows.length > options.limit && last ? Buffer.from(String(last.id), 'utf8').toString('base64url') : null };
  }

  /**
   * Adds credits (grant, purchase, positive adjustment) or takes them back (refund, negative
   * adjustment). The market module calls this for purchases and refunds. A refund takes at most
   * the balance (never below zero) and reports the shortfall; a negative adjustment larger than
   * the balance is refused (422). Repeating an idempotency key moves nothing and returns the first entry.
   */
  async grant(input: GrantInput): Promise<GrantResult> {
    if (!Number.isSafeInteger(input.amountMicro) || input.amountMicro === 0 || Math.abs(input.amountMicro) > MAX_AMOUNT_MICRO) {
      throw new ValidationError('amount', `The amount must be a non-zero whole number of micro-credits up to ${MAX_AMOUNT_MICRO}.`);
    }
    if (input.kind !== 'adjustment' && input.amountMicro < 0) throw new ValidationError('amount', `A ${input.kind} amount is positive.`);
    if (!input.idempotencyKey || input.idempotencyKey.length > 300) throw new ValidationError('idempotency_key', 'An idempotency key of 1 to 300 characters is required.');
    const signed = input.kind === 'refund' ? -input.amountMicro : input.amountMicro;
    const result = await store.applyEntry(
      input.executor ?? this.dependencies.db,
      { userId: input.userId, kind: input.kind, amountMicro: signed, idempotencyKey: `${input.kind}:${input.idempotencyKey}`, reference: input.reference, reason: input.reason },
      { clamp: input.kind === 'refund' },
    );
    if (!result.entry) {
      throw new ValidationError('amount', `The balance is ${creditsFromMicro(result.balanceMicro)} credits: it cannot go below zero.`, {
        extra: { balance: creditsFromMicro(result.balanceMicro), balance_micro: result.balanceMicro },
      });
    }
    return { entry: result.entry, duplicate: result.duplicate, balanceMicro: result.entry.balanceAfterMicro, shortfallMicro: result.shortfallMicro };
  }

  /**
   * The start-up warm-up's billing of a turn (src/modules/warm-up.ts) on `db`, the warm-up's
   * transaction, for its throwaway user: the plan read, today's refresh (the wallet made), a hold and
   * its settle — the statements and foreign-key checks of a paid turn. Through the store only: no
   * cached balance or refresh day of this process changes.
   */
  async warmUp(db: Executor, userId: string, planId: string | undefined): Promise<void> {
    const { config } = this.dependencies;
    await this.plans.findIn(db, planId ?? 'free');
    const now = this.now();
    const today = utcDay(now);
    await store.refreshDaily(db, userId, today, MICRO_PER_CREDIT);
    const reservationId = randomUUID();
    const reserved = await store.reserve(db, {
      reservationId,
      userId,
      amountMicro: 1,
      today,
      service: 'chat',
      provider: 'openrouter',
      model: undefined,
      idempotencyKey: undefined,
      expiresAt: new Date(now.getTime() + config.billing.reservationTtlMs),
    });
    if (!reserved?.held) throw new Error('the warm-up could not hold a credit on its own wallet');
    await store.endReservation(db, reservationId, { kind: 'settle', chargedMicro: 1 });
  }

  // ---- reservations ----

  /**
   * Holds `amountMicro` for one platform-paid call (after today's lazy refresh). 402 when the
   * balance does not cover it; 409 when a call with the same idempotency key is still running; a
   * call whose key was already settled is not charged again (returns `alreadySettled`).
   */
  async hold(
    user: UserRow,
    plan: PlanRow,
    call: { amountMicro: number; service: MeteredService; provider: string; model: string | undefined; idempotencyKey: string | undefined },
    options: { expected?: boolean } = {},
  ): Promise<HeldCredits | { alreadySettled: true }> {
    // Counted as under way until it is written or refused (an expected one was counted by expectCovered).
    if (!options.expected) count(this.underway, user.id, call.amountMicro);
    try {
      return await this.writeHold(user, plan, call, options.expected === true);
    } finally {
      count(this.underway, user.id, -call.amountMicro);
      if (options.expected) count(this.promised, user.id, -call.amountMicro);
    }
  }

  private async writeHold(
    user: UserRow,
    plan: PlanRow,
    call: { amountMicro: number; service: MeteredService; provider: string; model: string | undefined; idempotencyKey: string | undefined },
    expected: boolean,
  ): Promise<HeldCredits | { alreadySettled: true }> {
    const { db, config } = this.dependencies;
    // A promised hold takes its own; any other leaves what is promised (read anew each attempt: promises end as their holds are written).
    const keep = () => (expected ? 0 : (this.promised.get(user.id) ?? 0));
    const now = this.now();
    const today = utcDay(now);
    await this.refresh(user.id, plan, today, false);
    const idempotencyKey = call.idempotencyKey ? `${call.service}:${call.provider}:${call.idempotencyKey}`.slice(0, 400) : undefined;
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const reservationId = randomUUID();
      try {
        const reserved = await store.reserve(db, {
          reservationId,
          userId: user.id,
          amountMicro: call.amountMicro,
          today,
          service: call.service,
          provider: call.provider,
          model: call.model,
          idempotencyKey,
          expiresAt: new Date(now.getTime() + config.billing.reservationTtlMs),
          keepMicro: keep(),
        });
        // The newest figure wins (the wallet's row lock orders a user's ledger entries), whatever order the answers came in:
        // a refusal's snapshot too, so the late answer of an earlier hold never stands for a balance already spent.
        if (reserved) this.see(user.id, reserved.balanceMicro, reserved.entryId);
        if (reserved?.held) return { reservationId, amountMicro: call.amountMicro };
      } catch (error) {
        if (!idempotencyKey || !store.isUniqueViolation(error)) throw error;
        const first = await store.findReservationByKey(db, user.id, idempotencyKey);
        if (first?.status === 'settled') return { alreadySettled: true };
        if (first?.status === 'held') throw new ConflictError('A request with this Idempotency-Key is still being processed; retry when it has finished.', { extra: { field: 'Idempotency-Key' } });
        continue; // released in the meantime: its key is free again
      }
      // Not held: either the day turned since this process last refreshed, or the balance is short.
      const wallet = await this.refresh(user.id, plan, today, true);
      const kept = keep();
      if (wallet && wallet.dailyRefreshedOn === today && wallet.balanceMicro < call.amountMicro + kept) throw this.insufficient(promisedAsHeld(wallet, kept), plan, call.amountMicro, now);
    }
    const wallet = (await store.findWallet(db, user.id))!;
    throw this.insufficient(promisedAsHeld(wallet, keep()), plan, call.amountMicro, now);
  }

  /**
   * Whether a hold of `amountMicro` may be written as its call leaves rather than before: only when
   * the balance this process last saw for the user, less every hold of theirs it has under way or
   * promised, is twice the amount or more (a user at the edge of their credits, one not seen yet,
   * or one in a burst of calls is held first, so no vendor call is made for a request then refused).
   * A yes counts the amount as under way: the caller then writes it with `hold(…, { expected: true })`
   * or gives it up with `forgetExpected`.
   */
  expectCovered(userId: string, amountMicro: number): boolean {
    const seen = this.seenBalance.get(userId);
    if (seen === undefined || seen.balanceMicro - (this.underway.get(userId) ?? 0) < 2 * amountMicro) return false;
    count(this.underway, userId, amountMicro);
    count(this.promised, userId, amountMicro);
    return true;
  }

  /** A hold `expectCovered` promised that will not be written (the call ended before it left). */
  forgetExpected(userId: string, amountMicro: number): void {
    count(this.underway, userId, -amountMicro);
    count(this.promised, userId, -amountMicro);
  }

  private see(userId: string, balanceMicro: number, entryId: number): void {
    const seen = this.seenBalance.get(userId);
    if (!seen || seen.entryId < entryId) this.seenBalance.set(userId, { balanceMicro, entryId });
  }

  private insufficient(wallet: WalletRow, plan: PlanRow, estimatedMicro: number, now: Date): InsufficientCreditsError {
    const nextRefresh = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
    return new InsufficientCreditsError(
      `Not enough credits: this request may cost up to ${creditsFromMicro(estimatedMicro)} credits and your balance is ${creditsFromMicro(wallet.balanceMicro)}` +
        `${wallet.reservedMicro > 0 ? ` (${creditsFromMicro(wallet.reservedMicro)} more are held by requests in flight)` : ''}. ` +
        `Your ${plan.name} plan refreshes ${plan.dailyCredits} daily credits at ${nextRefresh.toISOString()}; buy credits (POST /v1/market/buy_credits), ` +
        'upgrade your plan (GET /v1/plans), or add your own provider key (POST /v1/me/provider-keys) to use it at no credit cost.',
      {
        extra: {
          balance: creditsFromMicro(wallet.balanceMicro),
          balance_micro: wallet.balanceMicro,
          reserved_micro: wallet.reservedMicro,
          estimated_cost: creditsFromMicro(estimatedMicro),
          estimated_cost_micro: estimatedMicro,
          plan: plan.id,
          daily_credits: plan.dailyCredits,
          next_refresh_at: nextRefresh.toISOString(),
          get_more: { buy_credits: '/v1/market/buy_credits', plans: '/v1/plans', own_provider_key: '/v1/me/provider-keys' },
        },
      },
    );
  }

  /**
   * Charges `chargedMicro` for a held call and gives the rest back. A charge above the hold (the
   * call used more than estimated) takes the excess from the balance, down to zero at most.
   */
  async settle(held: HeldCredits, userId: string, chargedMicro: number, executor?: Executor): Promise<number> {
    const db = executor ?? this.dependencies.db;
    const charge = Math.max(0, Math.round(chargedMicro));
    const ended = await store.endReservation(db, held.reservationId, { kind: 'settle', chargedMicro: charge });
    if (!ended.ended) return 0;
    let total = ended.chargedMicro;
    const excess = charge - ended.chargedMicro;
    if (excess > 0) {
      const extra = await store.applyEntry(
        db,
        { userId, kind: 'settle', amountMicro: -excess, idempotencyKey: `settle-excess:${held.reservationId}`, reason: 'usage above the estimate' },
        { clamp: true },
      );
      if (extra.entry && !extra.duplicate) total += -extra.entry.amountMicro;
    }
    return total;
  }

  /**
   * `settle` as CTEs of the caller's one statement (see StatementParts), for a charge within the
   * hold; undefined when the charge is above it (the excess is a second ledger entry: use `settle`).
   */
  settleCtes(held: HeldCredits, chargedMicro: number): { ctes: SQL[]; chargedMicro: SQL } | undefined {
    const charge = Math.max(0, Math.round(chargedMicro));
    if (charge > held.amountMicro) return undefined;
    const ending = store.endReservationCtes(held.reservationId, { kind: 'settle', chargedMicro: charge }, 'settle_');
    return { ctes: ending.ctes, chargedMicro: sql`COALESCE(${ending.chargedMicro}, 0)` };
  }

  /** Charges a platform-paid call that had nothing to hold (its estimate was zero): at most the balance. */
  async chargeWithoutHold(userId: string, chargedMicro: number, callId: string, reference: string, executor?: Executor): Promise<number> {
    const charge = Math.max(0, Math.round(chargedMicro));
    if (charge === 0) return 0;
    const result = await store.applyEntry(executor ?? this.dependencies.db, { userId, kind: 'settle', amountMicro: -charge, idempotencyKey: `settle:${callId}`, reference }, { clamp: true });
    return result.entry && !result.duplicate ? -result.entry.amountMicro : 0;
  }

  async release(held: HeldCredits, reason: string): Promise<void> {
    await store.endReservation(this.dependencies.db, held.reservationId, { kind: 'release', chargedMicro: 0, reason });
  }

  /** Releases holds older than their expiry (a process that crashed between reserve and settle). */
  async releaseStale(batchSize = 500): Promise<number> {
    const { db, logger } = this.dependencies;
    const ids = await store.staleReservationIds(db, this.now(), batchSize);
    let released = 0;
    for (const id of ids) {
      const ended = await store.endReservation(db, id, { kind: 'release', chargedMicro: 0, reason: 'stale: never settled' });
      if (ended.ended) released += 1;
    }
    if (released > 0) logger.warn({ released }, 'released stale credit reservations');
    return released;
  }

  checkLedger(): ReturnType<typeof store.checkLedger> {
    return store.checkLedger(this.dependencies.db);
  }
}

/** Whether a plan includes a feature (platform keys live in their own column, which identity reads). */
export function planHasFeature(plan: PlanRow, feature: PlanFeatureName): boolean {
  if (feature === 'platform_keys') return plan.allowsPlatformKeys;
  return plan.features[feature] === true;
}

/** Adds `deltaMicro` to a user's running amount (none kept at zero or below). */
function count(amounts: Map<string, number>, userId: string, deltaMicro: number): void {
  const next = (amounts.get(userId) ?? 0) + deltaMicro;
  if (next > 0) amounts.set(userId, next);
  else amounts.delete(userId);
}

/** A wallet as a refused caller is told of it: credits promised to calls already on their way count as held, not as balance. */
function promisedAsHeld(wallet: WalletRow, promisedMicro: number): WalletRow {
  const moved = Math.min(Math.max(promisedMicro, 0), Math.max(wallet.balanceMicro, 0));
  return moved === 0 ? wallet : { ...wallet, balanceMicro: wallet.balanceMicro - moved, reservedMicro: wallet.reservedMicro + moved };
}
