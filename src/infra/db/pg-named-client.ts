/**
 * node-postgres with named prepared statements: a statement the book names (see StatementBook) is
 * parsed and planned once per connection, then only bound and executed — node-postgres keeps the
 * per-connection bookkeeping itself (a named query whose text this connection already parsed skips
 * Parse). Drizzle's queries arrive here unnamed; the pool is built with this client class.
 */
import pg from 'pg';
import { isStalePreparedStatement, StatementBook } from './prepared-statements.js';

/** One book per process: the same text gets the same name on every connection (each parses it once). */
const book = new StatementBook('anima_');

type Callback = (error: Error | null, result?: unknown) => void;

function namedConfig(config: unknown): { config: pg.QueryConfig; text: string } | undefined {
  if (typeof config === 'string') {
    const name = book.nameFor(config);
    return name ? { config: { text: config, name }, text: config } : undefined;
  }
  if (typeof config !== 'object' || config === null) return undefined;
  const candidate = config as Partial<pg.QueryConfig> & { submit?: unknown };
  if (typeof candidate.submit === 'function' || candidate.name || typeof candidate.text !== 'string') return undefined;
  const name = book.nameFor(candidate.text);
  return name ? { config: { ...candidate, text: candidate.text, name }, text: candidate.text } : undefined;
}

export class NamedStatementClient extends pg.Client {
  // node-postgres' query has many overloads; this one forwards whatever it is given.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- forwarding every overload of pg's query
  override query(config: any, values?: any, callback?: any): any {
    const named = namedConfig(config);
    if (!named) return super.query(config, values, callback);
    const query = (super.query as (...args: unknown[]) => unknown).bind(this);
    const done: Callback | undefined = typeof values === 'function' ? (values as Callback) : typeof callback === 'function' ? (callback as Callback) : undefined;
    const parameters: unknown = typeof values === 'function' ? undefined : values;
    // A migration changed what the statement returns: the name is dropped (the next sight names it
    // anew, and each connection parses it again) and this run goes unnamed.
    const unnamed = () => (typeof config === 'string' ? config : { ...(config as object) });
    if (done) {
      return query(named.config, parameters, (error: Error | null, result: unknown) => {
        if (error && isStalePreparedStatement(error)) {
          book.forget(named.text);
          query(unnamed(), parameters, done);
          return;
        }
        done(error, result);
      });
    }
    return (query(named.config, parameters) as Promise<unknown>).catch((error: unknown) => {
      if (!isStalePreparedStatement(error)) throw error;
      book.forget(named.text);
      return query(unnamed(), parameters);
    });
  }
}
