import type { ProviderName } from '../../config.js';
import type { UserRow } from './store.js';

/**
 * The key a provider call uses, and who pays for it. Every provider call goes through
 * ProviderKeyResolver.resolve: the user's active key → the platform key where the user's plan
 * allows it → 402 provider_key_required. `source` travels with the call so billing charges only
 * platform-paid work.
 */
export interface ResolvedProviderKey {
  provider: ProviderName;
  apiKey: string;
  source: 'user' | 'platform';
  /** The BYOK vault row when source is 'user'. */
  providerKeyId: string | null;
  /** Masked form for messages to the user (never the key itself). */
  masked: string;
}

export interface ProviderKeyResolver {
  /** Throws ProviderKeyRequiredError (402) when neither the user nor the platform has a usable key. */
  resolve(user: UserRow | undefined, provider: ProviderName): Promise<ResolvedProviderKey>;
  /** The provider rejected this key during a call: a user key is marked invalid. */
  reportRejected(key: ResolvedProviderKey, detail: string): Promise<void>;
}
