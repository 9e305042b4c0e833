import { and, desc, eq, getTableColumns, inArray, or, type SQL } from 'drizzle-orm';
import { sql } from '../../infra/db/sql.js';
import type { Executor } from '../../infra/db/database.js';
import { characters } from '../../infra/db/schema.js';

export type CharacterInsert = typeof characters.$inferInsert;

/**
 * A row without the avatar bytes: stored avatars (PNG card imports) can be megabytes of base64,
 * which must not ride along in every read and every cache entry. `avatarUrl` is the avatar when
 * it is a link; `avatarStored` says the bytes are in the row (read them with readAvatar).
 */
const { avatar: _avatar, ...columnsWithoutAvatar } = getTableColumns(characters);
const summaryColumns = {
  ...columnsWithoutAvatar,
  avatarUrl: sql<string | null>`case when ${characters.avatar} like 'data:%' then null else ${characters.avatar} end`,
  avatarStored: sql<boolean>`coalesce(${characters.avatar} like 'data:%', false)`,
};

export type CharacterRecord = Omit<typeof characters.$inferSelect, 'avatar'> & { avatarUrl: string | null; avatarStored: boolean };

export async function findCharacterById(db: Executor, characterId: string): Promise<CharacterRecord | undefined> {
  const [row] = await db.select(summaryColumns).from(characters).where(eq(characters.id, characterId)).limit(1);
  return row;
}

export async function findCharacterBySlug(db: Executor, slug: string): Promise<CharacterRecord | undefined> {
  const [row] = await db.select(summaryColumns).from(characters).where(eq(characters.slug, slug)).limit(1);
  return row;
}

export async function slugExists(db: Executor, slug: string): Promise<boolean> {
  const [row] = await db.select({ id: characters.id }).from(characters).where(eq(characters.slug, slug)).limit(1);
  return row !== undefined;
}

export interface ListCharactersFilter {
  /** Undefined: every character (admins). Otherwise public ones plus those these users own (none: public only). */
  visibleTo?: { userIds: Array<string | null | undefined> } | undefined;
  limit: number;
  /** Id of the last character of the previous page. */
  afterId?: string | undefined;
}

/** Newest first, keyset-paginated on (created_at, id) so concurrent inserts neither skip nor repeat rows. */
export async function listCharacters(db: Executor, filter: ListCharactersFilter): Promise<CharacterRecord[]> {
  const conditions: SQL[] = [];
  if (filter.visibleTo) {
    const owners = filter.visibleTo.userIds.filter((userId): userId is string => typeof userId === 'string');
    conditions.push(owners.length > 0 ? or(eq(characters.visibility, 'public'), inArray(characters.ownerUserId, owners))! : eq(characters.visibility, 'public'));
  }
  if (filter.afterId) {
    conditions.push(
      sql`(${characters.createdAt}, ${characters.id}) < (select previous.created_at, previous.id from characters previous where previous.id = ${filter.afterId})`,
    );
  }
  return db
    .select(summaryColumns)
    .from(characters)
    .where(conditions.length > 0 ? and(...conditions) : undefined)
    .orderBy(desc(characters.createdAt), desc(characters.id))
    .limit(filter.limit);
}

export async function countOwnedCharacters(db: Executor, ownerUserId: string): Promise<number> {
  const [row] = await db.select({ count: sql<number>`count(*)::int` }).from(characters).where(eq(characters.ownerUserId, ownerUserId));
  return Number(row?.count ?? 0);
}

export async function insertCharacter(db: Executor, values: CharacterInsert): Promise<string> {
  const [row] = await db.insert(characters).values(values).returning({ id: characters.id });
  return row!.id;
}

export async function updateCharacter(db: Executor, characterId: string, values: Partial<CharacterInsert>): Promise<boolean> {
  const rows = await db
    .update(characters)
    .set({ ...values, updatedAt: new Date() })
    .where(eq(characters.id, characterId))
    .returning({ id: characters.id });
  return rows.length > 0;
}

export async function deleteCharacter(db: Executor, characterId: string): Promise<boolean> {
  const rows = await db.delete(characters).where(eq(characters.id, characterId)).returning({ id: characters.id });
  return rows.length > 0;
}

export async function readAvatar(db: Executor, characterId: string): Promise<string | null> {
  const [row] = await db.select({ avatar: characters.avatar }).from(characters).where(eq(characters.id, characterId)).limit(1);
  return row?.avatar ?? null;
}

/** PostgreSQL's unique_violation, as node-postgres and PGlite report it (Drizzle may wrap it). */
export function isUniqueViolation(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current && depth < 4; depth += 1) {
    if (typeof current === 'object' && (current as { code?: unknown }).code === '23505') return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
