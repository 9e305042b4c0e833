import { and, asc, eq, isNull, type SQL } from 'drizzle-orm';
import type { Executor } from '../../infra/db/database.js';
import { channelBindings } from './tables.js';

export type BindingRow = typeof channelBindings.$inferSelect;
export type NewBindingRow = typeof channelBindings.$inferInsert;

export interface BindingFilter {
  platform: string;
  guildId?: string | undefined;
  channelId?: string | undefined;
  categoryId?: string | undefined;
  characterId?: string | undefined;
}

/** At most this many rows per listing: a server's bindings, not a data export. */
const LIST_LIMIT = 500;

export async function listBindings(db: Executor, filter: BindingFilter): Promise<BindingRow[]> {
  const conditions: SQL[] = [eq(channelBindings.platform, filter.platform)];
  if (filter.guildId !== undefined) conditions.push(eq(channelBindings.guildId, filter.guildId));
  if (filter.channelId !== undefined) conditions.push(eq(channelBindings.channelId, filter.channelId));
  if (filter.categoryId !== undefined) conditions.push(eq(channelBindings.categoryId, filter.categoryId));
  if (filter.characterId !== undefined) conditions.push(eq(channelBindings.characterId, filter.characterId));
  return db
    .select()
    .from(channelBindings)
    .where(and(...conditions))
    .orderBy(asc(channelBindings.createdAt), asc(channelBindings.id))
    .limit(LIST_LIMIT);
}

/** Every binding of a server that could apply to one channel: its own, its category's, the server default. */
export async function bindingsOfGuild(db: Executor, platform: string, guildId: string): Promise<BindingRow[]> {
  return db
    .select()
    .from(channelBindings)
    .where(and(eq(channelBindings.platform, platform), eq(channelBindings.guildId, guildId)))
    .orderBy(asc(channelBindings.createdAt), asc(channelBindings.id))
    .limit(LIST_LIMIT);
}

export async function findBinding(db: Executor, id: string): Promise<BindingRow | undefined> {
  const [row] = await db.select().from(channelBindings).where(eq(channelBindings.id, id)).limit(1);
  return row;
}

export async function findSamePlace(db: Executor, row: Pick<NewBindingRow, 'platform' | 'guildId' | 'channelId' | 'categoryId' | 'characterId'>): Promise<BindingRow | undefined> {
  const [found] = await db
    .select()
    .from(channelBindings)
    .where(
      and(
        eq(channelBindings.platform, row.platform),
        eq(channelBindings.guildId, row.guildId),
        row.channelId ? eq(channelBindings.channelId, row.channelId) : isNull(channelBindings.channelId),
        row.categoryId ? eq(channelBindings.categoryId, row.categoryId) : isNull(channelBindings.categoryId),
        eq(channelBindings.characterId, row.characterId),
      ),
    )
    .limit(1);
  return found;
}

export async function insertBinding(db: Executor, row: NewBindingRow): Promise<BindingRow | undefined> {
  const [inserted] = await db.insert(channelBindings).values(row).onConflictDoNothing().returning();
  return inserted;
}

export async function updateBinding(db: Executor, id: string, patch: Partial<Pick<NewBindingRow, 'triggers' | 'freeWill' | 'voiceReplies'>>): Promise<BindingRow | undefined> {
  const [row] = await db
    .update(channelBindings)
    .set({ ...patch, updatedAt: new Date() })
    .where(eq(channelBindings.id, id))
    .returning();
  return row;
}

export async function deleteBinding(db: Executor, id: string): Promise<boolean> {
  const rows = await db.delete(channelBindings).where(eq(channelBindings.id, id)).returning({ id: channelBindings.id });
  return rows.length > 0;
}
