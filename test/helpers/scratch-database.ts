import { randomBytes } from 'node:crypto';
import pg from 'pg';

export interface ScratchDatabase {
  url: string;
  drop(): Promise<void>;
}

/** Creates an empty PostgreSQL database next to `baseUrl` (tests, benchmarks); `drop()` removes it. */
export async function createScratchDatabase(baseUrl: string, prefix = 'anima_t', template?: string): Promise<ScratchDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  try {
    await admin.query(template ? `CREATE DATABASE ${name} TEMPLATE ${template}` : `CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: baseUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/**
 * A scratch database copied from a migrated template (`CREATE DATABASE … TEMPLATE`), which is much
 * faster than running every migration per test server. The template is made once per set of
 * migrations (its name carries their hash) under a temporary name and renamed into place when
 * complete, so concurrent test runs never copy half a template; the first run still proves that
 * the migrations apply to a fresh PostgreSQL.
 */
export async function createMigratedScratchDatabase(baseUrl: string, key: string, migrate: (url: string) => Promise<void>): Promise<ScratchDatabase> {
  const template = `anima_tpl_${key}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [template]);
    if (exists.rowCount === 0) {
      const building = await createScratchDatabase(baseUrl, `anima_tplb_${key}`);
      try {
        await migrate(building.url);
        const buildingName = new URL(building.url).pathname.slice(1);
        await admin.query(`ALTER DATABASE ${buildingName} RENAME TO ${template}`);
      } catch (error) {
        await building.drop();
        // Another run renamed its template into place first: use that one.
        const raced = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [template]);
        if (raced.rowCount === 0) throw error;
      }
    }
  } finally {
    await admin.end();
  }
  return createScratchDatabase(baseUrl, 'anima_t', template);
}
