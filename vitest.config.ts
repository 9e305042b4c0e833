import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// Most suites wait on sockets, child processes and PostgreSQL rather than compute, so files run
// side by side beyond the core count (Vitest's own default is one worker on a 2-core machine).
// TEST_WORKERS overrides it.
const workers = Number(process.env.TEST_WORKERS) || Math.max(3, availableParallelism());

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: workers,
    // Each worker loads the server's modules once for all the files it runs (no suite mocks modules or
    // globals, so nothing leaks between files); per-file isolation doubled the time spent importing.
    isolate: false,
    globalSetup: ['./test/helpers/global-setup.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
