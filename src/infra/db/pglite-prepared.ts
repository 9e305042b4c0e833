/**
 * Named prepared statements on PGlite. PGlite's own `query` parses, describes, binds, describes and
 * executes a statement as five round trips into the WebAssembly backend, then syncs: every call
 * parses and plans the text again. Here a statement the book names (see StatementBook) is parsed
 * and described once; each later call sends Bind, Describe, Execute and Sync as one buffer — one
 * trip, no parsing, and a plan PostgreSQL may keep (its usual choice between custom and generic
 * plans for prepared statements). Results are parsed by PGlite's own parser, with its serializers
 * and parsers, so rows look exactly as `query` returns them.
 *
 * It takes PGlite's two locks as `query` does: outside a transaction the transaction lock and then
 * the query lock; inside one (the transaction holds the first) the query lock alone.
 */
import { parse, protocol, type PGlite, type QueryOptions, type Results } from '@electric-sql/pglite';
import { isStalePreparedStatement, StatementBook } from './prepared-statements.js';

/** The members of PGlite this uses beyond its documented interface (its own `query` uses the same). */
interface PgliteInternals {
  _runExclusiveQuery<T>(work: () => Promise<T>): Promise<T>;
  _runExclusiveTransaction<T>(work: () => Promise<T>): Promise<T>;
  execProtocolStream(message: Uint8Array, options: { syncToFs: boolean }): Promise<Parameters<typeof parse.parseResults>[0]>;
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

export class PglitePreparedStatements {
  private readonly book = new StatementBook('anima_');
  private readonly statements = new Map<string, Statement>();
  private readonly mergedParsers = new WeakMap<object, PgliteInternals['parsers']>();
  private readonly db: PgliteInternals;

  constructor(private readonly pglite: PGlite) {
    this.db = pglite;
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
      const values = params.map((value, index) => {
        if (value === null || value === undefined) return null;
        const serializer = options?.serializers?.[paramTypes[index]!] ?? db.serializers[paramTypes[index]!];
        // Without a serializer for the type, as PGlite's own query does: the value's text.
        // eslint-disable-next-line @typescript-eslint/no-base-to-string -- same conversion as PGlite's query
        return serializer ? serializer(value) : String(value);
      });
      const messages = await db.execProtocolStream(
        frames(
          () => serialize.bind({ statement: name, values }),
          () => serialize.describe({ type: 'P' }),
          () => serialize.execute({}),
          () => serialize.sync(),
        ),
        { syncToFs: false },
      );
      if (!inTransaction) await db.syncToFs();
      // PGlite would merge its whole parser table with the query's parsers on every call; merged once here.
      const { parsers, ...rest } = options ?? {};
      return parse.parseResults(messages, parsers ? this.merged(parsers) : db.parsers, rest)[0]!;
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
