import type { Executor } from '../../infra/db/database.js';

/**
 * What the market needs of the wallet (the billing module owns it): credits in and out through
 * the ledger, inside the caller's transaction, idempotent on the key.
 */
export interface MarketWallet {
  /** Adds purchased credits; a key already in the ledger adds nothing (`applied: false`). */
  credit(
    input: { userId: string; amountMicro: number; idempotencyKey: string; reference: string; reason: string },
    executor: Executor,
  ): Promise<{ applied: boolean }>;
  /**
   * Takes refunded credits back, down to zero and never below: what was already spent is returned
   * as the shortfall. A key already in the ledger takes nothing again.
   */
  revoke(
    input: { userId: string; amountMicro: number; idempotencyKey: string; reference: string; reason: string },
    executor: Executor,
  ): Promise<{ applied: boolean; takenMicro: number; shortfallMicro: number }>;
}

/** What the market needs of identity: plans it grants. */
export interface MarketPlans {
  setPlan(userId: string, planId: string, executor: Executor): Promise<void>;
  exists(planId: string): Promise<boolean>;
  defaultPlanId: string;
}
