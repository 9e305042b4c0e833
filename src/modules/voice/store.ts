import { and, asc, desc, eq, type SQL } from 'drizzle-orm';
import type { Database } from '../../infra/db/database.js';
import { voiceRequests, voices, type VoiceRequestRow, type VoiceRow } from './tables.js';

export interface VoiceFilter {
  language?: string | undefined;
  gender?: string | undefined;
  provider?: string | undefined;
  includeInactive?: boolean;
}

export async function listVoices(db: Database, filter: VoiceFilter): Promise<VoiceRow[]> {
  const conditions: SQL[] = [];
  if (!filter.includeInactive) conditions.push(eq(voices.active, true));
  if (filter.language) conditions.push(eq(voices.language, filter.language));
  if (filter.gender) conditions.push(eq(voices.gender, filter.gender));
  if (filter.provider) conditions.push(eq(voices.provider, filter.provider));
  return db
    .select()
    .from(voices)
    .where(conditions.length > 0 ? and(...conditions) : undefined)
    .orderBy(asc(voices.provider), asc(voices.name));
}

export async function findVoiceByName(db: Database, name: string): Promise<VoiceRow | undefined> {
  const [row] = await db.select().from(voices).where(eq(voices.name, name));
  return row;
}

export async function findVoiceById(db: Database, id: string): Promise<VoiceRow | undefined> {
  const [row] = await db.select().from(voices).where(eq(voices.id, id));
  return row;
}

export type VoiceInsert = typeof voices.$inferInsert & { name: string };

export async function insertVoice(db: Database, values: VoiceInsert): Promise<VoiceRow> {
  const [row] = await db.insert(voices).values(values).returning();
  return row!;
}

export async function updateVoice(db: Database, id: string, values: Partial<typeof voices.$inferInsert>): Promise<VoiceRow | undefined> {
  const [row] = await db
    .update(voices)
    .set({ ...values, updatedAt: new Date() })
    .where(eq(voices.id, id))
    .returning();
  return row;
}

export async function insertVoiceRequest(db: Database, values: typeof voiceRequests.$inferInsert): Promise<void> {
  await db.insert(voiceRequests).values(values);
}

export async function voiceRequestsOf(db: Database, userId: string, limit: number): Promise<VoiceRequestRow[]> {
  return db.select().from(voiceRequests).where(eq(voiceRequests.userId, userId)).orderBy(desc(voiceRequests.createdAt)).limit(limit);
}
