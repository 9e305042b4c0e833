import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { and, asc, eq, isNotNull, lte } from 'drizzle-orm';
import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import type { Database } from '../../infra/db/database.js';
import type { MediaStore } from '../../infra/media/index.js';
import { NotFoundError } from '../../infra/http/errors.js';
import type { UserRow } from '../identity/store.js';
import { media, type MediaRow } from './tables.js';

export type MediaKind = MediaRow['kind'];

export interface SaveMedia {
  userId: string | null;
  kind: MediaKind;
  bytes: Buffer;
  contentType: string;
  expiresAt?: Date | null | undefined;
  metadata?: Record<string, unknown> | undefined;
}

/** Who asks to read a media object: its owner (or an admin), or the holder of a valid signed URL. */
export type MediaViewer = { user: UserRow | undefined; admin: boolean } | { signature: { expires: number; signature: string } };

export interface MediaContent {
  row: MediaRow;
  bytes: Buffer;
  contentType: string;
}

const EXTENSIONS: Record<string, string> = {
  'audio/mpeg': 'mp3',
  'audio/wav': 'wav',
  'audio/x-wav': 'wav',
  'audio/pcm': 'pcm',
  'audio/basic': 'ulaw',
  'audio/ogg': 'ogg',
  'audio/opus': 'opus',
  'audio/flac': 'flac',
  'audio/webm': 'webm',
  'audio/mp4': 'm4a',
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
  'image/gif': 'gif',
};

export interface MediaServiceDependencies {
  config: Readonly<Config>;
  db: Database;
  store: MediaStore;
  logger: Logger;
}

/**
 * Stored media: bytes in the MediaStore, ownership and expiry in the `media` table. Reading needs
 * the owner's (or an admin's) credentials or an HMAC-signed, expiring URL, so Discord or a
 * browser's <audio> can fetch a voice reply without a bearer token.
 */
export class MediaService {
  private readonly signingKey: Buffer;

  constructor(private readonly dependencies: MediaServiceDependencies) {
    this.signingKey = signingKeyFrom(dependencies.config);
  }

  get store(): MediaStore {
    return this.dependencies.store;
  }

  async save(input: SaveMedia): Promise<MediaRow> {
    const { db, store } = this.dependencies;
    const id = crypto.randomUUID();
    const extension = EXTENSIONS[input.contentType.split(';')[0]?.trim() ?? ''] ?? 'bin';
    const storageKey = `${input.kind}/${input.userId ?? 'system'}/${id}.${extension}`;
    await store.put(storageKey, input.bytes, input.contentType);
    try {
      const [row] = await db
        .insert(media)
        .values({
          id,
          userId: input.userId,
          kind: input.kind,
          contentType: input.contentType,
          byteSize: input.bytes.length,
          storageKey,
          expiresAt: input.expiresAt ?? null,
          metadata: input.metadata ?? {},
        })
        .returning();
      return row!;
    } catch (error) {
      await store.delete(storageKey).catch(() => undefined);
      throw error;
    }
  }

  async find(id: string): Promise<MediaRow | undefined> {
    if (!UUID.test(id)) return undefined;
    const [row] = await this.dependencies.db.select().from(media).where(eq(media.id, id));
    if (!row || (row.expiresAt && row.expiresAt.getTime() <= Date.now())) return undefined;
    return row;
  }

  /** The object with its bytes, for a viewer allowed to see it; 404 otherwise (also for others' media). */
  async read(id: string, viewer: MediaViewer): Promise<MediaContent> {
    const row = await this.find(id);
    if (!row || !this.mayRead(row, viewer)) throw new NotFoundError('Media');
    const stored = await this.dependencies.store.get(row.storageKey);
    if (!stored) throw new NotFoundError('Media');
    return { row, bytes: stored.bytes, contentType: row.contentType };
  }

  private mayRead(row: MediaRow, viewer: MediaViewer): boolean {
    if ('signature' in viewer) return this.verify(row.id, viewer.signature.expires, viewer.signature.signature);
    if (viewer.admin) return true;
    return viewer.user !== undefined && row.userId === viewer.user.id;
  }

