import { createHash, randomInt } from 'node:crypto';
import { and, eq, gt, isNull } from 'drizzle-orm';
import type { Executor } from '../../infra/db/database.js';
import { linkCodes, type LinkCodeRow } from './link-code-tables.js';

/**
 * Link codes: 8 characters of Crockford's base32 (40 bits), shown as `ABCD-EFGH`. Short enough to
 * type from a Discord message; guessing one is out of reach because a code lives 10 minutes, is
 * used once, and redemption is limited per client address (see link-code-routes.ts). Only a
 * SHA-256 of the normalised code is stored.
 */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const LINK_CODE_TTL_MS = 10 * 60 * 1000;

export function generateLinkCode(): string {
  let code = '';
  for (let index = 0; index < 8; index += 1) code += ALPHABET[randomInt(ALPHABET.length)];
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

/** What a person typed, as stored: upper case, separators dropped, the letters people confuse mapped (O→0, I/L→1, U→V). */
export function normaliseLinkCode(input: string): string | undefined {
  const cleaned = input
    .toUpperCase()
    .replace(/[\s-]/g, '')
    .replace(/O/g, '0')
    .replace(/[IL]/g, '1')
    .replace(/U/g, 'V');
  return /^[0-9A-HJKMNP-TV-Z]{8}$/.test(cleaned) ? cleaned : undefined;
}

export function hashLinkCode(normalised: string): string {
  return createHash('sha256').update(`anima-link-code:${normalised}`).digest('hex');
}

/** Stores a new code for the user; the user's earlier unused codes stop working (one live code per user). */
export async function insertLinkCode(
  db: Executor,
  values: { codeHash: string; userId: string; createdByKeyId: string | null; expiresAt: Date },
): Promise<LinkCodeRow> {
  return db.transaction(async (transaction) => {
    await transaction
      .update(linkCodes)
      .set({ expiresAt: new Date() })
      .where(and(eq(linkCodes.userId, values.userId), isNull(linkCodes.usedAt), gt(linkCodes.expiresAt, new Date())));
    const [row] = await transaction.insert(linkCodes).values(values).returning();
    return row!;
  });
}

/** A live (unused, unexpired) code by its hash. */
export async function findLiveLinkCode(db: Executor, codeHash: string, now = new Date()): Promise<LinkCodeRow | undefined> {
  const [row] = await db
    .select()
    .from(linkCodes)
    .where(and(eq(linkCodes.codeHash, codeHash), isNull(linkCodes.usedAt), gt(linkCodes.expiresAt, now)))
    .limit(1);
  return row;
}

/** Marks the code used if it still is live; exactly one of concurrent redemptions gets the row. */
export async function consumeLinkCode(db: Executor, id: string, now = new Date()): Promise<LinkCodeRow | undefined> {
  const [row] = await db
    .update(linkCodes)
    .set({ usedAt: now })
    .where(and(eq(linkCodes.id, id), isNull(linkCodes.usedAt), gt(linkCodes.expiresAt, now)))
    .returning();
  return row;
}

export async function recordLinkCodeKey(db: Executor, id: string, apiKeyId: string): Promise<void> {
  await db.update(linkCodes).set({ apiKeyId }).where(eq(linkCodes.id, id));
}
