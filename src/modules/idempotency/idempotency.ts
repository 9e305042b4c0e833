import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { and, eq, lte } from 'drizzle-orm';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Executor } from '../../infra/db/database.js';
import { AppError, ValidationError } from '../../infra/http/errors.js';
import { bodyEndUser, endUserContext, requirePrincipal } from '../identity/auth.js';
import type { IdentityService } from '../identity/service.js';
import { idempotencyKeys } from './tables.js';

/**
 * `Idempotency-Key` for any route that opts in with `config: { idempotency: true }`. The key is scoped to the acting user and the route; the request's fingerprint
 * (route parameters, query, body, the place and Accept headers) is stored with it. The acting user
 * is the one the handler acts for (`config.endUserField` when the body names them).
 *
 * - first request: claimed (`in_flight`); a 2xx answer is stored (`done`) and replayed for 24 h
 *   (IDEMPOTENCY_TTL_SECONDS) without running the handler again (`Idempotent-Replayed: true`);
 *   any other answer releases the key, so a retry after a 429/502/504 runs again;
 * - same key, different request → 422 `idempotency_key_reused`;
 * - same key while the first is still running → 409 `idempotency_key_in_flight` (Retry-After: 1);
 * - streamed answers (SSE, streamed audio) cannot be replayed byte for byte: once one completed, the
 *   same key answers 409 `idempotency_key_used` (the answer is in the conversation); a stream that
 *   produced no answer (`markIdempotencyFailed`) releases its key.
 * A holder that died mid-request is taken over once `locked_until` passed.
 */

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Opt in to Idempotency-Key handling. */
    idempotency?: boolean;
  }
  interface FastifyRequest {
    idempotency: IdempotencyClaim | undefined;
  }
}

export interface IdempotencyClaim {
  userId: string;
  route: string;
  key: string;
  replayed: boolean;
  settled: boolean;
  /** Set by a streamed route whose answer never came: the key is released instead of kept. */
  failed: boolean;
}

export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,200}$/;
/** Response headers replayed with a stored answer (besides Content-Type). */
const REPLAYED_HEADER = /^(cache-control|content-type|x-(?!request-id$)[a-z0-9-]+)$/i;
const FINGERPRINT_HEADERS = ['x-channel-id', 'x-guild-id', 'accept'] as const;

export interface IdempotencyOptions {
  db: Executor;
  identity: IdentityService;
  logger: Logger;
  /** How long a finished answer is kept for replay. */
  ttlMs: number;
  /** How long an in-flight claim holds before another request may take it over (a crashed holder). */
  lockMs: number;
  now?: () => Date;
}

/** A stream whose turn produced no answer: its key is released so the client's retry runs again. */
export function markIdempotencyFailed(request: FastifyRequest): void {
  if (request.idempotency) request.idempotency.failed = true;
}

