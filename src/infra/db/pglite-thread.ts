/**
 * The embedded database's own thread: PGlite (PostgreSQL in WebAssembly) runs here, so its work —
 * about half of a chat turn's CPU when it shared the main thread — runs on another core while the
 * main thread serves HTTP. The main thread talks to it through `ThreadedPglite` (pglite-client.ts)
 * with the messages below; one PGlite instance, its own queue and transactions, exactly as before.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Transaction } from '@electric-sql/pglite';
import type { ThreadReply, ThreadRequest } from './pglite-protocol.js';
import { serializeError } from './pglite-protocol.js';
import { openPglite } from './pglite-open.js';
import { PglitePreparedStatements } from './pglite-prepared.js';

const port = parentPort;
if (!port) throw new Error('pglite-thread.ts runs as a worker thread');

const { dataDir, preparedStatements } = workerData as { dataDir: string; preparedStatements?: boolean };
/** Open transactions by id: each waits in PGlite's own `transaction()` until the main thread ends it. */
const transactions = new Map<number, { tx: Transaction; end: (commit: boolean) => void; finished: Promise<void> }>();

const ready = openPglite(dataDir);
/** Statements a turn repeats run by name (parsed and planned once); see pglite-prepared.ts. */
const prepared = ready.then((db) => (preparedStatements === false ? undefined : new PglitePreparedStatements(db)));

function reply(message: ThreadReply): void {
  port!.postMessage(message);
}

/**
 * Drizzle asks for date and time types as the text PostgreSQL sent (identity parsers); parsers
 * are functions and cannot cross threads, so the request names the type ids and they are rebuilt here.
 */
function parsersFor(typeIds: number[] | undefined): Record<number, (value: string) => string> | undefined {
  if (!typeIds) return undefined;
  const key = typeIds.join(',');
  let parsers = identityParsers.get(key);
  if (!parsers) {
    parsers = Object.fromEntries(typeIds.map((id) => [id, (value: string) => value]));
    identityParsers.set(key, parsers);
  }
  return parsers;
}
/** The same object for the same type ids (Drizzle always asks for the same few), so merged parser tables can be kept. */
const identityParsers = new Map<string, Record<number, (value: string) => string>>();

async function handle(request: ThreadRequest): Promise<void> {
  const db = await ready;
  switch (request.op) {
    case 'open':
      reply({ id: request.id, ok: true, value: null });
      return;
    case 'query': {
      const tx = request.tx === undefined ? undefined : transactions.get(request.tx)?.tx;
      if (request.tx !== undefined && !tx) throw new Error(`transaction ${request.tx} is not open`);
      const options = {
        ...(request.rowMode ? { rowMode: request.rowMode } : {}),
        ...(request.identityParsers ? { parsers: parsersFor(request.identityParsers) } : {}),
      };
      const named = await prepared;
      const result = named
        ? await named.query(request.sql, request.params, options, tx ? (sql, params, queryOptions) => tx.query(sql, params, queryOptions) : undefined)
        : await (tx ?? db).query(request.sql, request.params, options);
      reply({ id: request.id, ok: true, value: { rows: result.rows, fields: result.fields, affectedRows: result.affectedRows, command: result.command, rowCount: result.rowCount } });
      return;
    }
    case 'exec': {
      const target = request.tx === undefined ? db : transactions.get(request.tx)?.tx;
      if (!target) throw new Error(`transaction ${request.tx} is not open`);
      const results = await target.exec(request.sql);
      reply({ id: request.id, ok: true, value: results.map((result) => ({ rows: result.rows, fields: result.fields, affectedRows: result.affectedRows })) });
      return;
    }
    case 'begin': {
      const txId = request.tx;
      let started!: () => void;
      const begun = new Promise<void>((resolve) => (started = resolve));
      // Settles when PGlite's transaction has ended: committed, or rolled back by the throw below.
      const finished = db.transaction(async (tx) => {
        const commit = await new Promise<boolean>((resolve) => {
          transactions.set(txId, { tx, end: resolve, finished });
          started();
        });
        if (!commit) throw new RollbackRequested();
      });
      // A BEGIN that failed never reaches the callback.
      await Promise.race([begun, finished]);
      reply({ id: request.id, ok: true, value: null });
      return;
    }
    case 'end': {
      const open = transactions.get(request.tx);
      if (!open) throw new Error(`transaction ${request.tx} is not open`);
      transactions.delete(request.tx);
      open.end(request.commit);
      try {
        await open.finished;
      } catch (error) {
        if (!(error instanceof RollbackRequested)) throw error;
      }
      reply({ id: request.id, ok: true, value: null });
      return;
    }
    case 'close':
      if (!db.closed) await db.close();
      reply({ id: request.id, ok: true, value: null });
      port!.close();
      return;
  }
}

class RollbackRequested extends Error {}

ready.catch(() => undefined);
port.on('message', (request: ThreadRequest) => {
  handle(request).catch((error: unknown) => reply({ id: request.id, ok: false, error: serializeError(error) }));
});
