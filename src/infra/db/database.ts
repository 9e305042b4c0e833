import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { sql } from './sql.js';
import type { PgDatabase, PgQueryResultHKT, PgTransaction } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/node-postgres';
import { NamedStatementClient } from './pg-named-client.js';
import { migrate as migratePostgres } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import type { Logger } from 'pino';
import { projectFile } from '../project-files.js';
import * as schema from './schema.js';
import { acquireDirectoryLock, type DirectoryLock } from './directory-lock.js';
import { openPglite } from './pglite-open.js';
import { buildPlainStatementsDirectly, drizzleRawPgliteOptions, drizzleRawPgTypes, executePlainStatementsDirectly } from './execute.js';
import { ThreadedPglite } from './pglite-client.js';

export type Schema = typeof schema;
export type Database = PgDatabase<PgQueryResultHKT, Schema>;
export type Transaction = PgTransaction<PgQueryResultHKT, Schema>;
/** Store functions take this so callers can pass a transaction or the database itself. */
export type Executor = Database | Transaction;

export interface DatabaseHandle {
  db: Database;
  kind: 'embedded' | 'postgres';
  /** Round-trip check for /health/detailed. */
  ping(): Promise<void>;
  close(): Promise<void>;
}


export interface OpenDatabaseOptions {
  databaseUrl: string | undefined;
  dataDir: string;
  logger: Logger;
  /** Apply pending migrations (the server does; a read-only tool might not). */
  migrate?: boolean;
  /** The embedded database in its own worker thread (EMBEDDED_DATABASE_THREAD; default on). */
  thread?: boolean;
  /** Named prepared statements for repeated statements (DATABASE_PREPARED_STATEMENTS; default on). */
  preparedStatements?: boolean;
}

export async function openDatabase(options: OpenDatabaseOptions): Promise<DatabaseHandle> {
  const handle = options.databaseUrl
    ? await openPostgres(options.databaseUrl, options.preparedStatements ?? true)
    : await openEmbedded(options.dataDir, options.logger, options.thread ?? true, options.preparedStatements ?? true);
  if (options.migrate !== false) {
    try {
      await applyMigrations(handle);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }
  return handle;
}

/** Connections per process (server, worker) to PostgreSQL. */
const POOL_SIZE = 10;

async function openPostgres(databaseUrl: string, preparedStatements: boolean): Promise<DatabaseHandle> {
  // Statements a request repeats run as named prepared statements (see pg-named-client.ts).
  // A fixed-size pool (min = max, as HikariCP advises): a connection opened for a burst stays. With
  // pg's default (idle ones closed after 10 s) each burst after a quiet spell opened new server
  // backends, whose first statements pay backend start-up, catalog reads and re-preparing — the
  // first 300 ms of a 200 req/s series answered in 140–230 ms (bench/turn-rate.ts, docs/benchmarks.md).
  const pool = new pg.Pool({ connectionString: databaseUrl, max: POOL_SIZE, min: POOL_SIZE, ...(preparedStatements ? { Client: NamedStatementClient } : {}) });
  // Pool clients that die in the background must not crash the process.
  pool.on('error', () => undefined);
  const db = drizzlePostgres(pool, { schema }) as unknown as Database;
  buildPlainStatementsDirectly(db);
  executePlainStatementsDirectly(db, (text, params) => pool.query({ text, types: drizzleRawPgTypes } as pg.QueryConfig, params));
  return {
    db,
    kind: 'postgres',
    ping: async () => {
      await pool.query('select 1');
    },
    close: async () => {
      await pool.end();
    },
  };
}

async function openEmbedded(dataDir: string, logger: Logger, thread: boolean, preparedStatements: boolean): Promise<DatabaseHandle> {
  const databaseDir = path.resolve(dataDir, 'pglite');
  mkdirSync(databaseDir, { recursive: true });
  // PGlite is single-process: a second opener would corrupt the files, so refuse clearly instead.
  // A listening socket, released by the kernel when the process dies (even as PID 1 in a container).
  const lock: DirectoryLock = await acquireDirectoryLock(path.resolve(dataDir, 'pglite.sock'), 'the embedded database');
  // A first start runs PostgreSQL's initdb inside WebAssembly: say so, since it takes a while.
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) {
    logger.info({ databaseDir }, 'creating the embedded database (first start only; 10–60 s on a small machine)');
  }
  let client: PGlite | ThreadedPglite;
  try {
    client = thread ? await ThreadedPglite.create(databaseDir, { preparedStatements }) : await openPglite(databaseDir);
  } catch (error) {
    await lock.release();
    throw error;
  }
  logger.debug({ databaseDir, thread }, 'embedded database open');
  // Drizzle's PGlite driver uses query, exec and transaction, which ThreadedPglite answers the same way.
  const db = drizzlePglite(client as PGlite, { schema }) as unknown as Database;
  buildPlainStatementsDirectly(db);
  executePlainStatementsDirectly(db, (text, params) => client.query(text, params, drizzleRawPgliteOptions));
  return {
    db,
    kind: 'embedded',
    ping: async () => {
      await client.query('select 1');
    },
    close: async () => {
      try {
        if (!client.closed) await client.close();
      } finally {
        await lock.release();
      }
    },
  };
}

async function applyMigrations(handle: DatabaseHandle): Promise<void> {
  await handle.db.execute(sql`CREATE EXTENSION IF NOT EXISTS vector`);
  const folder = projectFile('drizzle');
  if (handle.kind === 'embedded') {
    await migratePglite(handle.db as never, { migrationsFolder: folder });
  } else {
    await migratePostgres(handle.db as never, { migrationsFolder: folder });
  }
}

/**
 * Who this database is: the random id migration 0011 stored, plus the database's oid (a dropped and
 * recreated or restored database gets a new one). Shared cache keys carry it, so cached rows of
 * another database behind the same Redis are never served.
 */
export async function readDatabaseIdentity(db: Database): Promise<string> {
  const read = async () => {
    const result: unknown = await db.execute(
      sql`SELECT (SELECT value #>> '{}' FROM system_settings WHERE key = 'database_identity') AS id, (SELECT oid::text FROM pg_database WHERE datname = current_database()) AS oid`,
    );
    return (result as { rows: Array<{ id: string | null; oid: string | null }> }).rows[0];
  };
  let row = await read();
  if (!row?.id) {
    await db.execute(sql`INSERT INTO system_settings (key, value) VALUES ('database_identity', to_jsonb(gen_random_uuid()::text)) ON CONFLICT (key) DO NOTHING`);
    row = await read();
  }
  return `${row?.id ?? 'unknown'}.${row?.oid ?? '0'}`;
}
