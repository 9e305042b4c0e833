import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../../src/infra/logging/logger.js';
import { openDatabase } from '../../src/infra/db/database.js';
import { projectFile } from '../../src/infra/project-files.js';

/**
 * A migrated embedded database, made once and copied for each test server.
 *
 * Creating a PGlite database runs `initdb` inside WebAssembly: 10–40 s on a loaded 2-core machine,
 * against ~1 s to copy a finished data directory and open it. The template is keyed by the migration
 * files and the PGlite versions, so a new migration makes a new template; it is built through the same
 * `openDatabase` (initdb, `CREATE EXTENSION vector`, every migration) the server uses, so the first
 * server of a run still proves that the migrations apply to a fresh PGlite. Suites that must show a
 * real first start (process.test.ts, cli.test.ts) start from an empty directory instead.
 */

/** Changes whenever a migration or the PGlite build changes. */
export function templateKey(): string {
  const hash = createHash('sha256');
  const migrations = projectFile('drizzle');
  for (const file of readdirSync(migrations, { recursive: true, encoding: 'utf8' }).sort()) {
    const full = path.join(migrations, file);
    if (file.endsWith('.sql') || file.endsWith('.json')) hash.update(file).update(readFileSync(full));
  }
  for (const dependency of ['@electric-sql/pglite', '@electric-sql/pglite-pgvector']) {
    hash.update(readFileSync(projectFile('node_modules', dependency, 'package.json')));
  }
  return hash.digest('hex').slice(0, 16);
}

let cachedTemplate: string | undefined;

/** The template's directory (holding `pglite/`), built now if this machine has none for these migrations. */
export async function embeddedTemplate(): Promise<string> {
  if (cachedTemplate) return cachedTemplate;
  const target = path.join(tmpdir(), `anima-pglite-template-${templateKey()}`);
  if (!existsSync(path.join(target, 'pglite', 'PG_VERSION'))) {
    // Built beside the target and renamed into place: concurrent builders never see half a template.
    const building = mkdtempSync(path.join(tmpdir(), 'anima-pglite-building-'));
    const handle = await openDatabase({ databaseUrl: undefined, dataDir: building, logger: createLogger('silent') });
    await handle.close();
    rmSync(path.join(building, 'pglite.lock'), { force: true });
    try {
      renameSync(building, target);
    } catch {
      // Another process won the race; its template is as good as ours.
      rmSync(building, { recursive: true, force: true });
    }
  }
  cachedTemplate = target;
  return target;
}

/** A fresh DATA_DIR holding a copy of the migrated template (created when `directory` is not given). */
export async function embeddedDataDir(directory?: string): Promise<string> {
  const template = await embeddedTemplate();
  const dataDir = directory ?? mkdtempSync(path.join(tmpdir(), 'anima-test-'));
  mkdirSync(dataDir, { recursive: true });
  if (!existsSync(path.join(dataDir, 'pglite'))) cpSync(path.join(template, 'pglite'), path.join(dataDir, 'pglite'), { recursive: true });
  return dataDir;
}
