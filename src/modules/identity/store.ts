import { and, desc, eq, ilike, inArray, isNull, or, type SQL } from 'drizzle-orm';
import { sql } from '../../infra/db/sql.js';
import type { Executor } from '../../infra/db/database.js';
import { apiKeys, systemSettings, userIdentities, users } from '../../infra/db/schema.js';

export type UserRow = typeof users.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;
/** Plans are billing's (src/modules/billing/plan-catalog.ts); identity reads them through its PlanReader. */
export type { PlanRow } from '../billing/plan-catalog.js';
export type ApiKeyRole = ApiKeyRow['role'];

export async function findUserById(db: Executor, userId: string): Promise<UserRow | undefined> {
  const [row] = await db.select().from(users).where(eq(users.id, userId)).limit(1);
  return row;
}

export async function findUserByExternalId(db: Executor, externalId: string): Promise<UserRow | undefined> {
  const [row] = await db
    .select({ user: users })
    .from(userIdentities)
    .innerJoin(users, eq(users.id, userIdentities.userId))
    .where(eq(userIdentities.externalId, externalId))
    .limit(1);
  return row?.user;
}

/** Finds the user with this external id or creates it; safe under concurrent first sightings. */
export async function findOrCreateUserByExternalId(
  db: Executor,
  externalId: string,
  username: string | undefined,
): Promise<{ user: UserRow; created: boolean }> {
  const existing = await findUserByExternalId(db, externalId);
  if (existing) return { user: existing, created: false };
  return db.transaction(async (transaction) => {
    const [user] = await transaction.insert(users).values({ username: username ?? null }).returning();
    const inserted = await transaction
      .insert(userIdentities)
      .values({ userId: user!.id, externalId })
      .onConflictDoNothing()
      .returning();
    if (inserted.length === 0) {
      // Another request created it first: drop ours and use theirs.
      await transaction.delete(users).where(eq(users.id, user!.id));
      const winner = await findUserByExternalId(transaction, externalId);
      if (!winner) throw new Error('user identity vanished during creation');
      return { user: winner, created: false };
    }
    return { user: user!, created: true };
  });
}

export async function listIdentities(db: Executor, userId: string): Promise<string[]> {
  const rows = await db.select({ externalId: userIdentities.externalId }).from(userIdentities).where(eq(userIdentities.userId, userId));
  return rows.map((row) => row.externalId);
}

/** External ids of several users at once, by user id (a page of the admin list). */
export async function listIdentitiesOf(db: Executor, userIds: string[]): Promise<Map<string, string[]>> {
  const result = new Map<string, string[]>(userIds.map((id) => [id, []]));
  if (userIds.length === 0) return result;
  const rows = await db
    .select({ userId: userIdentities.userId, externalId: userIdentities.externalId })
    .from(userIdentities)
    .where(inArray(userIdentities.userId, userIds))
    .orderBy(userIdentities.createdAt);
  for (const row of rows) result.get(row.userId)?.push(row.externalId);
  return result;
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface UserListFilter {
  /** Part of an external id or username (case-insensitive, taken literally), or a user's internal id. */
  search?: string | undefined;
  /** Keyset: users strictly older than this. `createdAt` is the exact (microsecond) text a previous page gave. */
  before?: { createdAt: string; id: string } | undefined;
  limit: number;
}

/**
 * Users newest first by keyset (created_at, id). Each row comes with its created_at as exact UTC
 * text (`…T12:00:00.123456Z`): a JavaScript Date keeps only milliseconds, which would skip users
 * created within the same millisecond as a page's last one.
 */
export async function listUsers(db: Executor, filter: UserListFilter): Promise<Array<{ user: UserRow; createdAtText: string }>> {
  const conditions: SQL[] = [];
  if (filter.search !== undefined) {
    const pattern = `%${filter.search.replace(/[\\%_]/g, (character) => `\\${character}`)}%`;
    const matches = [
      ilike(users.username, pattern),
      sql`exists (select 1 from ${userIdentities} where ${userIdentities.userId} = ${users.id} and ${userIdentities.externalId} ilike ${pattern})`,
    ];
    if (UUID_PATTERN.test(filter.search)) matches.push(eq(users.id, filter.search.toLowerCase()));
    conditions.push(or(...matches)!);
  }
  if (filter.before) {
    conditions.push(sql`(${users.createdAt}, ${users.id}) < (${filter.before.createdAt}::timestamptz, ${filter.before.id}::uuid)`);
  }
  return db
    .select({ user: users, createdAtText: sql<string>`to_char(${users.createdAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')` })
    .from(users)
    .where(conditions.length > 0 ? and(...conditions) : undefined)
    .orderBy(desc(users.createdAt), desc(users.id))
    .limit(filter.limit);
}

export async function updateUser(
  db: Executor,
  userId: string,
  changes: { planId?: string; active?: boolean; quotas?: Record<string, number>; username?: string | null },
): Promise<UserRow | undefined> {
  if (Object.keys(changes).length === 0) return findUserById(db, userId);
  const [row] = await db.update(users).set(changes).where(eq(users.id, userId)).returning();
  return row;
}

export async function insertApiKey(
  db: Executor,
  values: { prefix: string; hash: string; role: ApiKeyRole; name: string; userId: string | null; expiresAt: Date | null },
): Promise<ApiKeyRow> {
  const [row] = await db.insert(apiKeys).values(values).returning();
  return row!;
}

export async function findApiKeyByPrefix(db: Executor, prefix: string): Promise<ApiKeyRow | undefined> {
  const [row] = await db.select().from(apiKeys).where(eq(apiKeys.prefix, prefix)).limit(1);
  return row;
}

export async function listApiKeys(db: Executor, filter: { userId?: string }): Promise<ApiKeyRow[]> {
  const query = db.select().from(apiKeys);
  return filter.userId ? query.where(eq(apiKeys.userId, filter.userId)).orderBy(apiKeys.createdAt) : query.orderBy(apiKeys.createdAt);
}

export async function revokeApiKey(db: Executor, keyId: string, userId: string | undefined): Promise<boolean> {
  const condition = userId
    ? and(eq(apiKeys.id, keyId), eq(apiKeys.userId, userId), isNull(apiKeys.revokedAt))
    : and(eq(apiKeys.id, keyId), isNull(apiKeys.revokedAt));
  const rows = await db.update(apiKeys).set({ revokedAt: new Date() }).where(condition).returning({ id: apiKeys.id });
  return rows.length > 0;
}

export async function touchApiKeys(db: Executor, keyIds: Map<string, Date>): Promise<void> {
  for (const [keyId, usedAt] of keyIds) {
    await db.update(apiKeys).set({ lastUsedAt: usedAt }).where(eq(apiKeys.id, keyId));
  }
}

export async function touchUsers(db: Executor, userIds: Map<string, Date>): Promise<void> {
  for (const [userId, activeAt] of userIds) {
    await db.update(users).set({ lastActiveAt: activeAt }).where(eq(users.id, userId));
  }
}

export async function readSetting<T>(db: Executor, key: string): Promise<T | undefined> {
  const [row] = await db.select().from(systemSettings).where(eq(systemSettings.key, key)).limit(1);
  return row?.value as T | undefined;
}

export async function writeSettingIfAbsent(db: Executor, key: string, value: unknown): Promise<boolean> {
  const rows = await db.insert(systemSettings).values({ key, value }).onConflictDoNothing().returning({ key: systemSettings.key });
  return rows.length > 0;
}
