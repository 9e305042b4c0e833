export { ProviderGateway, type GatewayCall, type Lease, type GatewayDependencies } from './gateway.js';
export { ProviderRegistry, type ProviderAdapters, type Modality } from './registry.js';
export type { Authorization, AuthorizationRequest, BillingPort, CostEstimate, MeteredService, MeteredUsage, PlanFeature } from './billing-port.js';
export { UnmeteredBilling } from './unmetered-billing.js';
export { createProviderRegistry } from './default-registry.js';
export { embeddingProviderOf } from './default-registry.js';
export { gatewayEmbedder } from './embedder.js';
/** Provider failures, for callers that decide on retries and fallbacks inside a lease. */
export { ProviderCallError, type ProviderFailureKind } from '../../providers/chat/provider-error.js';
