import { protocol } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type DatabaseHandle } from '../../src/infra/db/database.js';
import { bindAndExecute } from '../../src/infra/db/pglite-prepared.js';
import { StatementBook } from '../../src/infra/db/prepared-statements.js';
import { createLogger } from '../../src/infra/logging/logger.js';
import { embeddedDataDir } from '../helpers/embedded-template.js';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/scratch-database.js';

/** The rows of a driver result (both drivers answer `{ rows }`). */
function rowsOf(result: unknown): Array<Record<string, unknown>> {
  return (result as { rows: Array<Record<string, unknown>> }).rows;
}

/** Which statements get a name: data statements seen twice, never DDL, never past the book's capacity. */
describe('the statement book', () => {
  it('names a data statement on its second sight and keeps the name; never names DDL or transaction control', () => {
    const book = new StatementBook('s', 2);
    expect(book.nameFor('SELECT 1')).toBeUndefined();
    expect(book.nameFor('SELECT 1')).toBe('s1');
    expect(book.nameFor('SELECT 1')).toBe('s1');
    for (const text of ['CREATE TABLE t (id int)', 'begin', 'savepoint sp1', 'ALTER TABLE t ADD COLUMN x int']) {
      expect(book.nameFor(text)).toBeUndefined();
      expect(book.nameFor(text)).toBeUndefined();
    }
    expect([book.nameFor(' with x as (select 1) select * from x'), book.nameFor(' with x as (select 1) select * from x')]).toEqual([undefined, 's2']);
    book.forget('SELECT 1');
    expect([book.nameFor('SELECT 1'), book.nameFor('SELECT 1')]).toEqual([undefined, 's3']);
    // Full: later texts run unnamed; named ones keep their names.
    expect([book.nameFor('SELECT 2'), book.nameFor('SELECT 2')]).toEqual([undefined, undefined]);
    expect(book.nameFor('SELECT 1')).toBe('s3');
  });
});

/**
 * node-postgres with named prepared statements (NamedStatementClient): a repeated statement is
 * prepared on its connection, and answers exactly as an unnamed one — rows, parameter types, errors
 * with PostgreSQL's fields — and a statement whose result type a migration changed is prepared anew.
 */
describe.skipIf(!process.env.TEST_DATABASE_URL)('named prepared statements on PostgreSQL', () => {
  let scratch: ScratchDatabase;
  let database: DatabaseHandle;

  beforeAll(async () => {
    scratch = await createScratchDatabase(process.env.TEST_DATABASE_URL!, 'anima_prep');
    database = await openDatabase({ databaseUrl: scratch.url, dataDir: '/nonexistent', logger: createLogger('silent'), migrate: false });
    await database.db.execute(sql`CREATE TABLE prepared_probe (id int PRIMARY KEY, tags text[] NOT NULL, doc jsonb NOT NULL, at timestamptz NOT NULL, note text)`);
  }, 60_000);

  afterAll(async () => {
    await database?.close();
    await scratch?.drop();
  });

  const rows = async (query: ReturnType<typeof sql>): Promise<Array<Record<string, unknown>>> => rowsOf(await database.db.execute(query));
  const insert = (id: number, note: string | null) =>
    sql`INSERT INTO prepared_probe (id, tags, doc, at, note) VALUES (${id}, ${sql.param(['a', `tag ${id}`])}, ${JSON.stringify({ id })}::jsonb, ${new Date(Date.UTC(2026, 0, id)).toISOString()}::timestamptz, ${note})`;

  it('answers a repeated statement by name, with the same rows and parameter types', async () => {
    // One connection (a transaction), so its own prepared statements can be listed.
    const listed = await database.db.transaction(async (tx) => {
      for (let id = 1; id <= 4; id += 1) await tx.execute(insert(id, id % 2 === 0 ? null : `note ${id}`));
      const found = [];
      for (let id = 1; id <= 4; id += 1) found.push(rowsOf(await tx.execute(sql`SELECT id, tags, doc, note FROM prepared_probe WHERE id = ${id}`))[0]);
      const prepared = rowsOf(await tx.execute(sql`SELECT statement FROM pg_prepared_statements WHERE name LIKE 'anima_%'`));
      return { found, prepared: prepared.map((row) => String(row.statement)) };
    });
    expect(listed.found).toEqual([
      { id: 1, tags: ['a', 'tag 1'], doc: { id: 1 }, note: 'note 1' },
      { id: 2, tags: ['a', 'tag 2'], doc: { id: 2 }, note: null },
      { id: 3, tags: ['a', 'tag 3'], doc: { id: 3 }, note: 'note 3' },
      { id: 4, tags: ['a', 'tag 4'], doc: { id: 4 }, note: null },
    ]);
    expect(listed.prepared.some((text) => text.startsWith('INSERT INTO prepared_probe'))).toBe(true);
    expect(listed.prepared.some((text) => text.startsWith('SELECT id, tags, doc, note FROM prepared_probe'))).toBe(true);
  });

  it('keeps PostgreSQL error fields on a named statement, on every pooled connection', async () => {
    const failures = await Promise.all(Array.from({ length: 12 }, () => database.db.execute(insert(1, 'again')).catch((error: unknown) => error)));
    for (const failure of failures) {
      const cause = (failure as { cause?: Record<string, unknown> }).cause ?? (failure as Record<string, unknown>);
      expect(cause.code).toBe('23505');
      expect(cause.constraint).toBe('prepared_probe_pkey');
    }
    expect((await rows(sql`SELECT count(*)::int AS n FROM prepared_probe`))[0]!.n).toBe(4);
  });

  it('prepares a statement again when a migration changed what it returns', async () => {
    await database.db.execute(sql`CREATE TABLE reshaped_probe (id int PRIMARY KEY)`);
    await database.db.execute(sql`INSERT INTO reshaped_probe VALUES (1)`);
    const read = () => rows(sql`SELECT * FROM reshaped_probe WHERE id = ${1}`);
    // Prepared on several connections at once.
    await Promise.all(Array.from({ length: 8 }, read));
    await Promise.all(Array.from({ length: 8 }, read));
    await database.db.execute(sql`ALTER TABLE reshaped_probe ADD COLUMN label text NOT NULL DEFAULT 'new'`);
    for (const answer of await Promise.all(Array.from({ length: 8 }, read))) expect(answer[0]).toEqual({ id: 1, label: 'new' });
    for (const answer of await Promise.all(Array.from({ length: 8 }, read))) expect(answer[0]).toEqual({ id: 1, label: 'new' });
  });
});

