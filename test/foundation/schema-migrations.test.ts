import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { is, sql } from 'drizzle-orm';
import { getTableConfig, PgTable } from 'drizzle-orm/pg-core';
import { describe, expect, it } from 'vitest';
import { openDatabase, type DatabaseHandle } from '../../src/infra/db/database.js';
import * as schema from '../../src/infra/db/schema.js';
import { createLogger } from '../../src/infra/logging/logger.js';
import { createScratchDatabase } from '../helpers/scratch-database.js';

/**
 * Migrations are hand-written (drizzle/README.md): this proves the migrated database and the
 * Drizzle schema agree — every table, column (type and nullability) and named index of the
 * schema exists after the migrations, and no migrated column is missing from the schema.
 */

const SQL_TYPE_TO_UDT: Record<string, string> = {
  uuid: 'uuid',
  text: 'text',
  integer: 'int4',
  bigint: 'int8',
  boolean: 'bool',
  'timestamp with time zone': 'timestamptz',
  timestamp: 'timestamp',
  jsonb: 'jsonb',
  real: 'float4',
  'double precision': 'float8',
  date: 'date',
  vector: 'vector',
  tsvector: 'tsvector',
};

function udtOf(sqlType: string): string {
  const base = sqlType.replace(/\(.*\)$/, '').trim();
  return SQL_TYPE_TO_UDT[base] ?? base;
}

function rowsOf<T>(result: unknown): T[] {
  return (result as { rows: T[] }).rows;
}

async function compare(handle: DatabaseHandle): Promise<string[]> {
  const columns = rowsOf<{ table_name: string; column_name: string; udt_name: string; is_nullable: string }>(
    await handle.db.execute(sql`SELECT table_name, column_name, udt_name, is_nullable FROM information_schema.columns WHERE table_schema = 'public'`),
  );
  const indexes = new Set(rowsOf<{ indexname: string }>(await handle.db.execute(sql`SELECT indexname FROM pg_indexes WHERE schemaname = 'public'`)).map((row) => row.indexname));
  const byTable = new Map<string, Map<string, { udt: string; nullable: boolean }>>();
  for (const column of columns) {
    const table = byTable.get(column.table_name) ?? new Map();
    table.set(column.column_name, { udt: column.udt_name, nullable: column.is_nullable === 'YES' });
    byTable.set(column.table_name, table);
  }
  const problems: string[] = [];
  const tables = (Object.values(schema) as unknown[]).filter((value): value is PgTable => is(value, PgTable));
  expect(tables.length).toBeGreaterThan(5);
  for (const table of tables) {
    const config = getTableConfig(table);
    const migrated = byTable.get(config.name);
    if (!migrated) {
      problems.push(`table ${config.name} is in the schema but no migration creates it`);
      continue;
    }
    for (const column of config.columns) {
      const found = migrated.get(column.name);
      if (!found) {
        problems.push(`${config.name}.${column.name} is in the schema but not in the migrated database`);
        continue;
      }
      if (found.udt !== udtOf(column.getSQLType())) problems.push(`${config.name}.${column.name}: schema says ${column.getSQLType()}, database has ${found.udt}`);
      if (found.nullable === column.notNull && !column.primary) problems.push(`${config.name}.${column.name}: schema says ${column.notNull ? 'NOT NULL' : 'nullable'}, database differs`);
    }
    const known = new Set(config.columns.map((column) => column.name));
    for (const name of migrated.keys()) if (!known.has(name)) problems.push(`${config.name}.${name} is in the migrated database but not in the schema`);
    for (const index of config.indexes) {
      const name = index.config.name;
      if (name && !indexes.has(name)) problems.push(`index ${name} of ${config.name} is in the schema but no migration creates it`);
    }
  }
  return problems;
}

describe('the migrations and the Drizzle schema agree', () => {
  const logger = createLogger('silent');

  it('on the embedded database', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'anima-schema-'));
    const handle = await openDatabase({ databaseUrl: undefined, dataDir, logger });
    try {
      expect(await compare(handle)).toEqual([]);
    } finally {
      await handle.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);

  it.runIf(process.env.TEST_DATABASE_URL)('on PostgreSQL', async () => {
    const scratch = await createScratchDatabase(process.env.TEST_DATABASE_URL!);
    const handle = await openDatabase({ databaseUrl: scratch.url, dataDir: tmpdir(), logger });
    try {
      expect(await compare(handle)).toEqual([]);
    } finally {
      await handle.close();
      await scratch.drop();
    }
  }, 120_000);
});