  /** An absolute URL anyone may fetch until it expires (capped by the object's own expiry). */
  signedUrl(row: Pick<MediaRow, 'id' | 'expiresAt'>, options: { ttlSeconds?: number; origin?: string | undefined } = {}): { url: string; expiresAt: Date } {
    const { config } = this.dependencies;
    let expires = Math.floor(Date.now() / 1000) + (options.ttlSeconds ?? config.media.urlTtlSeconds);
    if (row.expiresAt) expires = Math.min(expires, Math.floor(row.expiresAt.getTime() / 1000));
    const base = (config.publicBaseUrl ?? options.origin ?? `http://localhost:${config.port}`).replace(/\/+$/, '');
    const signature = this.sign(row.id, expires);
    return { url: `${base}/v1/media/${row.id}?expires=${expires}&signature=${signature}`, expiresAt: new Date(expires * 1000) };
  }

  private sign(id: string, expires: number): string {
    return createHmac('sha256', this.signingKey).update(`media:${id}:${expires}`).digest('base64url');
  }

  private verify(id: string, expires: number, signature: string): boolean {
    if (!Number.isInteger(expires) || expires * 1000 <= Date.now()) return false;
    const expected = Buffer.from(this.sign(id, expires));
    const given = Buffer.from(signature);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }

  async delete(id: string): Promise<boolean> {
    const { db, store } = this.dependencies;
    if (!UUID.test(id)) return false;
    const [row] = await db.delete(media).where(eq(media.id, id)).returning();
    if (!row) return false;
    await store.delete(row.storageKey);
    return true;
  }

  /** Removes every object a user owns (DELETE /v1/me); bytes first, then rows. */
  async deleteAllOf(userId: string): Promise<number> {
    const { db, store } = this.dependencies;
    const rows = await db.select({ id: media.id, storageKey: media.storageKey }).from(media).where(eq(media.userId, userId));
    for (const row of rows) await store.delete(row.storageKey);
    await db.delete(media).where(eq(media.userId, userId));
    return rows.length;
  }

  async listOf(userId: string): Promise<MediaRow[]> {
    return this.dependencies.db.select().from(media).where(eq(media.userId, userId)).orderBy(asc(media.createdAt));
  }

  /** Deletes expired objects in batches; returns how many went. */
  async sweepExpired(batchSize = 500): Promise<number> {
    const { db, store, logger } = this.dependencies;
    let removed = 0;
    for (;;) {
      const rows = await db
        .select({ id: media.id, storageKey: media.storageKey })
        .from(media)
        .where(and(isNotNull(media.expiresAt), lte(media.expiresAt, new Date())))
        .limit(batchSize);
      for (const row of rows) {
        try {
          await store.delete(row.storageKey);
        } catch (error) {
          logger.warn({ err: error, mediaId: row.id }, 'could not delete expired media bytes; the row goes anyway');
        }
        await db.delete(media).where(eq(media.id, row.id));
      }
      removed += rows.length;
      if (rows.length < batchSize) return removed;
    }
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const MEDIA_URL_KEY_FILE = 'media-url.key';

/**
 * MEDIA_URL_SECRET when set; else derived from ENCRYPTION_KEY (the same on every replica); else
 * (development) a key generated once into DATA_DIR, so signed URLs survive restarts.
 */
function signingKeyFrom(config: Readonly<Config>): Buffer {
  if (config.media.urlSecret) return createHmac('sha256', 'anima-media-url').update(config.media.urlSecret).digest();
  if (config.encryptionKey) return createHmac('sha256', 'anima-media-url').update(Buffer.from(config.encryptionKey, 'base64')).digest();
  const file = path.join(config.dataDir, MEDIA_URL_KEY_FILE);
  try {
    return Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(config.dataDir, { recursive: true });
  const key = randomBytes(32);
  try {
    writeFileSync(file, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
    throw error;
  }
  return key;
}