export function registerIdempotency(app: FastifyInstance, options: IdempotencyOptions): void {
  const { db, logger } = options;
  const now = options.now ?? (() => new Date());
  app.decorateRequest('idempotency', undefined);

  app.addHook('preHandler', async (request, reply) => {
    const setting = request.routeOptions.config.idempotency;
    if (!setting) return;
    const header = request.headers['idempotency-key'];
    if (header === undefined) return;
    const key = (Array.isArray(header) ? header[0] : header)?.trim() ?? '';
    if (!IDEMPOTENCY_KEY_PATTERN.test(key)) throw new ValidationError('Idempotency-Key', 'An Idempotency-Key is 1 to 200 printable ASCII characters (a UUID is a good choice).');
    const userId = await actingUserId(options.identity, request);
    // An admin key acting for nobody has no user to scope the key to: the request runs as usual.
    if (!userId) return;
    const route = `${request.method} ${request.routeOptions.url ?? request.url}`;
    const outcome = await claim(db, { userId, route, key, fingerprint: fingerprintOf(request), now: now(), ttlMs: options.ttlMs, lockMs: options.lockMs });
    if (outcome.kind === 'mismatch') {
      throw new AppError(422, 'idempotency_key_reused', 'This Idempotency-Key was used with a different request; send a new key for a new request.', { extra: { field: 'Idempotency-Key' } });
    }
    if (outcome.kind === 'in_flight') {
      throw new AppError(409, 'idempotency_key_in_flight', 'A request with this Idempotency-Key is still being processed; retry when it has finished.', {
        extra: { field: 'Idempotency-Key' },
        headers: { 'retry-after': '1' },
      });
    }
    request.idempotency = { userId, route, key, replayed: outcome.kind !== 'claimed', settled: outcome.kind !== 'claimed', failed: false };
    if (outcome.kind === 'streamed') {
      throw new AppError(409, 'idempotency_key_used', 'The streamed request with this Idempotency-Key already completed (a stream cannot be replayed; the answer is stored). Send a new key to ask again.', {
        extra: { field: 'Idempotency-Key' },
      });
    }
    if (outcome.kind === 'replay') {
      const row = outcome.row;
      for (const [name, value] of Object.entries(row.responseHeaders ?? {})) reply.header(name, value);
      reply.header('idempotent-replayed', 'true');
      reply.code(row.responseStatus!);
      return reply.send(row.responseEncoding === 'base64' ? Buffer.from(row.responseBody ?? '', 'base64') : (row.responseBody ?? ''));
    }
    // Claimed: a stream (hijacked reply) or a client that left never reaches onSend; settle on close.
    reply.raw.once('close', () => {
      const current = request.idempotency;
      if (!current || current.settled) return;
      current.settled = true;
      const done = current.failed ? release(db, current) : complete(db, current, now(), options.ttlMs, undefined);
      done.catch((error: unknown) => logger.warn({ err: error, route }, 'could not settle an idempotency key'));
    });
    return undefined;
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const current = request.idempotency;
    if (!current || current.settled) return payload;
    current.settled = true;
    try {
      if (reply.statusCode >= 200 && reply.statusCode < 300 && !current.failed) {
        await complete(db, current, now(), options.ttlMs, storedAnswer(reply, payload));
      } else {
        await release(db, current);
      }
    } catch (error) {
      logger.warn({ err: error, route: current.route }, 'could not store an idempotent answer');
    }
    return payload;
  });
}

async function actingUserId(identity: IdentityService, request: FastifyRequest): Promise<string | undefined> {
  const principal = requirePrincipal(request);
  const user = await identity.resolveActingUser(principal, endUserContext(request, bodyEndUser(request)));
  return user?.id;
}

/** SHA-256 over what makes two requests the same request: route parameters, query, body, place and Accept. */
function fingerprintOf(request: FastifyRequest): string {
  const headers = Object.fromEntries(FINGERPRINT_HEADERS.map((name) => [name, request.headers[name] ?? null]));
  return createHash('sha256').update(canonicalJson({ params: request.params ?? null, query: request.query ?? null, body: request.body ?? null, headers })).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, member]) => member !== undefined).sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0));
    return `{${entries.map(([name, member]) => `${JSON.stringify(name)}:${canonicalJson(member)}`).join(',')}}`;
  }
  if (Buffer.isBuffer(value)) return JSON.stringify(value.toString('base64'));
  return JSON.stringify(value ?? null);
}

type StoredAnswer = { status: number; headers: Record<string, string>; body: string; encoding: 'utf8' | 'base64' };

