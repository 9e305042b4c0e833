import type { Authorization, BillingPort } from './billing-port.js';

/**
 * Authorizes every call and charges nothing: what Anima did before credits existed. The billing
 * module replaces it with plans, limits and the credit ledger.
 */
export class UnmeteredBilling implements BillingPort {
  authorize(): Promise<Authorization> {
    return Promise.resolve({
      settle: () => Promise.resolve({ creditsMicro: 0 }),
      release: () => Promise.resolve(),
    });
  }
}
