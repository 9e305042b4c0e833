/**
 * Named prepared statements on PGlite. PGlite's own `query` parses, describes, binds, describes and
 * executes a statement as five round trips into the WebAssembly backend, then syncs: every call
 * parses and plans the text again. Here a statement the book names (see StatementBook) is parsed
 * and described once; each later call sends Bind, Describe, Execute and Sync as one buffer — one
 * trip, no parsing, and a plan PostgreSQL may keep (its usual choice between custom and generic
 * plans for prepared statements). The answer comes back as bytes and is read here (`resultOf`), with
 * PGlite's serializers and type parsers, so rows look exactly as `query` returns them.
 *
 * It takes PGlite's two locks as `query` does: outside a transaction the transaction lock and then
 * the query lock; inside one (the transaction holds the first) the query lock alone.
 */
import { parse, protocol, types, type PGlite, type QueryOptions, type Results } from '@electric-sql/pglite';
import { NodeFS } from '@electric-sql/pglite/nodefs';
import { isStalePreparedStatement, StatementBook } from './prepared-statements.js';

/** The members of PGlite this uses beyond its documented interface (its own `query` uses the same). */
interface PgliteInternals {
  _runExclusiveQuery<T>(work: () => Promise<T>): Promise<T>;
  _runExclusiveTransaction<T>(work: () => Promise<T>): Promise<T>;
  execProtocolStream(message: Uint8Array, options: { syncToFs: boolean }): Promise<Parameters<typeof parse.parseResults>[0]>;
  execProtocolRawStream(message: Uint8Array, options: { syncToFs: boolean; onRawData: (chunk: Uint8Array) => void }): Promise<void>;
  syncToFs(): Promise<void>;
  serializers: Record<number, (value: unknown) => string>;
  parsers: Parameters<typeof parse.parseResults>[1];
}

interface Statement {
  name: string;
  paramTypes: number[];
}

const { serialize } = protocol;

