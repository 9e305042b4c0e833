import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { sql } from '../../infra/db/sql.js';
import type { Database } from '../../infra/db/database.js';
import { memoryFormationState } from './tables.js';

/**
 * One formation at a time per conversation and speaker, across processes and replicas: a lease row
 * taken by one atomic upsert (works the same on PGlite and PostgreSQL). Why not an advisory lock:
 * formation holds its turn across a model call of up to the upstream timeout, and a transaction
 * (pg_advisory_xact_lock) or a session lock on a pooled connection would pin a connection that
 * long; on the embedded database, whose single connection every query shares, it would stall the
 * service. A lease expires by itself when its holder dies, so a crash never wedges a conversation.
 *
 * The row also keeps how far formation has read (`formed_until`): a run that waited for another
 * starts where that one finished, finds nothing new and makes no model call.
 */

const POLL_MS = 100;

export interface FormationLease {
  token: string;
  /** The last message time an earlier run already read, if any. */
  formedUntil: Date | undefined;
}

export async function acquireFormationLease(
  db: Database,
  key: { conversationId: string; userId: string },
  options: { leaseMs: number; waitMs: number },
): Promise<FormationLease | undefined> {
  const token = randomUUID();
  const deadline = Date.now() + options.waitMs;
  for (;;) {
    const leaseSeconds = options.leaseMs / 1000;
    const rows = await db
      .insert(memoryFormationState)
      .values({ conversationId: key.conversationId, userId: key.userId, lockToken: token, lockedUntil: sql`now() + make_interval(secs => ${leaseSeconds})` })
      .onConflictDoUpdate({
        target: [memoryFormationState.conversationId, memoryFormationState.userId],
        set: { lockToken: token, lockedUntil: sql`now() + make_interval(secs => ${leaseSeconds})`, updatedAt: sql`now()` },
        setWhere: sql`${memoryFormationState.lockedUntil} IS NULL OR ${memoryFormationState.lockedUntil} < now()`,
      })
      .returning({ formedUntil: memoryFormationState.formedUntil, lockToken: memoryFormationState.lockToken });
    const row = rows[0];
    if (row?.lockToken === token) return { token, formedUntil: row.formedUntil ?? undefined };
    if (Date.now() >= deadline) return undefined;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** Ends the lease; with `lastMessageId`, records that formation has read through that message (its exact timestamp). */
export async function releaseFormationLease(db: Database, key: { conversationId: string; userId: string }, token: string, lastMessageId: string | undefined): Promise<void> {
  await db
    .update(memoryFormationState)
    .set({
      lockToken: null,
      lockedUntil: null,
      updatedAt: sql`now()`,
      ...(lastMessageId ? { formedUntil: sql`(SELECT m.created_at FROM messages m WHERE m.id = ${lastMessageId})` } : {}),
    })
    .where(and(eq(memoryFormationState.conversationId, key.conversationId), eq(memoryFormationState.userId, key.userId), eq(memoryFormationState.lockToken, token)));
}
