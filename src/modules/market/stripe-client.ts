import Stripe from 'stripe';
import type { Config } from '../../config.js';

/**
 * The official SDK, pointed at STRIPE_API_BASE when set (a mock, tests): the SDK itself reads no
 * environment variable, so the URL is mapped to its host/port/protocol options here.
 */
export function createStripeClient(stripe: Config['stripe']): Stripe | undefined {
  if (!stripe.secretKey) return undefined;
  const options: Stripe.StripeConfig = { maxNetworkRetries: 2, timeout: 20_000, telemetry: false, appInfo: { name: 'Anima' } };
  if (stripe.apiBase) {
    const base = new URL(stripe.apiBase);
    options.host = base.hostname;
    options.protocol = base.protocol === 'http:' ? 'http' : 'https';
    options.port = base.port ? Number(base.port) : base.protocol === 'http:' ? 80 : 443;
  }
  return new Stripe(stripe.secretKey, options);
}
