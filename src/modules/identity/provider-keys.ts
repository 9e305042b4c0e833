import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { PROVIDERS, type Config, type ProviderName } from '../../config.js';
import type { Database } from '../../infra/db/database.js';
import { VaultDecryptionError, type VaultCipher } from '../../infra/crypto/vault-cipher.js';
import { AppError, NotFoundError, ValidationError } from '../../infra/http/errors.js';
import { checkProviderKey } from '../../providers/key-checks/index.js';
import type { PlanReader } from '../billing/plan-catalog.js';
import { maskSecret } from './masking.js';
import * as keyStore from './provider-key-store.js';
import type { ProviderKeyRow } from './provider-key-store.js';
import type { UserRow } from './store.js';

/** Ties a ciphertext to its row, so a sealed key copied into another row does not decrypt. */
export function providerKeyAssociatedData(rowId: string): string {
  return `provider-key:${rowId}`;
}

export interface ProviderKeyVaultDependencies {
  config: Readonly<Config>;
  db: Database;
  cipher: VaultCipher;
  logger: Logger;
  fetch?: typeof fetch;
  /** Told after a user's keys changed (the key resolver drops its cached copies in every replica). */
  onChange?: ((userId: string) => Promise<void>) | undefined;
  /** Plans (billing's cached catalog): whether the user's plan allows platform keys. */
  plans: PlanReader;
}

/**
 * A user's own provider keys (BYOK): checked against the provider on the way in, sealed with
 * the vault cipher, and only ever shown masked. All lookups are scoped by the owner, so another
 * user's key id is simply not found.
 */
export class ProviderKeyVault {
  constructor(private readonly dependencies: ProviderKeyVaultDependencies) {}

  list(user: UserRow): Promise<ProviderKeyRow[]> {
    return keyStore.listProviderKeys(this.dependencies.db, user.id);
  }

  private check(provider: ProviderName, key: string) {
    const { config } = this.dependencies;
    return checkProviderKey(provider, key, {
      baseUrl: config.providers[provider].baseUrl,
      timeoutMs: config.keyCheckTimeoutMs,
      fetch: this.dependencies.fetch,
    });
  }

  async add(user: UserRow, input: { provider: ProviderName; key: string; name?: string | undefined }): Promise<ProviderKeyRow> {
    const { db, cipher, logger } = this.dependencies;
    const outcome = await this.check(input.provider, input.key);
    if (outcome.status === 'invalid') {
      throw new ValidationError('key', `This ${input.provider} key was not stored: ${outcome.detail}.`, {
        extra: { provider: input.provider, reason: 'provider_key_invalid' },
      });
    }
    const id = randomUUID();
    const sealed = cipher.encrypt(input.key, providerKeyAssociatedData(id));
    const row = await keyStore.insertProviderKey(db, {
      id,
      userId: user.id,
      provider: input.provider,
      name: input.name ?? `${input.provider} key`,
      ciphertext: sealed.ciphertext,
      encryptionKeyId: sealed.keyId,
      masked: maskSecret(input.key),
      status: outcome.status,
      statusDetail: outcome.detail,
      lastCheckedAt: outcome.status === 'unchecked' ? null : new Date(),
    });
    logger.info({ userId: user.id, providerKeyId: row.id, provider: row.provider, status: row.status }, 'provider key stored');
    await this.dependencies.onChange?.(user.id);
    return row;
  }

  async get(user: UserRow, keyId: string): Promise<ProviderKeyRow> {
    const row = await keyStore.findOwnProviderKey(this.dependencies.db, user.id, keyId);
    if (!row) throw new NotFoundError('Provider key');
    return row;
  }

  async update(user: UserRow, keyId: string, changes: { active?: boolean | undefined; name?: string | undefined }): Promise<ProviderKeyRow> {
    const definedChanges: { active?: boolean; name?: string } = {};
    if (changes.active !== undefined) definedChanges.active = changes.active;
    if (changes.name !== undefined) definedChanges.name = changes.name;
    const row =
      Object.keys(definedChanges).length === 0
        ? await keyStore.findOwnProviderKey(this.dependencies.db, user.id, keyId)
        : await keyStore.updateOwnProviderKey(this.dependencies.db, user.id, keyId, definedChanges);
    if (!row) throw new NotFoundError('Provider key');
    await this.dependencies.onChange?.(user.id);
    return row;
  }

  /**
   * Re-runs the provider's key check on a stored key (the check used when it was added) and stores
   * the verdict: `invalid` is kept (not refused, the key is already stored), `unreachable` when the
   * provider gave no verdict, `unchecked` for providers without a check (last_checked_at kept).
   */
  async recheck(user: UserRow, keyId: string): Promise<ProviderKeyRow> {
    const { db, cipher, logger } = this.dependencies;
    const row = await this.get(user, keyId);
    let secret: string;
    try {
      secret = cipher.decrypt({ ciphertext: row.ciphertext, keyId: row.encryptionKeyId }, providerKeyAssociatedData(row.id));
    } catch (error) {
      if (!(error instanceof VaultDecryptionError)) throw error;
      logger.error({ providerKeyId: row.id, encryptionKeyId: row.encryptionKeyId, reason: error.message }, 'cannot decrypt a stored provider key');
      throw new AppError(409, 'provider_key_unreadable', 'This key cannot be decrypted with the vault keys this server has (the operator changed them): delete it and add it again.', {
        extra: { provider_key_id: row.id },
      });
    }
    const outcome = await this.check(row.provider as ProviderName, secret);
    const updated = await keyStore.recordProviderKeyCheck(db, user.id, row.id, {
      status: outcome.status,
      statusDetail: outcome.detail,
      lastCheckedAt: outcome.status === 'unchecked' ? row.lastCheckedAt : new Date(),
    });
    if (!updated) throw new NotFoundError('Provider key');
    logger.info({ userId: user.id, providerKeyId: row.id, provider: row.provider, status: updated.status }, 'provider key re-checked');
    await this.dependencies.onChange?.(user.id);
    return updated;
  }

  async remove(user: UserRow, keyId: string): Promise<void> {
    if (!(await keyStore.deleteOwnProviderKey(this.dependencies.db, user.id, keyId))) throw new NotFoundError('Provider key');
    this.dependencies.logger.info({ userId: user.id, providerKeyId: keyId }, 'provider key deleted');
    await this.dependencies.onChange?.(user.id);
  }

  /**
   * Per provider: can a call for this user go ahead? True when the user has an active key not
   * known to be invalid, or the platform has a key and the user's plan allows platform keys.
   */
  async status(user: UserRow): Promise<Record<ProviderName, boolean>> {
    const { config, db } = this.dependencies;
    const [rows, plan] = await Promise.all([keyStore.listProviderKeys(db, user.id), this.dependencies.plans.find(user.planId)]);
    const platformAllowed = plan?.allowsPlatformKeys ?? false;
    const result = {} as Record<ProviderName, boolean>;
    for (const provider of PROVIDERS) {
      const ownUsable = rows.some((row) => row.provider === provider && row.active && row.status !== 'invalid');
      result[provider] = ownUsable || (platformAllowed && config.providers[provider].platformKey !== undefined);
    }
    return result;
  }
}
