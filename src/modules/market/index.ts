import type { Infrastructure } from '../../container.js';
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
  wallet: MarketWallet;
  plans: MarketPlans;
}

/** Credit packs and subscriptions through Stripe Checkout; without STRIPE_SECRET_KEY the routes answer 503. */
export function createMarketModule(dependencies: MarketModuleDependencies): MarketModule {
  const { config } = dependencies;
  const logger = dependencies.logger.child({ module: 'market' });
  const stripe = createStripeClient(config.stripe);
  if (!stripe) logger.info('market disabled: STRIPE_SECRET_KEY is not set');
  const service = new MarketService({ config, db: dependencies.db, logger, stripe, wallet: dependencies.wallet, plans: dependencies.plans });
  return {
    name: 'market',
    service,
    registerRoutes: (app) => registerMarketRoutes(app, { market: service, identity: dependencies.identity.service }),
  };
}
