import { SQL, StringChunk, type Query } from 'drizzle-orm';
import type { Executor } from './database.js';

/**
 * `db.execute(statement)` for the statements of a chat turn, with the statement's text and
 * parameters put together here instead of by Drizzle's `sqlToQuery`.
 *
 * Drizzle's builder asks `is(chunk, Kind)` — a walk up the prototype chain comparing entity kinds —
 * for up to a dozen kinds on every chunk of every nested `sql` template; the turn's statements (the
 * recall, the credit hold, the turn's write) are a few hundred chunks each, so building them was
 * ≈ 5 % of a chat turn's CPU on the main thread (issue 14, CPU profile of `bench/turn-rate.ts`).
 * These templates hold only text, nested templates and plain values; this walks just those, with
 * `instanceof`, and hands anything else (tables, columns, Drizzle params with encoders, inlined
 * params…) back to Drizzle, which then builds the whole statement as before. The result is the
 * same text and parameters (`$1`, `$2`… in order; `test/foundation/execute.test.ts` holds them
 * equal), handed to `db.execute` ready-made, so results, errors and query logging are Drizzle's own.
 */
export function executeStatement(db: Executor, statement: SQL): Promise<unknown> {
  const query = compile(statement);
  return query ? db.execute(new CompiledSql(query)) : db.execute(statement);
}

/**
 * A statement already put together: Drizzle's `db.execute` asks it for its query (`toQuery`) and
 * gets the text and parameters as they are, then runs them as it runs any statement.
 */
class CompiledSql extends SQL {
  constructor(private readonly compiled: Query) {
    super([]);
  }

  override toQuery(): Query {
    return this.compiled;
  }
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
    } else if (chunk === null || typeof chunk === 'string' || typeof chunk === 'number' || typeof chunk === 'boolean' || typeof chunk === 'bigint') {
      params.push(chunk);
      text.push(`$${params.length}`);
    } else {
      return false;
    }
  }
  return true;
}
