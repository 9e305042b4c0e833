import type { Infrastructure } from '../../container.js';
import type { IdentityModule } from '../identity/index.js';
import type { AppModule } from '../module.js';
import { purgeExpiredIdempotencyKeys, registerIdempotency } from './idempotency.js';

export { markIdempotencyFailed, purgeExpiredIdempotencyKeys, IDEMPOTENCY_KEY_PATTERN, type IdempotencyClaim } from './idempotency.js';

declare module '../../infra/queue/queue.js' {
  interface JobPayloads {
    /** Deletes Idempotency-Key entries past their expiry. */
    'idempotency.purge': Record<string, never>;
  }
}

/** How often expired keys are purged (one job per interval across replicas). */
const PURGE_INTERVAL_MS = 15 * 60_000;

/**
 * The Idempotency-Key store and its hook: routes opt in with `config: { idempotency: true }`.
 * Registered after billing (rate limits count replays) and before the routes that opt in.
 */
export function createIdempotencyModule(infrastructure: Infrastructure, dependencies: { identity: IdentityModule }): AppModule {
  const { config, db, logger, queue } = infrastructure;
  const log = logger.child({ module: 'idempotency' });
  let sweep: NodeJS.Timeout | undefined;
  return {
    name: 'idempotency',
    registerRoutes: (app) =>
      registerIdempotency(app, {
        db,
        identity: dependencies.identity.service,
        logger: log,
        ttlMs: config.idempotencyTtlSeconds * 1000,
        // A holder that died mid-request is taken over after the longest a request may run.
        lockMs: config.requestTimeoutMs + 60_000,
      }),
    jobHandlers: {
      'idempotency.purge': async () => ((await purgeExpiredIdempotencyKeys(db)) > 0 ? 'success' : 'skipped'),
    },
    start: async () => {
      sweep = setInterval(() => {
        queue.enqueue('idempotency.purge', {}, { jobId: `idempotency.purge.${Math.floor(Date.now() / PURGE_INTERVAL_MS)}`, attempts: 1 }).catch((error: unknown) => {
          log.warn({ err: error }, 'could not enqueue the idempotency-key purge');
        });
      }, PURGE_INTERVAL_MS);
      sweep.unref();
    },
    close: async () => {
      if (sweep) clearInterval(sweep);
    },
  };
}
