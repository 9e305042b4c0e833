import type { Infrastructure } from '../../container.js';
import type { BillingService } from '../billing/service.js';
import type { IdentityModule } from '../identity/index.js';
import type { AppModule } from '../module.js';
import { registerMarketRoutes } from './routes.js';
import { MarketService } from './service.js';
import { createStripeClient } from './stripe-client.js';
import type { MarketPlans, MarketWallet } from './wallet-port.js';

export { MarketService, MarketUnavailableError, MICRO_PER_CREDIT } from './service.js';
export type { MarketPlans, MarketWallet } from './wallet-port.js';

export interface MarketModule extends AppModule {
  service: MarketService;
}

export interface MarketModuleDependencies extends Infrastructure {
  identity: IdentityModule;
  billing: BillingService;
}

/** The wallet as the market needs it: purchases and refunds through the billing module's ledger. */
function marketWallet(billing: BillingService): MarketWallet {
  return {
    async credit(input, executor) {
      const result = await billing.grant({ ...input, kind: 'purchase', executor });
      return { applied: !result.duplicate };
    },
    async revoke(input, executor) {
      const result = await billing.grant({ ...input, kind: 'refund', executor });
      if (result.duplicate) return { applied: false, takenMicro: 0, shortfallMicro: 0 };
      return { applied: true, takenMicro: input.amountMicro - result.shortfallMicro, shortfallMicro: result.shortfallMicro };
    },
  };
}

function marketPlans(identity: IdentityModule): MarketPlans {
  return {
    defaultPlanId: 'free',
    setPlan: (userId, planId, executor) => identity.service.setPlan(userId, planId, executor),
    exists: (planId) => identity.service.planExists(planId),
  };
}

/** Credit packs and subscriptions through Stripe Checkout; without STRIPE_SECRET_KEY the routes answer 503. */
export function createMarketModule(dependencies: MarketModuleDependencies): MarketModule {
  const { config } = dependencies;
  const logger = dependencies.logger.child({ module: 'market' });
  const stripe = createStripeClient(config.stripe);
  if (!stripe) logger.info('market disabled: STRIPE_SECRET_KEY is not set');
  const service = new MarketService({ config, db: dependencies.db, logger, stripe, wallet: marketWallet(dependencies.billing), plans: marketPlans(dependencies.identity) });
  return {
    name: 'market',
    service,
    registerRoutes: (app) => registerMarketRoutes(app, { market: service, identity: dependencies.identity.service }),
  };
}
