import { execFileSync } from 'node:child_process';
import { projectFile } from '../../src/infra/project-files.js';
import { embeddedTemplate } from './embedded-template.js';

/**
 * Runs once per `vitest run`, before any test file:
 * - builds dist/ with esbuild (≈ 2 s) so child processes (server, worker, CLI) start from the bundle
 *   `npm start` runs, built from the sources under test;
 * - makes the migrated embedded-database template, so parallel workers copy it instead of each
 *   racing to run initdb in WebAssembly.
 */
export default async function globalSetup(): Promise<void> {
  execFileSync(process.execPath, [projectFile('scripts', 'build.mjs')], { stdio: ['ignore', 'ignore', 'inherit'] });
  await embeddedTemplate();
}
