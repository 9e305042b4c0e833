import type { Logger } from 'pino';
import type { Config, ProviderName } from '../../config.js';
import { LocalCache, type Events } from '../../infra/cache/index.js';
import type { Database } from '../../infra/db/database.js';
import { VaultDecryptionError, type VaultCipher } from '../../infra/crypto/vault-cipher.js';
import { AppError, ProviderKeyRequiredError, UpstreamError } from '../../infra/http/errors.js';
import type { PlanReader } from '../billing/plan-catalog.js';
import { maskSecret } from './masking.js';
import { providerKeyAssociatedData } from './provider-keys.js';
import * as keyStore from './provider-key-store.js';
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
  /** The user's name for the key (source 'user'), for messages like `your key "work" (sk-…a1b2)`. */
  name?: string | null;
  /** The owner of a vault key (source 'user'). */
  userId?: string | undefined;
}

export interface ProviderKeyResolver {
  /** Throws ProviderKeyRequiredError (402) when neither the user nor the platform has a usable key. */
  resolve(user: UserRow | undefined, provider: ProviderName): Promise<ResolvedProviderKey>;
  /** The provider rejected this key during a call: a user key is marked invalid. */
  reportRejected(key: ResolvedProviderKey, detail: string): Promise<void>;
}

/** How to name a resolved key to its user, without the key itself. */
export function describeResolvedKey(key: ResolvedProviderKey): string {
  if (key.source === 'platform') return `the platform's ${key.provider} key`;
  return `your ${key.provider} key${key.name ? ` "${key.name}"` : ''} (${key.masked})`;
}

/**
 * The error a caller raises after `reportRejected`: a rejected user key is the user's to fix
 * (402 provider_key_required with `reason: provider_key_invalid`, naming the key and where to add
 * another: clients already branch on provider_key_required); a rejected platform key
 * is the operator's (502, without details of the platform key).
 */
export function rejectedKeyError(key: ResolvedProviderKey, setupUrl: string | undefined): AppError {
  if (key.source === 'platform') {
    return new UpstreamError(key.provider, `${key.provider} did not accept the platform's key; the operator has been told.`, { upstreamStatus: 401 });
  }
  return new ProviderKeyRequiredError(
    key.provider,
    setupUrl,
    `${describeResolvedKey(key)} was rejected by ${key.provider} and is now marked invalid: add a working key${setupUrl ? ` at ${setupUrl}` : ' with POST /v1/me/provider-keys'}.`,
    { extra: { reason: 'provider_key_invalid', provider_key_id: key.providerKeyId, masked: key.masked, key_name: key.name ?? null } },
  );
}

const LAST_USED_FLUSH_MS = 30_000;
const DETAIL_LIMIT = 300;

export interface VaultKeyResolverDependencies {
  config: Readonly<Config>;
  db: Database;
  cipher: VaultCipher;
  logger: Logger;
  /** Cross-replica invalidation of the cached key rows (absent: this process only). */
  events?: Events | undefined;
  /** Plans (billing's cached catalog): whether the user's plan allows platform keys. */
  plans: PlanReader;
}

export const PROVIDER_KEYS_CHANGED_CHANNEL = 'identity:provider-keys-changed';
const KEY_CACHE_TTL_MS = 30_000;

/**
 * The one ProviderKeyResolver: the user's best usable vault key (active, not invalid, the most
 * recently validated first) → the platform key when the user's plan allows platform keys (or
 * when no end user is involved, e.g. an operator's background job) → ProviderKeyRequiredError.
 * last_used_at of vault keys is batched in memory and flushed periodically.
 */
export class VaultKeyResolver implements ProviderKeyResolver {
  private readonly pendingUse = new Map<string, Date>();
  private flushTimer: NodeJS.Timeout | undefined;
  /** A user's usable vault rows per provider, cached per process and dropped on every change of the user's keys. */
  private readonly usable: LocalCache<keyStore.ProviderKeyRow[]>;

  constructor(private readonly dependencies: VaultKeyResolverDependencies) {
    this.usable = new LocalCache({ events: dependencies.events, channel: PROVIDER_KEYS_CHANGED_CHANNEL, ttlMs: KEY_CACHE_TTL_MS });
  }

  async startCache(): Promise<void> {
    await this.usable.start();
  }

  /** Drops the user's cached key rows in every replica (`'*'`: everyone's): call after a committed change to them. */
  async forgetUser(userId: string): Promise<void> {
    await this.usable.invalidate(userId);
  }

  async resolve(user: UserRow | undefined, provider: ProviderName): Promise<ResolvedProviderKey> {
    const { config, db, cipher, logger } = this.dependencies;
    if (user) {
      const rows = await this.usable.get(`${user.id}:${provider}`, user.id, () => keyStore.usableProviderKeys(db, user.id, provider));
      for (const row of rows) {
        try {
          const apiKey = cipher.decrypt({ ciphertext: row.ciphertext, keyId: row.encryptionKeyId }, providerKeyAssociatedData(row.id));
          this.pendingUse.set(row.id, new Date());
          return { provider, apiKey, source: 'user', providerKeyId: row.id, masked: row.masked, name: row.name, userId: row.userId };
        } catch (error) {
          if (!(error instanceof VaultDecryptionError)) throw error;
          // Skip it and try the next: a missing previous vault key is an operator's mistake, not the user's.
          logger.error({ providerKeyId: row.id, encryptionKeyId: row.encryptionKeyId, reason: error.message }, 'cannot decrypt a stored provider key');
        }
      }
    }
    const platformKey = config.providers[provider].platformKey;
    if (platformKey !== undefined) {
      const plan = user ? await this.dependencies.plans.find(user.planId) : undefined;
      if (!user || plan?.allowsPlatformKeys === true) {
        return { provider, apiKey: platformKey, source: 'platform', providerKeyId: null, masked: maskSecret(platformKey), name: null };
      }
    }
    throw new ProviderKeyRequiredError(provider, config.setupUrl);
  }

  async reportRejected(key: ResolvedProviderKey, detail: string): Promise<void> {
    // The caller's detail may quote the vendor, which may quote the key: never store or log it raw.
    const safeDetail = detail.split(key.apiKey).join(key.masked).slice(0, DETAIL_LIMIT);
    if (key.source === 'user' && key.providerKeyId) {
      await keyStore.markProviderKeyInvalid(this.dependencies.db, key.providerKeyId, `rejected during a call: ${safeDetail}`);
      if (key.userId) await this.forgetUser(key.userId);
      this.dependencies.logger.warn({ providerKeyId: key.providerKeyId, provider: key.provider }, 'a user provider key was rejected and marked invalid');
      return;
    }
    this.dependencies.logger.error({ provider: key.provider, detail: safeDetail }, 'the platform key was rejected by the provider');
  }

  startBackgroundFlush(): void {
    this.flushTimer = setInterval(() => void this.flush(), LAST_USED_FLUSH_MS);
    this.flushTimer.unref();
  }

  async flush(): Promise<void> {
    if (this.pendingUse.size === 0) return;
    const batch = new Map(this.pendingUse);
    this.pendingUse.clear();
    try {
      await keyStore.touchProviderKeys(this.dependencies.db, batch);
    } catch (error) {
      this.dependencies.logger.warn({ err: error }, 'could not record provider key use');
    }
  }

  async close(): Promise<void> {
    if (this.flushTimer) clearInterval(this.flushTimer);
    await this.flush();
    await this.usable.close();
  }
}