/** The answer as it will be replayed; undefined for a streamed body (not replayable). */
function storedAnswer(reply: FastifyReply, payload: unknown): StoredAnswer | undefined {
  if (payload instanceof Readable) return undefined;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (REPLAYED_HEADER.test(name) && value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  if (Buffer.isBuffer(payload)) return { status: reply.statusCode, headers, body: payload.toString('base64'), encoding: 'base64' };
  if (typeof payload === 'string') return { status: reply.statusCode, headers, body: payload, encoding: 'utf8' };
  if (payload === null || payload === undefined) return { status: reply.statusCode, headers, body: '', encoding: 'utf8' };
  return undefined;
}

type Row = typeof idempotencyKeys.$inferSelect;
type ClaimOutcome = { kind: 'claimed' } | { kind: 'mismatch' } | { kind: 'in_flight' } | { kind: 'streamed' } | { kind: 'replay'; row: Row };

const keyOf = (entry: { userId: string; route: string; key: string }) =>
  and(eq(idempotencyKeys.userId, entry.userId), eq(idempotencyKeys.route, entry.route), eq(idempotencyKeys.key, entry.key));

async function claim(
  db: Executor,
  entry: { userId: string; route: string; key: string; fingerprint: string; now: Date; ttlMs: number; lockMs: number },
): Promise<ClaimOutcome> {
  const lockedUntil = new Date(entry.now.getTime() + entry.lockMs);
  const expiresAt = new Date(entry.now.getTime() + entry.ttlMs);
  for (let attempt = 0; attempt < 4; attempt += 1) {
    const inserted = await db
      .insert(idempotencyKeys)
      .values({ userId: entry.userId, route: entry.route, key: entry.key, fingerprint: entry.fingerprint, state: 'in_flight', lockedUntil, expiresAt })
      .onConflictDoNothing()
      .returning({ key: idempotencyKeys.key });
    if (inserted.length > 0) return { kind: 'claimed' };
    const [row] = await db.select().from(idempotencyKeys).where(keyOf(entry)).limit(1);
    if (!row) continue; // released in the meantime
    if (row.expiresAt.getTime() <= entry.now.getTime()) {
      await db.delete(idempotencyKeys).where(and(keyOf(entry), lte(idempotencyKeys.expiresAt, entry.now)));
      continue;
    }
    if (row.fingerprint !== entry.fingerprint) return { kind: 'mismatch' };
    if (row.state === 'done') return row.responseStatus === null ? { kind: 'streamed' } : { kind: 'replay', row };
    if (row.lockedUntil.getTime() > entry.now.getTime()) return { kind: 'in_flight' };
    // The first holder died mid-request: take the key over (one taker wins).
    const taken = await db
      .update(idempotencyKeys)
      .set({ lockedUntil, expiresAt })
      .where(and(keyOf(entry), eq(idempotencyKeys.state, 'in_flight'), lte(idempotencyKeys.lockedUntil, entry.now)))
      .returning({ key: idempotencyKeys.key });
    if (taken.length > 0) return { kind: 'claimed' };
  }
  return { kind: 'in_flight' };
}

async function complete(db: Executor, entry: IdempotencyClaim, now: Date, ttlMs: number, answer: StoredAnswer | undefined): Promise<void> {
  await db
    .update(idempotencyKeys)
    .set({
      state: 'done',
      responseStatus: answer?.status ?? null,
      responseHeaders: answer?.headers ?? null,
      responseBody: answer?.body ?? null,
      responseEncoding: answer?.encoding ?? null,
      expiresAt: new Date(now.getTime() + ttlMs),
    })
    .where(and(keyOf(entry), eq(idempotencyKeys.state, 'in_flight')));
}

async function release(db: Executor, entry: IdempotencyClaim): Promise<void> {
  await db.delete(idempotencyKeys).where(and(keyOf(entry), eq(idempotencyKeys.state, 'in_flight')));
}

/** Deletes expired keys; the `idempotency.purge` job. */
export async function purgeExpiredIdempotencyKeys(db: Executor, now: Date = new Date()): Promise<number> {
  const deleted = await db.delete(idempotencyKeys).where(lte(idempotencyKeys.expiresAt, now)).returning({ key: idempotencyKeys.key });
  return deleted.length;
}