/** The messages as one buffer (each copied at once: the serializer may reuse its buffer). */
function frames(...parts: Array<() => Uint8Array>): Uint8Array {
  const copies = parts.map((part) => part().slice());
  const out = new Uint8Array(copies.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of copies) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Describe (the unnamed portal), Execute (all rows) and Sync, as pg-protocol's serializer writes them. */
const DESCRIBE_EXECUTE_SYNC = Uint8Array.from([0x44, 0, 0, 0, 6, 0x50, 0, 0x45, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0x53, 0, 0, 0, 4]);

/**
 * Bind (statement `name` to the unnamed portal; text parameters, byte arrays as binary ones; text
 * results), then Describe, Execute and Sync, as one buffer: the bytes pg-protocol's `serialize.bind`
 * and the three constant messages make (`test/foundation/prepared-statements.test.ts` holds them
 * equal), written once into a buffer of the right size. pg-protocol's writer starts each message in
 * a 256-byte buffer, grows and copies it as values are added, measures each string by encoding it,
 * and `frames` copies the parts once more: ≈ 7 % of the embedded database thread at 120 turns a
 * second (CPU profile, issue 14, fourteenth pass).
 */
export function bindAndExecute(name: string, values: ReadonlyArray<string | ArrayBufferView | null>): Uint8Array {
  const count = values.length;
  const lengths = new Array<number>(count);
  // Code and length; portal "" and the statement's name as C strings; the parameters' format codes;
  // their values, each with its length; the results' format code count (0: all text).
  let size = 1 + 4 + 1 + Buffer.byteLength(name) + 1 + 2 + 2 * count + 2 + 2;
  for (let index = 0; index < count; index += 1) {
    const value = values[index]!;
    const length = value === null ? 0 : typeof value === 'string' ? Buffer.byteLength(value) : value.byteLength;
    lengths[index] = length;
    size += 4 + length;
  }
  const out = Buffer.allocUnsafe(size + DESCRIBE_EXECUTE_SYNC.length);
  let at = out.writeUInt8(0x42, 0);
  at = out.writeInt32BE(size - 1, at);
  at = out.writeUInt8(0, at);
  at += out.write(name, at);
  at = out.writeUInt8(0, at);
  at = out.writeUInt16BE(count, at);
  for (const value of values) at = out.writeInt16BE(value !== null && typeof value !== 'string' ? 1 : 0, at);
  at = out.writeUInt16BE(count, at);
  for (let index = 0; index < count; index += 1) {
    const value = values[index]!;
    if (value === null) {
      at = out.writeInt32BE(-1, at);
      continue;
    }
    at = out.writeInt32BE(lengths[index]!, at);
    if (typeof value === 'string') at += out.write(value, at);
    else {
      out.set(new Uint8Array(value.buffer, value.byteOffset, value.byteLength), at);
      at += value.byteLength;
    }
  }
  at = out.writeInt16BE(0, at);
  out.set(DESCRIBE_EXECUTE_SYNC, at);
  return out;
}

export class PglitePreparedStatements {
  private readonly book = new StatementBook('anima_');
  private readonly statements = new Map<string, Statement>();
  private readonly mergedParsers = new WeakMap<object, PgliteInternals['parsers']>();
  private readonly db: PgliteInternals;
  /**
   * Whether a statement outside a transaction is followed by `syncToFs`, as PGlite's `query` does.
   * Not on NodeFS (a data directory on disk, what Anima opens): its `syncToFs` does nothing — the
   * files are the real files, written as PostgreSQL writes them — while PGlite's call still takes a
   * lock and a few promises, ≈ 25–50 µs of the database thread a statement (issue 14, tenth pass).
   */
  private readonly syncsFiles: boolean;

  constructor(private readonly pglite: PGlite) {
    this.db = pglite;
    this.syncsFiles = !((pglite as unknown as { fs?: unknown }).fs instanceof NodeFS);
  }

  /**
   * `query` as PGlite answers it (`transaction` set: inside that open transaction, whose query goes
   * to `inTransaction`), by name when the statement is named.
   */
  async query(sql: string, params: unknown[] | undefined, options: QueryOptions | undefined, inTransaction?: (sql: string, params: unknown[] | undefined, options: QueryOptions | undefined) => Promise<Results>): Promise<Results> {
    const name = this.book.nameFor(sql);
    if (name === undefined) return inTransaction ? inTransaction(sql, params, options) : this.pglite.query(sql, params, options);
    const run = () => this.db._runExclusiveQuery(() => this.run(sql, name, params ?? [], options, inTransaction !== undefined));
    try {
      return await (inTransaction ? run() : this.db._runExclusiveTransaction(run));
    } catch (error) {
      if (!isStalePreparedStatement(error) || inTransaction) throw error;
      // A migration changed what the statement returns: prepare it again (outside a transaction only;
      // inside one the error has already aborted it, as it would have without a name).
      await this.db._runExclusiveTransaction(() => this.db._runExclusiveQuery(() => this.deallocate(sql)));
      return this.pglite.query(sql, params, options);
    }
  }

  private async run(sql: string, name: string, params: unknown[], options: QueryOptions | undefined, inTransaction: boolean): Promise<Results> {
    const { db } = this;
    try {
      let statement = this.statements.get(sql);
      if (!statement) {
        const described = await db.execProtocolStream(
          frames(
            () => serialize.parse({ name, text: sql, ...(options?.paramTypes ? { types: options.paramTypes } : {}) }),
            () => serialize.describe({ type: 'S', name }),
            () => serialize.sync(),
          ),
          { syncToFs: false },
        );
        statement = { name, paramTypes: parse.parseDescribeStatementResults(described) };
        this.statements.set(sql, statement);
      }
      const { paramTypes } = statement;
      const values = params.map((value, index): string | ArrayBufferView | null => {
        if (value === null || value === undefined) return null;
        const serializer = options?.serializers?.[paramTypes[index]!] ?? db.serializers[paramTypes[index]!];
        // Without a serializer for the type, as PGlite's own query does: the value's text.
        // eslint-disable-next-line @typescript-eslint/no-base-to-string -- same conversion as PGlite's query
        return serializer ? serializer(value) : String(value);
      });
      const raw = await rawAnswer(db, bindAndExecute(name, values));
      if (!inTransaction && this.syncsFiles) await db.syncToFs();
      // PGlite would merge its whole parser table with the query's parsers on every call; merged once here.
      return resultOf(raw, options?.parsers ? this.merged(options.parsers) : db.parsers, options?.rowMode === 'array');
    } catch (error) {
      // As PGlite's query does: the statement and its parameters travel with the error.
      if (error instanceof Error) Object.assign(error, { query: sql, params, queryOptions: options });
      throw error;
    }
  }

  /**
   * PGlite's parsers with the query's own on top, kept per parsers object (the thread passes the
   * same object for the same types). PGlite fills its table once, when it opens.
   */
  private merged(parsers: NonNullable<QueryOptions['parsers']>): PgliteInternals['parsers'] {
    let table = this.mergedParsers.get(parsers);
    if (!table) {
      table = { ...this.db.parsers, ...parsers };
      this.mergedParsers.set(parsers, table);
    }
    return table;
  }

  private async deallocate(sql: string): Promise<void> {
    const statement = this.statements.get(sql);
    this.statements.delete(sql);
    this.book.forget(sql);
    if (statement) await this.db.execProtocolStream(frames(() => serialize.close({ type: 'S', name: statement.name }), () => serialize.sync()), { syncToFs: false });
  }
}

/**
 * The backend's answer to `message` as bytes, through PGlite's `execProtocolRawStream`: PGlite's
 * other entry points (`execProtocolStream`, and `execProtocolRaw` too) run every byte through its
 * protocol parser as the backend writes it, which copies each field into an ArrayBuffer of its own
 * — for recall's 80 rows about 2 ms of the embedded database thread, against 0.4 ms to run the
 * statement and collect its bytes (issue 14; `docs/benchmarks.md`). The chunks are views into the
 * WebAssembly heap, so each is copied as it comes. (PGlite keeps this callback as its output sink
 * until its next `execProtocolStream` / `query` / `exec` replaces it; only its `execProtocol` and
 * `formatQuery` would read through a stale one, and Anima calls neither.)
 */
async function rawAnswer(db: PgliteInternals, message: Uint8Array): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  await db.execProtocolRawStream(message, {
    syncToFs: false,
    onRawData: (chunk) => {
      chunks.push(chunk.slice());
      length += chunk.length;
    },
  });
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/**
 * The result of one Bind/Describe/Execute/Sync read from the backend's bytes: each value decoded
 * from the one buffer, then parsed by type exactly as PGlite's `parseResults` does (the query's
 * parsers, else PGlite's), into the same shape: rows, fields, command, affectedRows and rowCount. An
 * error (or any message not expected here, e.g. a NOTICE) goes through PGlite's own parser, so an
 * error is thrown as the same DatabaseError.
 */
function resultOf(raw: Uint8Array, parsers: PgliteInternals['parsers'], arrayRows: boolean): Results {
  const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  let fields: Array<{ name: string; dataTypeID: number }> = [];
  let columnParsers: Array<(value: string, typeId: number) => unknown> = [];
  const rows: unknown[] = [];
  let result: Results | undefined;
  let affectedRows = 0;
  let offset = 0;
  while (offset + 5 <= bytes.length) {
    const type = bytes[offset]!;
    const end = offset + 1 + bytes.readInt32BE(offset + 1);
    let at = offset + 5;
    if (type === 0x44 /* D: DataRow */) {
      const count = bytes.readInt16BE(at);
      at += 2;
      const values: unknown[] = new Array(count);
      for (let column = 0; column < count; column += 1) {
        const length = bytes.readInt32BE(at);
        at += 4;
        if (length < 0) values[column] = null;
        else {
          const text = bytes.toString('utf8', at, at + length);
          at += length;
          const parser = columnParsers[column];
          values[column] = parser ? parser(text, fields[column]!.dataTypeID) : text;
        }
      }
      if (arrayRows) rows.push(values);
      else {
        const row: Record<string, unknown> = {};
        for (let column = 0; column < count; column += 1) row[fields[column]!.name] = values[column];
        rows.push(row);
      }
    } else if (type === 0x54 /* T: RowDescription */) {
      const count = bytes.readInt16BE(at);
      at += 2;
      fields = [];
      for (let column = 0; column < count; column += 1) {
        const nameEnd = bytes.indexOf(0, at);
        const name = bytes.toString('utf8', at, nameEnd);
        const dataTypeID = bytes.readInt32BE(nameEnd + 1 + 4 + 2);
        fields.push({ name, dataTypeID });
        at = nameEnd + 1 + 18;
      }
      columnParsers = fields.map(({ dataTypeID }) => (parsers[dataTypeID] ?? (types.parsers as PgliteInternals['parsers'])[dataTypeID]) as (value: string, typeId: number) => unknown);
    } else if (type === 0x43 /* C: CommandComplete */) {
      const tag = bytes.toString('utf8', at, end - 1).split(' ');
      const command = tag[0]!;
      const rowCount = parseInt(tag[tag.length - 1]!, 10);
      if (COUNTED_COMMANDS.has(command)) affectedRows += rowCount;
      // The first command's result, as PGlite's query answers (one statement is one command here).
      result ??= { rows, fields, command, affectedRows, ...(Number.isNaN(rowCount) ? {} : { rowCount }) } as Results;
    } else if (!QUIET.has(type)) {
      return parsedByPglite(raw, parsers, arrayRows);
    }
    offset = end;
  }
  return result ?? ({ rows: [], fields: [], affectedRows: 0 });
}

/** Commands whose row counts add up to `affectedRows`, as in PGlite's `parseResults`. */
const COUNTED_COMMANDS = new Set(['INSERT', 'UPDATE', 'DELETE', 'COPY', 'MERGE']);

/** Messages a Bind/Describe/Execute/Sync answers with that carry nothing for the result: BindComplete, NoData, PortalSuspended, EmptyQuery, ReadyForQuery. */
const QUIET = new Set([0x32, 0x6e, 0x73, 0x49, 0x5a]);

/** PGlite's own reading of the bytes: throws the first error as PGlite's query would. */
function parsedByPglite(raw: Uint8Array, parsers: PgliteInternals['parsers'], arrayRows: boolean): Results {
  const messages: Parameters<typeof parse.parseResults>[0] = [];
  new protocol.Parser().parse(raw, (message) => messages.push(message));
  const error = messages.find((message) => message instanceof protocol.messages.DatabaseError);
  if (error) throw error;
  return parse.parseResults(messages, parsers, arrayRows ? { rowMode: 'array' } : {})[0]!;
}
