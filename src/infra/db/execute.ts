import { SQL, StringChunk, type Query } from 'drizzle-orm';
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
