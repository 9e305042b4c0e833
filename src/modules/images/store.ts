import { and, asc, desc, eq, inArray, lt, or } from 'drizzle-orm';
import type { Executor } from '../../infra/db/database.js';
import { generatedImages, type GeneratedImageRow } from './tables.js';

export type NewImageRow = typeof generatedImages.$inferInsert;

export async function insertImages(db: Executor, rows: NewImageRow[]): Promise<GeneratedImageRow[]> {
  return db.insert(generatedImages).values(rows).returning();
}

export async function imagesOfGeneration(db: Executor, generationId: string): Promise<GeneratedImageRow[]> {
  return db.select().from(generatedImages).where(eq(generatedImages.generationId, generationId)).orderBy(asc(generatedImages.position));
}

export async function findImage(db: Executor, id: string): Promise<GeneratedImageRow | undefined> {
  const [row] = await db.select().from(generatedImages).where(eq(generatedImages.id, id));
  return row;
}

export async function updateImage(db: Executor, id: string, values: Partial<NewImageRow>): Promise<GeneratedImageRow | undefined> {
  const [row] = await db.update(generatedImages).set({ ...values, updatedAt: new Date() }).where(eq(generatedImages.id, id)).returning();
  return row;
}

/** Updates every image of a generation still unfinished (pending or running). */
export async function updateUnfinished(db: Executor, generationId: string, values: Partial<NewImageRow>): Promise<void> {
  await db
    .update(generatedImages)
    .set({ ...values, updatedAt: new Date() })
    .where(and(eq(generatedImages.generationId, generationId), inArray(generatedImages.status, ['pending', 'running'])));
}

export interface ListFilter {
  userId: string;
  favorite?: boolean | undefined;
  characterId?: string | undefined;
  status?: GeneratedImageRow['status'] | undefined;
  /** Keyset cursor: rows strictly older than this (created_at, id). */
  before?: { createdAt: Date; id: string } | undefined;
  limit: number;
}

/** A user's images, newest first, by keyset (created_at, id) so pages never skip or repeat. */
export async function listImages(db: Executor, filter: ListFilter): Promise<GeneratedImageRow[]> {
  const conditions = [eq(generatedImages.userId, filter.userId)];
  if (filter.favorite !== undefined) conditions.push(eq(generatedImages.favorite, filter.favorite));
  if (filter.characterId !== undefined) conditions.push(eq(generatedImages.characterId, filter.characterId));
  if (filter.status !== undefined) conditions.push(eq(generatedImages.status, filter.status));
  if (filter.before) {
    conditions.push(or(lt(generatedImages.createdAt, filter.before.createdAt), and(eq(generatedImages.createdAt, filter.before.createdAt), lt(generatedImages.id, filter.before.id)))!);
  }
  return db
    .select()
    .from(generatedImages)
    .where(and(...conditions))
    .orderBy(desc(generatedImages.createdAt), desc(generatedImages.id))
    .limit(filter.limit);
}

export async function deleteImage(db: Executor, id: string): Promise<void> {
  await db.delete(generatedImages).where(eq(generatedImages.id, id));
}

export async function imagesOfUser(db: Executor, userId: string): Promise<GeneratedImageRow[]> {
  return db.select().from(generatedImages).where(eq(generatedImages.userId, userId)).orderBy(asc(generatedImages.createdAt));
}

