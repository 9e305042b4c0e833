import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parsePreviousVaultKeys, VaultCipher, VaultDecryptionError, VaultKeyError, vaultKeyId } from './vault-cipher.js';
import { GENERATED_KEY_FILE, loadVaultCipher } from './vault-key-file.js';

const silent = pino({ level: 'silent' });

describe('VaultCipher', () => {
  it('round-trips a secret and never stores it in the clear', () => {
    const cipher = new VaultCipher(randomBytes(32));
    const sealed = cipher.encrypt('sk-or-v1-secret-value', 'user-1:openrouter');
    expect(sealed.keyId).toBe(cipher.currentKeyId);
    expect(sealed.keyId).toMatch(/^[0-9a-f]{8}$/);
    expect(Buffer.from(sealed.ciphertext, 'base64').toString('latin1')).not.toContain('secret-value');
    expect(cipher.decrypt(sealed, 'user-1:openrouter')).toBe('sk-or-v1-secret-value');
  });

  it('uses a fresh IV each time', () => {
    const cipher = new VaultCipher(randomBytes(32));
    expect(cipher.encrypt('same').ciphertext).not.toBe(cipher.encrypt('same').ciphertext);
  });

  it('detects tampering with the ciphertext, the tag or the associated data', () => {
    const cipher = new VaultCipher(randomBytes(32));
    const sealed = cipher.encrypt('a secret key', 'user-1:openai');
    const bytes = Buffer.from(sealed.ciphertext, 'base64');
    for (const position of [0, 14, bytes.length - 1]) {
      const tampered = Buffer.from(bytes);
      tampered[position] = tampered[position]! ^ 0x01;
      expect(() => cipher.decrypt({ ...sealed, ciphertext: tampered.toString('base64') }, 'user-1:openai')).toThrow(VaultDecryptionError);
    }
    expect(() => cipher.decrypt(sealed, 'user-2:openai')).toThrow(VaultDecryptionError);
    expect(() => cipher.decrypt({ ...sealed, ciphertext: bytes.subarray(0, 10).toString('base64') }, 'user-1:openai')).toThrow(VaultDecryptionError);
  });

  it('cannot decrypt under a different key', () => {
    const sealed = new VaultCipher(randomBytes(32)).encrypt('x');
    const other = new VaultCipher(randomBytes(32));
    expect(() => other.decrypt(sealed)).toThrow(/not configured/);
  });

  it('rotates: previous keys still decrypt, reseal moves a secret to the current key', () => {
    const oldKey = randomBytes(32);
    const newKey = randomBytes(32);
    const sealedOld = new VaultCipher(oldKey).encrypt('rotate me', 'aad');
    const rotated = new VaultCipher(newKey, [oldKey]);
    expect(rotated.knownKeyIds.sort()).toEqual([vaultKeyId(oldKey), vaultKeyId(newKey)].sort());
    expect(rotated.decrypt(sealedOld, 'aad')).toBe('rotate me');
    const resealed = rotated.reseal(sealedOld, 'aad');
    expect(resealed.keyId).toBe(vaultKeyId(newKey));
    expect(rotated.reseal(resealed, 'aad')).toBe(resealed);
    // Once the old key is dropped, only the resealed copy remains readable.
    const withoutOld = new VaultCipher(newKey);
    expect(withoutOld.decrypt(resealed, 'aad')).toBe('rotate me');
    expect(() => withoutOld.decrypt(sealedOld, 'aad')).toThrow(VaultDecryptionError);
  });

  it('parses ENCRYPTION_KEYS_PREVIOUS with or without key ids and rejects a wrong id or length', () => {
    const first = randomBytes(32);
    const second = randomBytes(32);
    const parsed = parsePreviousVaultKeys(`${vaultKeyId(first)}:${first.toString('base64')}, ${second.toString('base64')}`);
    expect(parsed.map(vaultKeyId)).toEqual([vaultKeyId(first), vaultKeyId(second)]);
    expect(() => parsePreviousVaultKeys(`deadbeef:${first.toString('base64')}`)).toThrow(VaultKeyError);
    expect(() => parsePreviousVaultKeys(randomBytes(16).toString('base64'))).toThrow(/32 bytes/);
    expect(parsePreviousVaultKeys(undefined)).toEqual([]);
  });
});

describe('loadVaultCipher', () => {
  const directories: string[] = [];
  afterEach(() => {
    for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
  });

  it('uses ENCRYPTION_KEY when set', () => {
    const key = randomBytes(32);
    const cipher = loadVaultCipher({ encryptionKey: key.toString('base64'), encryptionKeysPrevious: undefined, dataDir: '/nonexistent' }, silent);
    expect(cipher.currentKeyId).toBe(vaultKeyId(key));
  });

  it('without ENCRYPTION_KEY generates a key file once (private) and reuses it', () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'anima-vault-'));
    directories.push(dataDir);
    const warnings: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) });
    const first = loadVaultCipher({ encryptionKey: undefined, encryptionKeysPrevious: undefined, dataDir: path.join(dataDir, 'nested') }, logger);
    const file = path.join(dataDir, 'nested', GENERATED_KEY_FILE);
    expect(statSync(file).mode & 0o077).toBe(0);
    expect(warnings.join('')).toContain('ENCRYPTION_KEY is not set');
    expect(warnings.join('')).not.toContain(readFileSync(file, 'utf8').trim());
    const second = loadVaultCipher({ encryptionKey: undefined, encryptionKeysPrevious: undefined, dataDir: path.join(dataDir, 'nested') }, logger);
    expect(second.currentKeyId).toBe(first.currentKeyId);
    expect(second.decrypt(first.encrypt('persisted'))).toBe('persisted');
  });
});
