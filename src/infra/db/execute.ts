import type { QueryOptions } from '@electric-sql/pglite';
import { DrizzleQueryError, SQL, StringChunk, type Query, type SQLWrapper } from 'drizzle-orm';
import pg from 'pg';
import type { Database } from './database.js';

/**
 * Plain `sql` templates put together without Drizzle's builder, for every statement of the process.
 *
 * Drizzle's `sqlToQuery` asks `is(chunk, Kind)` — a walk up the prototype chain comparing entity
 * kinds — for up to a dozen kinds on every chunk of every nested `sql` template; a chat turn's
 * statements (the recall, the credit hold, the turn's write) are a few hundred chunks each, so
 * building them was ≈ 5 % of a turn's CPU on the main thread (issue 14, CPU profile of
 * `bench/turn-rate.ts`). Most of Anima's statements are templates of text, nested templates and
 * plain values (byte arrays too: both drivers send them as binary parameters): `compile` walks
 * just those, with `instanceof`, and gives anything else (tables, columns, Drizzle params with encoders, placeholders, inlined params — every query builder's SQL)
 * back to Drizzle's own `sqlToQuery`, which then builds it as before. The text and parameters are the
 * same (`$1`, `$2`… in order; `test/foundation/execute.test.ts` holds them equal on the turn's
 * statements), and everything after building — preparing, running, errors, query logging — is Drizzle's.
 *
 * Installed once on the database's dialect, which the database and its transactions share.
 */
export function buildPlainStatementsDirectly(db: Database): void {
  const dialect = (db as unknown as { dialect?: { sqlToQuery?: (statement: SQL, invokeSource?: unknown) => Query } }).dialect;
  if (typeof dialect?.sqlToQuery !== 'function') throw new Error("Drizzle's database has no dialect.sqlToQuery: see src/infra/db/execute.ts");
  const drizzles = dialect.sqlToQuery.bind(dialect);
  dialect.sqlToQuery = (statement, invokeSource) => compile(statement) ?? drizzles(statement, invokeSource);
}

/** The statement's text and parameters, or undefined when it holds a chunk only Drizzle builds. */
export function compile(statement: SQL): Query | undefined {
  const text: string[] = [];
  const params: unknown[] = [];
  return walk(statement, text, params) ? { sql: text.join(''), params } : undefined;
}

function walk(statement: SQL, text: string[], params: unknown[]): boolean {
  // `sql.inline`'d / `.inlineParams()` statements write values into the text: Drizzle's job.
  if ((statement as unknown as { shouldInlineParams: boolean }).shouldInlineParams) return false;
  for (const chunk of statement.queryChunks as unknown[]) {
    if (chunk instanceof StringChunk) {
      for (const part of chunk.value) text.push(part);
    } else if (chunk instanceof SQL) {
      if (!walk(chunk, text, params)) return false;
    } else if (chunk === undefined) {
      continue;
    } else if (chunk === null || typeof chunk === 'string' || typeof chunk === 'number' || typeof chunk === 'boolean' || typeof chunk === 'bigint' || chunk instanceof Uint8Array) {
      params.push(chunk);
      text.push(`$${params.length}`);
    } else {
      return false;
    }
  }
  return true;
}

/** What a driver answers a statement with (PGlite's and node-postgres' results both have `rows`). */
export type RunStatement = (text: string, params: unknown[]) => Promise<unknown>;

/**
 * `db.execute(template)` straight to the driver for the templates `compile` builds. Drizzle's
 * `execute` builds, on every call, a prepared-query object (on PGlite with two fresh tables of nine
 * type parsers each; on node-postgres two `getTypeParser` closures and tracing spans), a `PgRaw`
 * and a promise chain, then calls the driver with the same text, parameters and parsers as here;
 * on a chat turn that was ≈ 10 KB and over 1 % of the main thread's CPU for its three statements
 * (issue 14, fourteenth pass). `run` calls the driver as Drizzle's session does (see
 * `drizzleRawPgliteOptions` / `drizzleRawPgTypes`); an error comes back wrapped as Drizzle wraps it
 * (`DrizzleQueryError`, the driver's error as its cause), and Drizzle's query logger still sees it. Strings, builders and anything `compile`
 * hands back go through Drizzle's own `execute`; transactions keep theirs. The answer is a promise
 * that runs at once (Drizzle's waits to be awaited; every caller awaits it).
 */
export function executePlainStatementsDirectly(db: Database, run: RunStatement): void {
  const drizzles = db.execute.bind(db);
  // Drizzle's session logger (read at each call: it can be swapped) still sees every statement.
  const session = (db as unknown as { session: { logger: { logQuery(query: string, params: unknown[]): void } } }).session;
  const direct = (query: SQLWrapper | string) => {
    if (typeof query === 'string') return drizzles(query);
    const built = compile(query.getSQL());
    if (!built) return drizzles(query);
    session.logger.logQuery(built.sql, built.params);
    return run(built.sql, built.params).catch((error: unknown) => {
      throw new DrizzleQueryError(built.sql, built.params, error as Error);
    });
  };
  (db as unknown as { execute: typeof direct }).execute = direct;
}

const identity = (value: string) => value;

/**
 * The types Drizzle's sessions hand back as PostgreSQL's text for a raw `execute` (the same ids on both
 * drivers): timestamp, timestamptz, interval, date, and the arrays numeric[], timestamp[], timestamptz[],
 * interval[], date[].
 */
const RAW_TEXT_TYPE_IDS = [1114, 1184, 1186, 1082, 1231, 1115, 1185, 1187, 1182];
const RAW_TEXT_TYPES = new Set(RAW_TEXT_TYPE_IDS);

/** The parsers Drizzle's PGlite session gives a raw `execute`. */
export const drizzleRawPgliteOptions: QueryOptions = {
  rowMode: 'object',
  parsers: Object.fromEntries(RAW_TEXT_TYPE_IDS.map((id) => [id, identity])),
};

/** The type parsers Drizzle's node-postgres session gives a raw `execute` (pg's own for the other types). */
export const drizzleRawPgTypes = {
  getTypeParser: (typeId: number, format?: 'text' | 'binary') =>
    RAW_TEXT_TYPES.has(typeId) ? identity : (pg.types.getTypeParser as (id: number, format?: string) => unknown)(typeId, format),
};
