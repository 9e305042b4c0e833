import type { Infrastructure } from '../../container.js';
import type { IdentityModule } from '../identity/index.js';
import type { AppModule } from '../module.js';
import { createLimitCounters, type LimitCounters } from './limits.js';
import { MeteredBilling } from './metered-billing.js';
import { PlanCatalog } from './plan-catalog.js';
import { registerBillingRoutes } from './routes.js';
import { BillingService } from './service.js';

export { BillingService, planHasFeature, MAX_AMOUNT_MICRO, type GrantInput, type GrantResult, type PlanRow } from './service.js';
export { MeteredBilling } from './metered-billing.js';
export { PlanCatalog, PLANS_CHANGED_CHANNEL, type PlanReader } from './plan-catalog.js';
export { MICRO_PER_CREDIT, creditsFromMicro, microFromCredits } from './pricing.js';

declare module '../../infra/queue/queue.js' {
  interface JobPayloads {
    /** Releases credit reservations never settled (a process died mid-call). */
    'billing.release-stale': Record<string, never>;
  }
}

export interface BillingModule extends AppModule {
  service: BillingService;
  /** The gateway's BillingPort: plan features and limits, credit reservations. */
  port: MeteredBilling;
  limits: LimitCounters;
}

/** The plans, built before the modules that read them (identity) and handed to billing, which owns, starts and closes them. */
export function createPlanCatalog(infrastructure: Infrastructure): PlanCatalog {
  return new PlanCatalog({ db: infrastructure.db, events: infrastructure.keyValue.events });
}

export function createBillingModule(infrastructure: Infrastructure, dependencies: { identity: IdentityModule; plans: PlanCatalog; now?: () => Date }): BillingModule {
  const { config, db, logger, queue } = infrastructure;
  const log = logger.child({ module: 'billing' });
  const service = new BillingService({ config, db, logger: log, now: dependencies.now, plans: dependencies.plans });
  const limits = createLimitCounters({ redisUrl: config.redisUrl, keyPrefix: config.redisKeyPrefix });
  const limitsEnabled = config.billing.rateLimitsEnabled;
  const port = new MeteredBilling({ service, limits, logger: log, limitsEnabled });
  let sweep: NodeJS.Timeout | undefined;
  return {
    name: 'billing',
    service,
    port,
    limits,
    registerRoutes: (app) => registerBillingRoutes(app, { billing: service, identity: dependencies.identity.service, limits, limitsEnabled, db }),
    jobHandlers: {
      'billing.release-stale': async () => ((await service.releaseStale()) > 0 ? 'success' : 'skipped'),
    },
    warmUp: async ({ db, userId, planId }) => {
      if (userId) await service.warmUp(db, userId, planId);
    },
    start: async () => {
      await service.startCache();
      const interval = config.billing.reservationSweepIntervalMs;
      sweep = setInterval(() => {
        // One job per interval however many replicas enqueue it (the job id names the interval).
        queue.enqueue('billing.release-stale', {}, { jobId: `billing.release-stale.${Math.floor(Date.now() / interval)}`, attempts: 1 }).catch((error: unknown) => {
          log.warn({ err: error }, 'could not enqueue the stale-reservation sweep');
        });
      }, interval);
      sweep.unref();
    },
    close: async () => {
      if (sweep) clearInterval(sweep);
      await limits.close();
      await service.closeCache();
    },
  };
}
