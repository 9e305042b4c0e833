import { type SQL } from 'drizzle-orm';
import { sql } from './sql.js';

/**
 * A common-table expression that makes the statement's own transaction commit without waiting for
 * its WAL to reach the disk (PostgreSQL's `synchronous_commit = off`, for this transaction only:
 * `set_config(…, true)` is undone when it ends). Reference `relaxed_commit` in the statement's FROM,
 * or PostgreSQL never evaluates it.
 *
 * What such a commit promises: visible to every session at once, as any commit; durable once the WAL
 * writer flushes (within three times `wal_writer_delay`, 600 ms by default), or as soon as any later
 * synchronous commit, which flushes the WAL up to itself and so everything committed before it. So a crash of the database can lose it only
 * while no later synchronous commit has followed — use it only for a write nothing acknowledged rests
 * on until such a commit: a credit hold (the turn's answer is stored, and its charge settled, by a
 * synchronous commit after it; a hold lost in a database crash is a hold of a turn that failed, with
 * nothing charged), never for a write a client is told is done.
 *
 * Only in a statement that is its own transaction: inside a caller's transaction it would relax that
 * whole transaction's commit. On the embedded default (PGlite runs without fsync) it changes nothing.
 */
export const RELAXED_COMMIT: SQL = sql`relaxed_commit AS (SELECT set_config('synchronous_commit', 'off', true) AS relaxed)`;
