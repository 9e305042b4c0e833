import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type DatabaseHandle } from '../../src/infra/db/database.js';
import { createLogger } from '../../src/infra/logging/logger.js';
import { vectorParam } from '../../src/modules/memory/store.js';
import { embeddedDataDir } from '../helpers/embedded-template.js';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/scratch-database.js';

/**
 * A byte array is a binary parameter on every database Anima runs on (recall sends its query vector
 * in pgvector's binary form, `vectorParam`): PGlite on the main thread and on its own thread, by name
 * and unnamed, inside a transaction too, and PostgreSQL through node-postgres. bytea keeps its own
 * serializer. The first run of a text is unnamed and later ones named (see StatementBook), so each
 * statement runs three times.
 */
const variants: Array<[string, { thread: boolean } | 'postgres']> = [
  ['embedded, main thread', { thread: false }],
  ['embedded, own thread', { thread: true }],
  ...(process.env.TEST_DATABASE_URL ? [['PostgreSQL', 'postgres'] as [string, 'postgres']] : []),
];

describe.each(variants)('binary parameters (%s)', (_name, variant) => {
  let database: DatabaseHandle;
  let scratch: ScratchDatabase | undefined;

  beforeAll(async () => {
    if (variant === 'postgres') {
      scratch = await createScratchDatabase(process.env.TEST_DATABASE_URL!);
      database = await openDatabase({ databaseUrl: scratch.url, dataDir: '', logger: createLogger('silent') });
    } else {
      database = await openDatabase({ databaseUrl: undefined, dataDir: await embeddedDataDir(), logger: createLogger('silent'), thread: variant.thread });
    }
  }, 120_000);

  afterAll(async () => {
    await database?.close();
    await scratch?.drop();
  });

  const first = async (query: ReturnType<typeof sql>): Promise<Record<string, unknown>> => {
    const result: unknown = await database.db.execute(query);
    return (result as { rows: Array<Record<string, unknown>> }).rows[0]!;
  };

  it('reads a vector sent in pgvector’s binary form as the same vector as its text', async () => {
    const values = [0.5, -1, 3, 0.1, 1 / 3];
    for (let run = 0; run < 3; run += 1) {
      const row = await first(sql`SELECT ${vectorParam(values)}::vector(5)::text AS binary, ${'[0.5,-1,3,0.1,0.33333334]'}::vector(5)::text AS text, (${vectorParam(values)}::vector(5) <=> ${'[1,0,0,0,0]'}::vector(5))::float8 AS distance`);
      expect(row.binary).toBe(row.text);
      expect(Number(row.distance)).toBeCloseTo(1 - 0.5 / Math.hypot(...values.map((value) => Math.fround(value))), 6);
    }
    await database.db.transaction(async (tx) => {
      const result: unknown = await tx.execute(sql`SELECT ${vectorParam([2, 0])}::vector(2)::text AS v`);
      expect((result as { rows: Array<{ v: string }> }).rows[0]!.v).toBe('[2,0]');
    });
  });

  it('refuses a vector of the wrong size as PostgreSQL does, and keeps bytea a byte string', async () => {
    const refused = await database.db.execute(sql`SELECT ${vectorParam([1, 2, 3])}::vector(2) AS v`).then(
      () => undefined,
      (error: unknown) => error as Error & { cause?: Error },
    );
    // Drizzle wraps the driver's error; PostgreSQL's own is its cause.
    expect((refused?.cause ?? refused)?.message).toMatch(/expected 2 dimensions, not 3/);
    for (let run = 0; run < 3; run += 1) {
      const row = await first(sql`SELECT encode(${Buffer.from([1, 2, 255])}::bytea, 'hex') AS hex`);
      expect(row.hex).toBe('0102ff');
    }
  });
});
