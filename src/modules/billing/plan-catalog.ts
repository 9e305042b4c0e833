import { LocalCache, type Events } from '../../infra/cache/index.js';
import type { Database, Executor } from '../../infra/db/database.js';
import * as store from './store.js';
import type { PlanInsert, PlanRow } from './store.js';

export type { PlanRow } from './store.js';

/** Published when an admin creates or changes a plan: every replica drops its cached plans. */
export const PLANS_CHANGED_CHANNEL = 'billing:plans-changed';
/** A cached plan lives this long without an invalidation (a change made straight in the database shows within it). */
const PLAN_CACHE_TTL_MS = 30_000;

/** What other modules read of plans (identity: a user's plan in /v1/me, whether platform keys may be used, plan checks). */
export interface PlanReader {
  /** The plan by id, from this process's cache (kept true across replicas). */
  find(planId: string): Promise<PlanRow | undefined>;
  /** The plan as the given transaction sees it (no cache): for checks inside a caller's transaction. */
  findIn(executor: Executor, planId: string): Promise<PlanRow | undefined>;
}

/**
 * Plans — what each allows and what its work costs. Billing owns the table; this is its one way in,
 * with one per-process cache that every replica drops when a plan changes, and other modules read
 * plans through it (as a PlanReader), not through the table.
 */
export class PlanCatalog implements PlanReader {
  private readonly cache: LocalCache<PlanRow | undefined>;

  constructor(private readonly dependencies: { db: Database; events?: Events | undefined }) {
    this.cache = new LocalCache({ events: dependencies.events, channel: PLANS_CHANGED_CHANNEL, ttlMs: PLAN_CACHE_TTL_MS, maxEntries: 1_000 });
  }

  start(): Promise<void> {
    return this.cache.start();
  }

  close(): Promise<void> {
    return this.cache.close();
  }

  find(planId: string): Promise<PlanRow | undefined> {
    return this.cache.get(planId, '*', () => store.findPlan(this.dependencies.db, planId));
  }

  findIn(executor: Executor, planId: string): Promise<PlanRow | undefined> {
    return store.findPlan(executor, planId);
  }

  list(options: { publicOnly: boolean }): Promise<PlanRow[]> {
    return store.listPlans(this.dependencies.db, options);
  }

  /** The new plan, or undefined when one with that id exists. */
  async create(values: PlanInsert & { id: string }): Promise<PlanRow | undefined> {
    const created = await store.insertPlan(this.dependencies.db, values);
    if (created) await this.cache.invalidate('*');
    return created;
  }

  /** The changed plan, or undefined when there is none with that id. */
  async update(planId: string, changes: Partial<PlanInsert>): Promise<PlanRow | undefined> {
    const updated = await store.updatePlan(this.dependencies.db, planId, changes);
    if (updated) await this.cache.invalidate('*');
    return updated;
  }
}
