import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/infra/logging/logger.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { openDatabase } from '../../src/infra/db/database.js';
import { embeddedDataDir, templateKey } from './embedded-template.js';
import { createMigratedScratchDatabase } from './scratch-database.js';
import { testRedisPrefix } from './test-redis-prefix.js';

export type Backend = 'embedded' | 'postgres';

/** The storage backends this run covers: always embedded; PostgreSQL + Redis where TEST_DATABASE_URL is set. */
export function backends(): Backend[] {
  return process.env.TEST_DATABASE_URL ? ['embedded', 'postgres'] : ['embedded'];
}

export interface TestServer extends RunningServer {
  backend: Backend;
  adminKey: string;
  internalKey: string;
  /** Every log line the server wrote, for assertions (e.g. no secret material). */
  logs: string[];
  /** fetch against the server with JSON in and out; `key` defaults to the admin key. */
  request(method: string, urlPath: string, options?: RequestOptions): Promise<TestResponse>;
  dataDir: string;
}

export interface RequestOptions {
  body?: unknown;
  key?: string | null;
  headers?: Record<string, string>;
}

export interface TestResponse {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read response bodies freely
  body: any;
  text: string;
}

async function migratePostgres(url: string): Promise<void> {
  const handle = await openDatabase({ databaseUrl: url, dataDir: tmpdir(), logger: createLogger('silent') });
  await handle.close();
}

export async function startTestServer(backend: Backend, env: Record<string, string | undefined> = {}): Promise<TestServer> {
  const dataDir = env.DATA_DIR ?? mkdtempSync(path.join(tmpdir(), 'anima-test-'));
  // The embedded database starts from a migrated template (seconds instead of a WebAssembly initdb).
  if (backend === 'embedded' && !env.DATABASE_URL) await embeddedDataDir(dataDir);
  const adminKey = `admin-${randomBytes(16).toString('hex')}`;
  const internalKey = `internal-${randomBytes(16).toString('hex')}`;
  const postgres = backend === 'postgres' ? await createMigratedScratchDatabase(process.env.TEST_DATABASE_URL!, templateKey(), migratePostgres) : undefined;
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    DATA_DIR: dataDir,
    ADMIN_API_KEY: adminKey,
    INTERNAL_API_KEY: internalKey,
    ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    ALLOW_PRIVATE_FETCH: 'true',
    SHUTDOWN_GRACE_MS: '2000',
    // Per-plan request limits (free: 5 a minute) would trip suites that chat many times as one user;
    // the billing suites turn them on and prove them.
    RATE_LIMITS_ENABLED: 'false',
    // In-process servers keep PGlite on the test worker's thread: a worker thread per server would load
    // tsx and compile PGlite's WebAssembly again at every start. Servers started as child processes
    // (the built bundle: CLI, process, crash and bench suites) run the default, the database thread.
    EMBEDDED_DATABASE_THREAD: process.env.TEST_EMBEDDED_DATABASE_THREAD ?? 'false',
    ...(postgres ? { DATABASE_URL: postgres.url, REDIS_URL: process.env.TEST_REDIS_URL, REDIS_KEY_PREFIX: testRedisPrefix() } : {}),
    ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      callback();
    },
  });
  const server = await startServer(config, createLogger(config.logLevel, sink));

  const request = async (method: string, urlPath: string, options: RequestOptions = {}): Promise<TestResponse> => {
    const headers: Record<string, string> = { ...options.headers };
    const key = options.key === undefined ? adminKey : options.key;
    if (key) headers.authorization = `Bearer ${key}`;
    let body: string | undefined;
    if (options.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    }
    const response = await fetch(`${server.url}${urlPath}`, { method, headers, body });
    const text = await response.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: response.status, headers: response.headers, body: parsed, text };
  };

  return {
    ...server,
    backend,
    adminKey,
    internalKey,
    logs,
    dataDir,
    request,
    stop: async () => {
      await server.stop();
      await postgres?.drop();
      if (!env.DATA_DIR) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
