import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type DatabaseHandle } from '../../src/infra/db/database.js';
import type { ThreadedPglite } from '../../src/infra/db/pglite-client.js';
import { createLogger } from '../../src/infra/logging/logger.js';
import { embeddedDataDir } from '../helpers/embedded-template.js';

/**
 * The embedded database in its own worker thread (EMBEDDED_DATABASE_THREAD, the default): what
 * Drizzle asks of it — queries with its date parsers, transactions that commit or roll back, errors
 * with PostgreSQL's fields — behaves as PGlite on the main thread does.
 */
describe('the embedded database thread', () => {
  let database: DatabaseHandle;

  beforeAll(async () => {
    const dataDir = await embeddedDataDir();
    database = await openDatabase({ databaseUrl: undefined, dataDir, logger: createLogger('silent'), thread: true });
    await database.db.execute(sql`CREATE TABLE thread_probe (id int PRIMARY KEY, note text NOT NULL, at timestamptz NOT NULL DEFAULT now())`);
  }, 120_000);

  afterAll(async () => {
    await database?.close();
  });

  const rows = async (query: ReturnType<typeof sql>): Promise<{ rows: Array<Record<string, unknown>> }> => {
    const result: unknown = await database.db.execute(query);
    return result as { rows: Array<Record<string, unknown>> };
  };

  it('answers queries, keeping timestamps as PostgreSQL wrote them (Drizzle parses them itself)', async () => {
    await database.db.execute(sql`INSERT INTO thread_probe (id, note) VALUES (1, 'first')`);
    const { rows: found } = await rows(sql`SELECT id, note, at FROM thread_probe WHERE id = ${1}`);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ id: 1, note: 'first' });
    expect(typeof found[0]!.at).toBe('string');
    await database.ping();
  });

  it('commits a transaction that succeeds and rolls back one that throws', async () => {
    await database.db.transaction(async (tx) => {
      await tx.execute(sql`INSERT INTO thread_probe (id, note) VALUES (2, 'kept')`);
      await tx.execute(sql`INSERT INTO thread_probe (id, note) VALUES (3, 'kept too')`);
    });
    await expect(
      database.db.transaction(async (tx) => {
        await tx.execute(sql`INSERT INTO thread_probe (id, note) VALUES (4, 'gone')`);
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    const { rows: ids } = await rows(sql`SELECT id FROM thread_probe ORDER BY id`);
    expect(ids.map((row) => row.id)).toEqual([1, 2, 3]);
  });

  it('keeps savepoints inside a transaction (a failed nested part rolls back alone)', async () => {
    await database.db.transaction(async (tx) => {
      await tx.execute(sql`INSERT INTO thread_probe (id, note) VALUES (5, 'outer')`);
      await tx.transaction(async (nested) => {
        await nested.execute(sql`INSERT INTO thread_probe (id, note) VALUES (6, 'inner')`);
        throw new Error('inner fails');
      }).catch(() => undefined);
    });
    const { rows: ids } = await rows(sql`SELECT id FROM thread_probe WHERE id >= 5 ORDER BY id`);
    expect(ids.map((row) => row.id)).toEqual([5]);
  });

  it('reports PostgreSQL errors with their code and constraint, and stays usable after them', async () => {
    const failure = await database.db.execute(sql`INSERT INTO thread_probe (id, note) VALUES (1, 'duplicate')`).catch((error: unknown) => error);
    const cause = (failure as { cause?: Record<string, unknown> }).cause ?? (failure as Record<string, unknown>);
    expect(cause.code).toBe('23505');
    expect(cause.constraint).toBe('thread_probe_pkey');
    const inTransaction = await database.db
      .transaction(async (tx) => {
        await tx.execute(sql`INSERT INTO thread_probe (id, note) VALUES (7, 'before the error')`);
        await tx.execute(sql`INSERT INTO thread_probe (id, note) VALUES (NULL, 'no id')`);
      })
      .catch((error: unknown) => error);
    expect(((inTransaction as { cause?: Record<string, unknown> }).cause ?? (inTransaction as Record<string, unknown>)).code).toBe('23502');
    const { rows: after } = await rows(sql`SELECT count(*)::int AS n FROM thread_probe WHERE id = 7`);
    expect(after[0]!.n).toBe(0);
  });

  it('serves concurrent queries while a transaction holds the database, in order', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const transaction = database.db.transaction(async (tx) => {
      await tx.execute(sql`INSERT INTO thread_probe (id, note) VALUES (8, 'slow')`);
      await held;
    });
    const reads = Promise.all(Array.from({ length: 20 }, (_, index) => rows(sql`SELECT ${index}::int AS i`)));
    release();
    await transaction;
    const answers = await reads;
    expect(answers.map((answer) => answer.rows[0]!.i)).toEqual(Array.from({ length: 20 }, (_, index) => index));
    const { rows: slow } = await rows(sql`SELECT note FROM thread_probe WHERE id = 8`);
    expect(slow[0]!.note).toBe('slow');
  });

  it('runs a repeated statement by name (prepared once), with the same rows, parameters and errors as an unnamed one', async () => {
    await database.db.execute(sql`CREATE TABLE prepared_probe (id int PRIMARY KEY, tags text[] NOT NULL, doc jsonb NOT NULL, at timestamptz NOT NULL, note text)`);
    const insert = (id: number, note: string | null) =>
      database.db.execute(sql`INSERT INTO prepared_probe (id, tags, doc, at, note) VALUES (${id}, ${sql.param(['a', `tag ${id}`])}, ${JSON.stringify({ id, nested: { ok: true } })}::jsonb, ${new Date(Date.UTC(2026, 0, id)).toISOString()}::timestamptz, ${note})`);
    for (let id = 1; id <= 4; id += 1) await insert(id, id % 2 === 0 ? null : `note ${id}`);
    const read = (id: number) => rows(sql`SELECT id, tags, doc, note, at FROM prepared_probe WHERE id = ${id}`);
    const answers = [];
    for (let id = 1; id <= 4; id += 1) answers.push((await read(id)).rows[0]);
    expect(answers.map((row) => [row!.id, row!.tags, row!.doc, row!.note])).toEqual([
      [1, ['a', 'tag 1'], { id: 1, nested: { ok: true } }, 'note 1'],
      [2, ['a', 'tag 2'], { id: 2, nested: { ok: true } }, null],
      [3, ['a', 'tag 3'], { id: 3, nested: { ok: true } }, 'note 3'],
      [4, ['a', 'tag 4'], { id: 4, nested: { ok: true } }, null],
    ]);
    expect(typeof answers[3]!.at).toBe('string');
    // Both statements were seen more than once: they are now PostgreSQL prepared statements.
    const { rows: prepared } = await rows(sql`SELECT statement FROM pg_prepared_statements WHERE name LIKE 'anima_%'`);
    const texts = prepared.map((row) => String(row.statement));
    expect(texts.some((text) => text.startsWith('INSERT INTO prepared_probe'))).toBe(true);
    expect(texts.some((text) => text.startsWith('SELECT id, tags, doc, note, at FROM prepared_probe'))).toBe(true);
    // A named statement's error keeps PostgreSQL's fields, outside and inside a transaction.
    const duplicate = await insert(1, 'again').catch((error: unknown) => error);
    const cause = (duplicate as { cause?: Record<string, unknown> }).cause ?? (duplicate as Record<string, unknown>);
    expect(cause.code).toBe('23505');
    expect(cause.constraint).toBe('prepared_probe_pkey');
    const rolledBack = await database.db
      .transaction(async (tx) => {
        await tx.execute(sql`INSERT INTO prepared_probe (id, tags, doc, at, note) VALUES (${9}, ${sql.param(['t'])}, ${'{}'}::jsonb, ${new Date().toISOString()}::timestamptz, ${null})`);
        await tx.execute(sql`INSERT INTO prepared_probe (id, tags, doc, at, note) VALUES (${2}, ${sql.param(['t'])}, ${'{}'}::jsonb, ${new Date().toISOString()}::timestamptz, ${null})`);
      })
      .catch((error: unknown) => error);
    expect(((rolledBack as { cause?: Record<string, unknown> }).cause ?? (rolledBack as Record<string, unknown>)).code).toBe('23505');
    expect((await rows(sql`SELECT count(*)::int AS n FROM prepared_probe`)).rows[0]!.n).toBe(4);
    // A named statement inside a transaction that commits.
    await database.db.transaction(async (tx) => {
      for (const id of [5, 6]) await tx.execute(sql`INSERT INTO prepared_probe (id, tags, doc, at, note) VALUES (${id}, ${sql.param(['t'])}, ${'{}'}::jsonb, ${new Date().toISOString()}::timestamptz, ${null})`);
    });
    expect((await rows(sql`SELECT count(*)::int AS n FROM prepared_probe`)).rows[0]!.n).toBe(6);
  });

  it('prepares a named statement again when a migration changed what it returns', async () => {
    await database.db.execute(sql`CREATE TABLE reshaped_probe (id int PRIMARY KEY)`);
    await database.db.execute(sql`INSERT INTO reshaped_probe VALUES (1)`);
    const read = () => rows(sql`SELECT * FROM reshaped_probe WHERE id = ${1}`);
    await read();
    expect((await read()).rows[0]).toEqual({ id: 1 });
    await database.db.execute(sql`ALTER TABLE reshaped_probe ADD COLUMN label text NOT NULL DEFAULT 'new'`);
    expect((await read()).rows[0]).toEqual({ id: 1, label: 'new' });
    expect((await read()).rows[0]).toEqual({ id: 1, label: 'new' });
  });
  it("reads a named statement's answer exactly as PGlite's own parser reads the unnamed one: every type, nulls, UTF-8, array rows, counts", async () => {
    const client = (database.db as unknown as { $client: ThreadedPglite }).$client;
    await client.query('CREATE TABLE reading_probe (id int PRIMARY KEY, big bigint, ratio real, exact numeric, flag boolean, tags text[], counts int[], stamps timestamptz[], doc jsonb, at timestamptz, day date, uid uuid, bytes bytea, note text, embedding vector(3))');
    await client.query(`INSERT INTO reading_probe VALUES (1, 9007199254740993, 0.1, 12.50, true, ARRAY['a', 'b c', NULL], ARRAY[3, NULL, -4], ARRAY['2026-01-02T03:04:05Z'::timestamptz], '{"k": [1, "ü"]}', '2026-01-02T03:04:05.678Z', '2026-01-02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff', 'Grüße, 世界 🌍 — "quoted"' || chr(10) || 'line', '[1,2.5,3]'), (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`);
    const statements: Array<[string, unknown[]]> = [
      ['SELECT * FROM reading_probe WHERE id <= $1 ORDER BY id', [5]],
      ['SELECT id, note FROM reading_probe WHERE id > $1', [100]],
      ['SELECT count(*) AS n, sum(id) AS s, $1::text AS echoed, $2::text AS unicode FROM reading_probe', ['', 'ünï 🌍']],
      ["SELECT to_tsquery('english', $1) AS q", ['the']], // answered with a NOTICE (only stop words)
      ['INSERT INTO reading_probe (id, note) VALUES ($1, $2)', [3, 'three']],
      ['UPDATE reading_probe SET note = $1 WHERE id >= 1', ['ünïcode']],
      ['DELETE FROM reading_probe WHERE id = $1 RETURNING id, note, tags', [1]],
    ];
    class Undo extends Error {}
    /** Runs a statement in a transaction rolled back afterwards, so every run sees the same rows. */
    const runUndone = async (text: string, params: unknown[], rowMode: 'object' | 'array', asText: boolean) => {
      let answer: unknown;
      // asText: timestamps and their arrays as the text PostgreSQL wrote, as Drizzle asks for them.
      const parsers = asText ? { 1184: (value: string) => value, 1185: (value: string) => value } : undefined;
      await client
        .transaction(async (tx) => {
          answer = await tx.query(text, params, { rowMode, ...(parsers ? { parsers } : {}) });
          throw new Undo();
        })
        .catch((error: unknown) => {
          if (!(error instanceof Undo)) throw error;
        });
      return answer;
    };
    for (const [statement, params] of statements) {
      for (const rowMode of ['object', 'array'] as const) {
        for (const asText of [false, true]) {
          const text = `${statement} -- ${rowMode}${asText ? ' as text' : ''}`;
          // The first sight runs unnamed (PGlite's own query and parser); the second and third by name.
          const unnamed = await runUndone(text, params, rowMode, asText);
          const named = await runUndone(text, params, rowMode, asText);
          expect(named, text).toEqual(unnamed);
          expect(await runUndone(text, params, rowMode, asText), text).toEqual(unnamed);
        }
      }
    }
    const { rows: prepared } = await rows(sql`SELECT count(*)::int AS n FROM pg_prepared_statements WHERE statement LIKE '% -- %'`);
    expect(prepared[0]!.n).toBe(statements.length * 4);
  });
});
