import type { AppInstance } from '../app-types.js';
import type { Executor } from '../infra/db/database.js';
import type { JobHandlers } from '../infra/queue/index.js';

/**
 * What a module's start-up warm-up runs on: one database transaction that is always rolled back
 * (see src/modules/warm-up.ts), and the throwaway rows earlier modules made in it, so a later module
 * can write rows that refer to them (a conversation needs a user and a character).
 */
export interface WarmUpScratch {
  db: Executor;
  userId?: string | undefined;
  planId?: string | undefined;
  characterId?: string | undefined;
}

/** What each domain module hands the shell: its routes, its job consumers and its lifecycle. */
export interface AppModule {
  name: string;
  registerRoutes?(app: AppInstance): Promise<void> | void;
  jobHandlers?: JobHandlers;
  /** Runs once the container is built (bootstrap data, timers). */
  start?(): Promise<void>;
  /**
   * Runs the statements of a chat turn this module owns once, before the server listens, inside
   * the warm-up's rolled-back transaction: through its store functions only (never its caches,
   * events or jobs), so nothing of it outlives the rollback. Answers the throwaway rows it made.
   */
  warmUp?(scratch: WarmUpScratch): Promise<Partial<Omit<WarmUpScratch, 'db'>> | void>;
  close?(): Promise<void>;
}
