import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM for the BYOK vault. Every ciphertext names the key that sealed it (`keyId`, the
 * first 8 hex digits of SHA-256 of the key), so the vault key can be rotated: the current key
 * encrypts, the current and the previous keys decrypt, and `rotateVaultKeys` re-seals old rows.
 *
 * Stored form: base64 of `iv (12 bytes) | ciphertext | tag (16 bytes)`. Optional associated data
 * (e.g. the row's owner and provider) binds a ciphertext to its row, so one user's sealed key
 * pasted into another user's row does not decrypt.
 */
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

export class VaultKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VaultKeyError';
  }
}

/** Decryption failed: wrong key, tampered bytes, or associated data that does not match. */
export class VaultDecryptionError extends Error {
  constructor(
    message: string,
    readonly keyId: string,
  ) {
    super(message);
    this.name = 'VaultDecryptionError';
  }
}

export function vaultKeyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/** Decodes a base64 vault key and checks its length (never echoes the value). */
export function decodeVaultKey(base64: string, label: string): Buffer {
  const key = Buffer.from(base64.trim(), 'base64');
  if (key.length !== KEY_BYTES) throw new VaultKeyError(`${label}: must be ${KEY_BYTES} bytes, base64-encoded`);
  return key;
}

/**
 * Parses ENCRYPTION_KEYS_PREVIOUS: comma-separated `keyId:base64` or bare `base64` entries.
 * A stated key id must match the key, so a typo is caught at start-up rather than at decryption.
 */
export function parsePreviousVaultKeys(value: string | undefined): Buffer[] {
  if (!value) return [];
  const keys: Buffer[] = [];
  for (const [index, entry] of value.split(',').map((item) => item.trim()).filter(Boolean).entries()) {
    const separator = entry.indexOf(':');
    const statedId = separator > 0 ? entry.slice(0, separator) : undefined;
    const key = decodeVaultKey(separator > 0 ? entry.slice(separator + 1) : entry, `ENCRYPTION_KEYS_PREVIOUS entry ${index + 1}`);
    if (statedId !== undefined && statedId !== vaultKeyId(key)) {
      throw new VaultKeyError(`ENCRYPTION_KEYS_PREVIOUS entry ${index + 1}: key id ${statedId} does not match its key (${vaultKeyId(key)})`);
    }
    keys.push(key);
  }
  return keys;
}

export interface SealedSecret {
  ciphertext: string;
  keyId: string;
}

export class VaultCipher {
  readonly currentKeyId: string;
  private readonly keys = new Map<string, Buffer>();

  constructor(currentKey: Buffer, previousKeys: Buffer[] = []) {
    if (currentKey.length !== KEY_BYTES) throw new VaultKeyError(`the vault key must be ${KEY_BYTES} bytes`);
    this.currentKeyId = vaultKeyId(currentKey);
    for (const key of previousKeys) this.keys.set(vaultKeyId(key), key);
    this.keys.set(this.currentKeyId, currentKey);
  }

  /** Key ids this cipher can decrypt. */
  get knownKeyIds(): string[] {
    return [...this.keys.keys()];
  }

  canDecrypt(keyId: string): boolean {
    return this.keys.has(keyId);
  }

  encrypt(plaintext: string, associatedData?: string): SealedSecret {
    const key = this.keys.get(this.currentKeyId)!;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    if (associatedData !== undefined) cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return { ciphertext: Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64'), keyId: this.currentKeyId };
  }

  decrypt(sealed: SealedSecret, associatedData?: string): string {
    const key = this.keys.get(sealed.keyId);
    if (!key) throw new VaultDecryptionError(`vault key ${sealed.keyId} is not configured (add it to ENCRYPTION_KEYS_PREVIOUS)`, sealed.keyId);
    const bytes = Buffer.from(sealed.ciphertext, 'base64');
    if (bytes.length < IV_BYTES + TAG_BYTES) throw new VaultDecryptionError('sealed secret is truncated', sealed.keyId);
    const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
    if (associatedData !== undefined) decipher.setAAD(Buffer.from(associatedData, 'utf8'));
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new VaultDecryptionError('sealed secret failed authentication (tampered, or sealed for another row)', sealed.keyId);
    }
  }

  /** Re-seals under the current key; a secret already under it is returned unchanged. */
  reseal(sealed: SealedSecret, associatedData?: string): SealedSecret {
    if (sealed.keyId === this.currentKeyId) return sealed;
    return this.encrypt(this.decrypt(sealed, associatedData), associatedData);
  }
}
