import { execFileSync } from 'node:child_process';
import { projectFile } from '../../src/infra/project-files.js';
import { embeddedTemplate } from './embedded-template.js';
import { randomBytes } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { dropRedisKeys, runRedisPrefix } from './redis-keys.js';

/**
 * Runs once per `vitest run`, before any test file:
 * - builds dist/ with esbuild (≈ 2 s) so child processes (server, worker, CLI) start from the bundle
 *   `npm start` runs, built from the sources under test;
 * - makes the migrated embedded-database template, so parallel workers copy it instead of each
 *   racing to run initdb in WebAssembly;
 * - names the run's Redis key prefix (test/helpers/redis-keys.ts), whose keys its teardown drops.
 */
export default async function globalSetup(project: TestProject): Promise<() => Promise<void>> {
  execFileSync(process.execPath, [projectFile('scripts', 'build.mjs')], { stdio: ['ignore', 'ignore', 'inherit'] });
  await embeddedTemplate();
  const run = randomBytes(3).toString('hex');
  project.provide('redisRun', run);
  return async () => {
    const url = process.env.TEST_REDIS_URL;
    if (url) await dropRedisKeys(url, runRedisPrefix(run)).catch((error: unknown) => console.warn(`could not drop the run's Redis keys: ${String(error)}`));
  };
}
