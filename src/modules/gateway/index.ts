export { ProviderGateway, type GatewayCall, type Lease, type GatewayDependencies } from './gateway.js';
export { ProviderRegistry, type ProviderAdapters, type Modality } from './registry.js';
export type { Authorization, AuthorizationRequest, BillingPort, CostEstimate, MeteredService, MeteredUsage, PlanFeature } from './billing-port.js';
export { UnmeteredBilling } from './unmetered-billing.js';
export { createProviderRegistry } from './default-registry.js';