/** DATABASE_PREPARED_STATEMENTS=false (a pooler that cannot keep prepared statements): nothing is named, on either backend. */
describe('with prepared statements turned off', () => {
  const repeatAndList = async (database: DatabaseHandle): Promise<string[]> =>
    database.db.transaction(async (tx) => {
      for (let round = 0; round < 3; round += 1) await tx.execute(sql`SELECT ${round}::int AS n, 'unnamed' AS label`);
      const listed = rowsOf(await tx.execute(sql`SELECT name FROM pg_prepared_statements`));
      return listed.map((row) => String(row.name));
    });

  it('runs every statement unnamed on the embedded database thread', async () => {
    const database = await openDatabase({ databaseUrl: undefined, dataDir: await embeddedDataDir(), logger: createLogger('silent'), thread: true, preparedStatements: false });
    try {
      expect(await repeatAndList(database)).toEqual([]);
    } finally {
      await database.close();
    }
  }, 120_000);

  it.skipIf(!process.env.TEST_DATABASE_URL)('runs every statement unnamed on PostgreSQL', async () => {
    const scratch = await createScratchDatabase(process.env.TEST_DATABASE_URL!, 'anima_prep');
    const database = await openDatabase({ databaseUrl: scratch.url, dataDir: '/nonexistent', logger: createLogger('silent'), migrate: false, preparedStatements: false });
    try {
      expect(await repeatAndList(database)).toEqual([]);
    } finally {
      await database.close();
      await scratch.drop();
    }
  });
});

describe('named statements on PGlite and its file system', () => {
  it('syncs files after a named statement only where the file system keeps them elsewhere (not on a data directory on disk)', async () => {
    const { PGlite } = await import('@electric-sql/pglite');
    const { PglitePreparedStatements } = await import('../../src/infra/db/pglite-prepared.js');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const directory = mkdtempSync(path.join(tmpdir(), 'anima-prepared-fs-'));
    const onDisk = await PGlite.create({ dataDir: directory });
    const inMemory = await PGlite.create();
    try {
      for (const [database, expectedSyncs] of [[onDisk, 0], [inMemory, 2]] as const) {
        await database.exec('CREATE TABLE probe (id int PRIMARY KEY, n int NOT NULL)');
        const named = new PglitePreparedStatements(database);
        let syncs = 0;
        const original = database.syncToFs.bind(database);
        database.syncToFs = async () => {
          syncs += 1;
          await original();
        };
        // The first sight runs unnamed (PGlite's own query, which syncs by itself); the next two by name.
        const text = 'INSERT INTO probe (id, n) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET n = probe.n + 1 RETURNING n';
        await named.query(text, [1, 1], undefined);
        syncs = 0;
        expect((await named.query(text, [1, 1], undefined)).rows).toEqual([{ n: 2 }]);
        expect((await named.query(text, [1, 1], undefined)).rows).toEqual([{ n: 3 }]);
        expect(syncs).toBe(expectedSyncs);
      }
    } finally {
      await onDisk.close();
      await inMemory.close();
      rmSync(directory, { recursive: true, force: true });
    }
  }, 60_000);
});

/** The named statement's Bind, Describe, Execute and Sync, written in one buffer: the bytes pg-protocol's serializer makes. */
describe('the bind message of a named statement', () => {
  const { serialize } = protocol;
  const theirs = (name: string, values: Array<string | Uint8Array | null>) => {
    const parts = [serialize.bind({ statement: name, values }), serialize.describe({ type: 'P' }), serialize.execute({}), serialize.sync()].map((part) => Buffer.from(part.slice()));
    return Buffer.concat(parts);
  };
  const cases: Array<[string, string, Array<string | Uint8Array | null>]> = [
    ['no parameters', 'anima_1', []],
    ['text, null and an empty string', 'anima_27', ['hello', null, '', '42']],
    ['text beyond ASCII', 'anima_3', ['naïve café — 雪 🌙', 'Ωmega']],
    ['a byte array (binary) among text', 'anima_4', ['a', Uint8Array.from([0, 1, 2, 255, 128]), null]],
    ['a byte array that is a view into a larger buffer', 'anima_5', [Buffer.from('xxabcxx').subarray(2, 5)]],
    ['values longer than the serializer\'s first buffer', 'anima_6', ['x'.repeat(300), 'é'.repeat(5000), Uint8Array.from({ length: 1600 }, (_, index) => index % 256)]],
    ['many parameters', 'anima_7', Array.from({ length: 120 }, (_, index) => (index % 7 === 0 ? null : `value ${index}`))],
  ];
  it.each(cases)('%s', (_name, statement, values) => {
    expect(Buffer.from(bindAndExecute(statement, values))).toEqual(theirs(statement, values));
  });
});
