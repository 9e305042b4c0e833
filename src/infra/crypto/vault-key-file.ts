import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import { decodeVaultKey, parsePreviousVaultKeys, VaultCipher } from './vault-cipher.js';

export const GENERATED_KEY_FILE = 'encryption.key';

/**
 * The vault cipher from configuration. ENCRYPTION_KEY wins; without it (development and tests
 * only: production refuses to start, see config.ts) a key is generated once into
 * DATA_DIR/encryption.key and reused on every later start, with a warning, so that a developer's
 * stored provider keys survive restarts.
 */
export function loadVaultCipher(config: Pick<Config, 'encryptionKey' | 'encryptionKeysPrevious' | 'dataDir'>, logger: Logger): VaultCipher {
  const previous = parsePreviousVaultKeys(config.encryptionKeysPrevious);
  if (config.encryptionKey) return new VaultCipher(decodeVaultKey(config.encryptionKey, 'ENCRYPTION_KEY'), previous);
  return new VaultCipher(readOrCreateKeyFile(config.dataDir, logger), previous);
}

function readOrCreateKeyFile(dataDir: string, logger: Logger): Buffer {
  const file = path.join(dataDir, GENERATED_KEY_FILE);
  try {
    return decodeVaultKey(readFileSync(file, 'utf8'), file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(dataDir, { recursive: true });
  const key = randomBytes(32);
  try {
    // `wx`: if another process created the file first, use theirs instead of overwriting it.
    writeFileSync(file, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return decodeVaultKey(readFileSync(file, 'utf8'), file);
    throw error;
  }
  logger.warn(
    { file },
    'ENCRYPTION_KEY is not set: generated a vault key into the data directory. Set ENCRYPTION_KEY in production (and keep this file: without it stored provider keys cannot be read).',
  );
  return key;
}
