import { SQL, StringChunk, sql as drizzleSql, type SQLChunk } from 'drizzle-orm';

/**
 * Anima's `sql` template tag: Drizzle's, built with less work. Every statement of the process is
 * written with it (ESLint keeps Drizzle's own out of src/), and a chat turn builds a few hundred
 * template chunks on each request (the recall, the credit hold, the turn's write). Drizzle's tag, on
 * every call, makes a new `StringChunk` (and its one-element array) for each literal piece, walks the
 * parameters through an `entries()` iterator (an array per parameter), and its `SQL` constructor asks
 * `is(chunk, Table)` of every chunk — a walk up each chunk's prototype chain — only to fill
 * `usedTables` (Drizzle's query cache). Measured with V8's sampling heap profiler on
 * `POST /v1/chat/completions` (issue 14, fourteenth pass): the tag was the largest single allocation
 * site of a turn.
 *
 * Here the literal pieces of a template call site (the same `TemplateStringsArray` object on every
 * call) become `StringChunk`s once, and a template whose parameters are plain values (strings,
 * numbers, booleans, null, undefined, byte arrays) or other `SQL` becomes one `SQL` whose chunks are
 * set after construction: nothing in them is a table, so `usedTables` is empty either way. A template
 * with anything else (a table, a column, a `Param`, an array…) is handed to Drizzle's own tag
 * unchanged. The result is the same `SQL` Drizzle builds, chunk for chunk
 * (`src/infra/db/sql.test.ts`); `raw`, `empty`, `identifier`, `param`… are Drizzle's.
 */
function tag<T = unknown>(strings: TemplateStringsArray, ...params: unknown[]): SQL<T> {
  for (let index = 0; index < params.length; index += 1) {
    if (!plain(params[index])) return drizzleSql<T>(strings, ...params);
  }
  const pieces = piecesOf(strings);
  const chunks: unknown[] = [];
  if (params.length > 0 || (strings.length > 0 && strings[0] !== '')) chunks.push(pieces[0]);
  for (let index = 0; index < params.length; index += 1) chunks.push(params[index], pieces[index + 1]);
  return fromPlainChunks<T>(chunks);
}

/** `sql.join`, without Drizzle's `entries()` iterator, for lists of plain chunks (anything else goes to Drizzle's). */
function join(chunks: SQLChunk[], separator?: SQLChunk): SQL {
  if (separator !== undefined && !plain(separator)) return drizzleSql.join(chunks, separator);
  const joined: unknown[] = [];
  for (let index = 0; index < chunks.length; index += 1) {
    const chunk = chunks[index];
    if (!plain(chunk)) return drizzleSql.join(chunks, separator);
    if (index > 0 && separator !== undefined) joined.push(separator);
    joined.push(chunk);
  }
  return fromPlainChunks(joined);
}

const piecesByCallSite = new WeakMap<TemplateStringsArray, StringChunk[]>();

/** A call site's literal pieces as `StringChunk`s, made on its first call (they are never changed: `SQL.append` copies chunks into its own list). */
function piecesOf(strings: TemplateStringsArray): StringChunk[] {
  let pieces = piecesByCallSite.get(strings);
  if (!pieces) {
    pieces = strings.map((piece) => new StringChunk(piece));
    piecesByCallSite.set(strings, pieces);
  }
  return pieces;
}

/** Chunks that need nothing of Drizzle's `SQL` constructor: plain values, `SQL`, `StringChunk`. */
function plain(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return typeof value !== 'function';
  return value instanceof SQL || value instanceof StringChunk || value instanceof Uint8Array;
}

const NO_CHUNKS: SQLChunk[] = [];

/** An `SQL` over chunks that hold no table: its constructor runs over an empty list, then the chunks are set (its own array). */
function fromPlainChunks<T>(chunks: unknown[]): SQL<T> {
  const statement = new SQL<T>(NO_CHUNKS);
  (statement as unknown as { queryChunks: unknown[] }).queryChunks = chunks;
  return statement;
}

export const sql: typeof drizzleSql = Object.assign(tag, {
  empty: drizzleSql.empty,
  fromList: drizzleSql.fromList,
  raw: drizzleSql.raw,
  join,
  identifier: drizzleSql.identifier,
  placeholder: drizzleSql.placeholder,
  param: drizzleSql.param,
}) as typeof drizzleSql;
