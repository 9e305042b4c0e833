import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The run's id, in every test server's Redis key prefix (test/helpers/global-setup.ts drops them at the end). */
    redisRun: string;
  }
}

/** A new key prefix for a test server, under this run's (see test/helpers/redis-keys.ts). */
export function testRedisPrefix(): string {
  return `t${inject('redisRun')}${randomBytes(4).toString('hex')}`;
}
