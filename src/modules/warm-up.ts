import type { Logger } from 'pino';
import type { Database } from '../infra/db/database.js';
import type { AppModule, WarmUpScratch } from './module.js';

class RollBack extends Error {}

export interface WarmUpReport {
  ms: number;
  /** Each module's warm-up that succeeded, in milliseconds. */
  modulesMs: Record<string, number>;
  /** Modules whose warm-up failed (logged; start-up goes on: a warm-up only moves work earlier). */
  failed: string[];
}

/**
 * The work a process's first chat turn would otherwise do, done before it listens: each module runs
 * its turn's statements once (`AppModule.warmUp`), in module order, inside ONE transaction that is
 * always rolled back — reads that find nothing, and writes of throwaway rows (a user, a character, a
 * wallet with a hold, a conversation with two messages) that no one else ever sees.
 *
 * What that buys is the database's per-connection state, which a rollback keeps: catalog and
 * relation caches (on the embedded database read through its emulated file system), prepared
 * statements, the foreign keys' cached check plans (prepared by a real write only), pgvector and the
 * stemmer loaded. `npx tsx bench/first-turn.ts --runs 5` (issue 14, twelfth pass): the first turn
 * after a restart on the embedded default 482 -> 228 ms (later turns ≈ 50), on PostgreSQL + Redis
 * 190 -> 160 ms (`--backend postgres`; it warms the one pooled connection it runs on: warming all
 * ten side by side gained nothing measurable and took 0.5 s instead of 0.1). What is left of the
 * first turn is mostly JavaScript run for the first time (the character's card counted, the
 * moderation expressions, Drizzle's and zod's first builds). The warm-up itself: 0.1 s on PostgreSQL,
 * 0.3–0.45 s on the embedded default (in the tests' processes), so a restart is ready that much later.
 *
 * Each module runs in its own savepoint: one that fails is logged and skipped, and what it made is
 * not handed on (the savepoint rolled it back).
 */
export async function warmUpModules(db: Database, modules: readonly AppModule[], logger: Logger): Promise<WarmUpReport> {
  const started = performance.now();
  const failed: string[] = [];
  const modulesMs: Record<string, number> = {};
  try {
    await db.transaction(async (transaction) => {
      let scratch: WarmUpScratch = { db: transaction };
      for (const module of modules) {
        if (!module.warmUp) continue;
        const moduleStarted = performance.now();
        try {
          const made = await transaction.transaction(async (savepoint) => module.warmUp!({ ...scratch, db: savepoint }));
          if (made) scratch = { ...scratch, ...made };
          modulesMs[module.name] = Math.round(performance.now() - moduleStarted);
        } catch (error) {
          failed.push(module.name);
          logger.warn({ err: error, module: module.name }, 'start-up warm-up failed for a module; its first turn will be slower');
        }
      }
      throw new RollBack();
    });
  } catch (error) {
    if (!(error instanceof RollBack)) {
      failed.push('transaction');
      logger.warn({ err: error }, 'start-up warm-up failed; the first turn will be slower');
    }
  }
  return { ms: performance.now() - started, modulesMs, failed };
}
