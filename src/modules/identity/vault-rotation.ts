import type { Container } from '../../container.js';
import { VaultDecryptionError } from '../../infra/crypto/vault-cipher.js';
import { providerKeyAssociatedData } from './provider-keys.js';
import * as keyStore from './provider-key-store.js';

export interface VaultRotationReport {
  currentKeyId: string;
  total: number;
  reencrypted: number;
  alreadyCurrent: number;
  /** Rows whose key is not configured or whose ciphertext does not authenticate; left untouched. */
  failed: number;
}

const BATCH = 200;

/**
 * `anima rotate-vault-keys`: re-seals every provider key under the current ENCRYPTION_KEY, reading
 * older rows with ENCRYPTION_KEYS_PREVIOUS. Idempotent (a second run re-encrypts nothing) and safe
 * beside a running server: a row is replaced only if it is still under the key it was read with.
 * When `failed` is 0, the previous keys may be removed from ENCRYPTION_KEYS_PREVIOUS.
 */
export async function rotateVaultKeys(container: Container, log: (message: string) => void): Promise<VaultRotationReport> {
  const { cipher } = container.identity;
  const { db } = container;
  const report: VaultRotationReport = { currentKeyId: cipher.currentKeyId, total: 0, reencrypted: 0, alreadyCurrent: 0, failed: 0 };
  report.total = await keyStore.countProviderKeys(db);
  log(`vault key ${cipher.currentKeyId}: checking ${report.total} provider keys (decrypting with ${cipher.knownKeyIds.join(', ')})`);

  let afterId: string | undefined;
  for (;;) {
    const rows = await keyStore.providerKeysNotUnder(db, cipher.currentKeyId, afterId, BATCH);
    if (rows.length === 0) break;
    for (const row of rows) {
      try {
        const sealed = cipher.reseal({ ciphertext: row.ciphertext, keyId: row.encryptionKeyId }, providerKeyAssociatedData(row.id));
        const replaced = await keyStore.replaceCiphertext(db, row.id, row.encryptionKeyId, { ciphertext: sealed.ciphertext, encryptionKeyId: sealed.keyId });
        if (replaced) report.reencrypted += 1;
      } catch (error) {
        if (!(error instanceof VaultDecryptionError)) throw error;
        report.failed += 1;
        log(`provider key ${row.id}: not re-encrypted (${error.message})`);
      }
    }
    afterId = rows.at(-1)!.id;
  }
  report.alreadyCurrent = report.total - report.reencrypted - report.failed;
  // Resolvers (this process and every replica) drop the rows they cached under the old ciphertext.
  if (report.reencrypted > 0) await container.identity.keys.forgetUser('*');
  log(`re-encrypted ${report.reencrypted}, already current ${report.alreadyCurrent}, failed ${report.failed}`);
  return report;
}
