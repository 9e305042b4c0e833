import type { ProviderName } from '../../config.js';
import type { SQL } from 'drizzle-orm';
import type { Executor } from '../../infra/db/database.js';
import type { UserRow } from '../identity/store.js';

/** What the usage ledger calls a kind of work; one row of usage per call. */
export type MeteredService = 'chat' | 'embedding' | 'vision' | 'memory' | 'speech' | 'transcription' | 'image';

/** Plan features a call may need (plans as data; the billing module owns them). */
export type PlanFeature = 'long_term_memory' | 'voice' | 'image_generation' | 'platform_keys';

/** The most a call may use, known before it is made: what a reservation is priced from. */
export interface CostEstimate {
  promptTokens?: number;
  /** The answer's token cap (max_tokens). */
  maxCompletionTokens?: number;
  characters?: number;
  seconds?: number;
  images?: number;
}

/** What a call really used, known after it: what is settled and recorded. */
export interface MeteredUsage {
  model?: string | undefined;
  promptTokens?: number;
  completionTokens?: number;
  characters?: number;
  seconds?: number;
  images?: number;
  /** The vendor's own cost in USD where it reports one; otherwise the price table decides. */
  providerCostUsd?: number | undefined;
}

export interface AuthorizationRequest {
  user: UserRow | undefined;
  service: MeteredService;
  provider: ProviderName;
  model: string | undefined;
  feature: PlanFeature | undefined;
  estimate: CostEstimate;
  /** Who pays: only platform-paid work reserves credits; BYOK work is checked against limits only. */
  paidBy: 'user' | 'platform';
  /** Ties retries of one client request to one charge. */
  idempotencyKey: string | undefined;
  /** Holds a concurrency slot (e.g. a stream) until settle or release. */
  concurrent: boolean;
  /**
   * The caller starts the vendor call before the credit hold is written, asks for it with
   * `Authorization.confirm` as the call leaves, and delivers nothing before it resolves (a chat
   * turn). Billing decides whether to grant that: see `confirm`. Never granted to a call with an
   * `idempotencyKey` (its hold is what finds a retry's first charge).
   */
  holdAlongside?: boolean | undefined;
}

/**
 * A granted call: credits reserved (when the platform pays) and limits counted. Exactly one of
 * settle / release is called; a second call of either is a no-op.
 */
export interface Authorization {
  /**
   * Set when the credit hold is written as the call starts rather than before `authorize` returned
   * (`holdAlongside`, granted where this process last saw the balance at twice the estimate or
   * more): writes it (once) and resolves when it is held, or rejects with the error `authorize`
   * would have thrown (402, 409) — after which the authorization has ended: nothing held, limits
   * given back, settle charges nothing. `settle` writes it first if it was never asked for; a `settle`
   * with an `executor` does not (on the embedded database the hold would wait for the caller's own
   * transaction) and charges the call unheld in that transaction, clamped at the balance.
   */
  confirm?: () => Promise<void>;
  /**
   * Charges the real cost (the unused part of the reservation goes back); returns micro-credits
   * charged. With `executor`, the charge is written in the caller's transaction (a chat turn
   * stores its answer, its charge and its usage in one commit).
   */
  settle(usage: MeteredUsage & { costUsd: number }, options?: SettleOptions): Promise<{ creditsMicro: number }>;
  /** Gives the whole reservation back (the call failed or delivered nothing). */
  release(reason: string): Promise<void>;
  /**
   * The settle as parts of the caller's one statement (see StatementParts), where it can be one:
   * undefined when it needs more than one statement (e.g. a charge above the reservation), and then
   * the caller uses `settle` with its transaction.
   */
  settleParts?(usage: MeteredUsage & { costUsd: number }): StatementParts | undefined;
}

/**
 * Data-modifying CTEs another module's statement carries, so that a turn's whole write (its
 * messages, the charge, the usage row) is one statement: one round trip, atomic without BEGIN and
 * COMMIT. The caller puts `ctes` after its WITH and selects `creditsMicro`; once the statement has
 * committed it calls `settled` with what it selected. If the statement fails nothing was written and
 * the caller falls back to `settle` in a transaction.
 */
export interface StatementParts {
  /** `name AS (…)` entries; their names start with the owning module's prefix (settle_, usage_). */
  ctes: SQL[];
  /** Micro-credits charged, as an expression over `ctes` (0 when nothing was charged). */
  creditsMicro: SQL;
  /** After the commit: ends the call (limits adjusted); returns the credits charged. */
  settled(creditsMicro: number): Promise<{ creditsMicro: number }>;
}

export interface SettleOptions {
  /** The caller's transaction; nothing inside settle may use another connection while it is open. */
  executor?: Executor | undefined;
}

/**
 * The billing side of the gateway: plans, limits, credits. `authorize` throws the client-facing
 * errors (402 insufficient_credits, 403 feature not in plan, 429 rate_limited) before any vendor is called.
 */
export interface BillingPort {
  authorize(request: AuthorizationRequest): Promise<Authorization>;
}
