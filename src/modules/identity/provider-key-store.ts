import { and, asc, desc, eq, ne } from 'drizzle-orm';
import { sql } from '../../infra/db/sql.js';
import type { ProviderName } from '../../config.js';
import type { Executor } from '../../infra/db/database.js';
import { providerKeys } from '../../infra/db/schema.js';

export type ProviderKeyRow = typeof providerKeys.$inferSelect;
export type ProviderKeyStatus = ProviderKeyRow['status'];

export async function insertProviderKey(db: Executor, values: typeof providerKeys.$inferInsert): Promise<ProviderKeyRow> {
  const [row] = await db.insert(providerKeys).values(values).returning();
  return row!;
}

export async function listProviderKeys(db: Executor, userId: string): Promise<ProviderKeyRow[]> {
  return db.select().from(providerKeys).where(eq(providerKeys.userId, userId)).orderBy(asc(providerKeys.provider), asc(providerKeys.createdAt));
}

/** A user's own key by id; another user's id finds nothing (answered as 404). */
export async function findOwnProviderKey(db: Executor, userId: string, keyId: string): Promise<ProviderKeyRow | undefined> {
  const [row] = await db
    .select()
    .from(providerKeys)
    .where(and(eq(providerKeys.id, keyId), eq(providerKeys.userId, userId)))
    .limit(1);
  return row;
}

/**
 * Usable keys of a user for one provider, best first: active, not `invalid`; `valid` before
 * `unchecked`/`unreachable`; the most recently validated first, then the newest.
 */
export async function usableProviderKeys(db: Executor, userId: string, provider: ProviderName): Promise<ProviderKeyRow[]> {
  return db
    .select()
    .from(providerKeys)
    .where(and(eq(providerKeys.userId, userId), eq(providerKeys.provider, provider), eq(providerKeys.active, true), ne(providerKeys.status, 'invalid')))
    .orderBy(
      sql`case when ${providerKeys.status} = 'valid' then 0 else 1 end`,
      sql`${providerKeys.lastCheckedAt} desc nulls last`,
      desc(providerKeys.createdAt),
    );
}

export async function updateOwnProviderKey(
  db: Executor,
  userId: string,
  keyId: string,
  changes: { active?: boolean; name?: string },
): Promise<ProviderKeyRow | undefined> {
  const [row] = await db
    .update(providerKeys)
    .set(changes)
    .where(and(eq(providerKeys.id, keyId), eq(providerKeys.userId, userId)))
    .returning();
  return row;
}

/** Stores the verdict of a re-check on a user's own key; undefined when it is not theirs (or gone). */
export async function recordProviderKeyCheck(
  db: Executor,
  userId: string,
  keyId: string,
  verdict: { status: ProviderKeyStatus; statusDetail: string; lastCheckedAt: Date | null },
): Promise<ProviderKeyRow | undefined> {
  const [row] = await db
    .update(providerKeys)
    .set(verdict)
    .where(and(eq(providerKeys.id, keyId), eq(providerKeys.userId, userId)))
    .returning();
  return row;
}

export async function deleteOwnProviderKey(db: Executor, userId: string, keyId: string): Promise<boolean> {
  const rows = await db
    .delete(providerKeys)
    .where(and(eq(providerKeys.id, keyId), eq(providerKeys.userId, userId)))
    .returning({ id: providerKeys.id });
  return rows.length > 0;
}

export async function markProviderKeyInvalid(db: Executor, keyId: string, detail: string): Promise<void> {
  await db.update(providerKeys).set({ status: 'invalid', statusDetail: detail, lastCheckedAt: new Date() }).where(eq(providerKeys.id, keyId));
}

export async function touchProviderKeys(db: Executor, keyIds: Map<string, Date>): Promise<void> {
  for (const [keyId, usedAt] of keyIds) {
    await db.update(providerKeys).set({ lastUsedAt: usedAt }).where(eq(providerKeys.id, keyId));
  }
}

/** A page of rows not sealed under `currentKeyId`, for rotation. */
export async function providerKeysNotUnder(db: Executor, currentKeyId: string, afterId: string | undefined, limit: number): Promise<ProviderKeyRow[]> {
  const condition = afterId
    ? and(ne(providerKeys.encryptionKeyId, currentKeyId), sql`${providerKeys.id} > ${afterId}`)
    : ne(providerKeys.encryptionKeyId, currentKeyId);
  return db.select().from(providerKeys).where(condition).orderBy(asc(providerKeys.id)).limit(limit);
}

/** Replaces a row's ciphertext only if it is still sealed under the key it was read with. */
export async function replaceCiphertext(
  db: Executor,
  keyId: string,
  expectedEncryptionKeyId: string,
  sealed: { ciphertext: string; encryptionKeyId: string },
): Promise<boolean> {
  const rows = await db
    .update(providerKeys)
    .set(sealed)
    .where(and(eq(providerKeys.id, keyId), eq(providerKeys.encryptionKeyId, expectedEncryptionKeyId)))
    .returning({ id: providerKeys.id });
  return rows.length > 0;
}

export async function countProviderKeys(db: Executor): Promise<number> {
  const [row] = await db.select({ count: sql<number>`count(*)::int` }).from(providerKeys);
  return Number(row?.count ?? 0);
}
