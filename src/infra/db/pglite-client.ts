import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { projectFile } from '../project-files.js';
import { deserializeError, type ThreadReply, type ThreadRequest } from './pglite-protocol.js';

type Results = { rows: unknown[]; fields: Array<{ name: string; dataTypeID: number }>; affectedRows?: number; command?: string; rowCount?: number };
type QueryOptions = { rowMode?: 'array' | 'object'; parsers?: Record<number, unknown> };
type Distributed<T> = T extends unknown ? Omit<T, 'id'> : never;

/** What Drizzle's PGlite driver and Anima call on a PGlite client (and on its transactions). */
export interface PgliteLike {
  query(sql: string, params?: unknown[], options?: QueryOptions): Promise<Results>;
  exec(sql: string): Promise<Results[]>;
  transaction<T>(callback: (tx: PgliteLike) => Promise<T>): Promise<T>;
}

/**
 * The worker: the bundle's sibling when running from dist/ (the production build); otherwise the
 * TypeScript source, loaded through tsx's loader registered inside the new thread (development,
 * and tests that build the app in-process).
 */
function startThread(workerData: unknown): Worker {
  const built = projectFile('dist', 'src', 'pglite-thread.js');
  if (fileURLToPath(import.meta.url).includes('/dist/') && existsSync(built)) return new Worker(built, { workerData });
  const source = pathToFileURL(projectFile('src', 'infra', 'db', 'pglite-thread.ts')).href;
  const loader = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(source)}); })`;
  return new Worker(loader, { eval: true, workerData });
}

/** The type ids of a parser table, read once per table object (Anima's raw statements pass the same one every time). */
const typeIdsByTable = new WeakMap<object, number[]>();
function typeIdsOf(parsers: object): number[] {
  let ids = typeIdsByTable.get(parsers);
  if (!ids) {
    ids = Object.keys(parsers).map(Number);
    typeIdsByTable.set(parsers, ids);
  }
  return ids;
}

/**
 * PGlite in its own worker thread, behind the part of PGlite's interface Drizzle uses: `query`
 * (with Drizzle's identity parsers for date and time types), `exec` and `transaction`. Requests
 * are answered in order by the one PGlite instance; a transaction holds it (as PGlite's own
 * `transaction` does) until its callback here settles, then commits or rolls back there.
 */
export class ThreadedPglite implements PgliteLike {
  private readonly worker: Worker;
  private nextId = 1;
  private nextTx = 1;
  private readonly waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private exited: Error | undefined;
  closed = false;

  private constructor(dataDir: string, options: { preparedStatements: boolean }) {
    this.worker = startThread({ dataDir, preparedStatements: options.preparedStatements });
    this.worker.on('message', (reply: ThreadReply) => {
      const pending = this.waiting.get(reply.id);
      if (!pending) return;
      this.waiting.delete(reply.id);
      if (reply.ok) pending.resolve(reply.value);
      else pending.reject(deserializeError(reply.error));
    });
    const fail = (error: Error) => {
      this.exited = error;
      for (const pending of this.waiting.values()) pending.reject(error);
      this.waiting.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the embedded database thread exited (code ${code})`)));
  }

  /** Starts the thread and opens the database there (a first start runs initdb). */
  static async create(dataDir: string, options: { preparedStatements: boolean } = { preparedStatements: true }): Promise<ThreadedPglite> {
    const client = new ThreadedPglite(dataDir, options);
    try {
      await client.send({ op: 'open' });
    } catch (error) {
      await client.worker.terminate();
      throw error;
    }
    return client;
  }

  private send(request: Distributed<ThreadRequest>): Promise<unknown> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ ...request, id });
    });
  }

  query(sql: string, params?: unknown[], options?: QueryOptions, tx?: number): Promise<Results> {
    return this.send({
      op: 'query',
      tx,
      sql,
      params,
      rowMode: options?.rowMode,
      identityParsers: options?.parsers ? typeIdsOf(options.parsers) : undefined,
    }) as Promise<Results>;
  }

  exec(sql: string, tx?: number): Promise<Results[]> {
    return this.send({ op: 'exec', tx, sql }) as Promise<Results[]>;
  }

  async transaction<T>(callback: (tx: PgliteLike) => Promise<T>): Promise<T> {
    const tx = this.nextTx++;
    await this.send({ op: 'begin', tx });
    const handle: PgliteLike = {
      query: (sql, params, options) => this.query(sql, params, options, tx),
      exec: (sql) => this.exec(sql, tx),
      transaction: () => Promise.reject(new Error('nested transactions go through savepoints (Drizzle does this itself)')),
    };
    let result: T;
    try {
      result = await callback(handle);
    } catch (error) {
      await this.send({ op: 'end', tx, commit: false }).catch(() => undefined);
      throw error;
    }
    await this.send({ op: 'end', tx, commit: true });
    return result;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.exited) await this.send({ op: 'close' }).catch(() => undefined);
    await this.worker.terminate();
  }
}
