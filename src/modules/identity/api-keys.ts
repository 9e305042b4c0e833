import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Platform API keys look like `anima_sk_<8 lookup chars>_<40 secret chars>`. The lookup part
 * finds the row; only a SHA-256 of the whole key is stored. Keys carry 240 bits of entropy,
 * so a fast hash is right here (a slow password hash would only add latency to every request).
 */
export const API_KEY_PREFIX = 'anima_sk_';
const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

function randomToken(length: number): string {
  const bytes = randomBytes(length * 2);
  let token = '';
  for (const byte of bytes) {
    // 248 = 62 * 4: reject the tail so every character is equally likely.
    if (byte < 248) token += ALPHABET[byte % 62];
    if (token.length === length) return token;
  }
  return token + randomToken(length - token.length);
}

export interface GeneratedApiKey {
  key: string;
  prefix: string;
  hash: string;
}

export function generateApiKey(): GeneratedApiKey {
  const lookup = randomToken(8);
  const key = `${API_KEY_PREFIX}${lookup}_${randomToken(40)}`;
  return { key, prefix: `${API_KEY_PREFIX}${lookup}`, hash: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** The lookup prefix of a well-formed platform key, or undefined for anything else. */
export function apiKeyLookupPrefix(key: string): string | undefined {
  const match = /^(anima_sk_[A-Za-z0-9]{8})_[A-Za-z0-9]{40}$/.exec(key);
  return match?.[1];
}

export function hashesEqual(leftHex: string, rightHex: string): boolean {
  const left = Buffer.from(leftHex, 'hex');
  const right = Buffer.from(rightHex, 'hex');
  return left.length === right.length && timingSafeEqual(left, right);
}

/** Constant-time comparison of a presented secret with a configured one. */
export function secretsEqual(presented: string, expected: string): boolean {
  return hashesEqual(hashApiKey(presented), hashApiKey(expected));
}
