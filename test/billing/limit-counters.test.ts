import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createLimitCounters, type LimitCounters } from '../../src/modules/billing/limits.js';
import { testRedisPrefix } from '../helpers/test-redis-prefix.js';

const redisUrl = process.env.TEST_REDIS_URL;
const stores = redisUrl ? (['memory', 'redis'] as const) : (['memory'] as const);

/**
 * The plan-limit counters behind streams, images and voice seconds: taken before a call, given back
 * (in part) when it ends — never below zero, never into a window that already ended. On Redis the
 * give-back is one script (one round trip); in memory, rate-limiter-flexible's own get + reward.
 */
describe.each(stores)('limit counters in %s', (store) => {
  const prefix = testRedisPrefix();
  const counters: LimitCounters = createLimitCounters({ redisUrl: store === 'redis' ? redisUrl : undefined, keyPrefix: prefix });
  const redis = store === 'redis' ? new Redis(redisUrl!) : undefined;

  afterAll(async () => {
    if (redis) {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    }
    await counters.close();
  });

  it('gives back what was taken, at most what is held, and keeps the window', async () => {
    expect((await counters.take('streams', 'ann', 3, 3, 60)).allowed).toBe(true);
    expect((await counters.take('streams', 'ann', 1, 3, 60)).allowed).toBe(false);
    await counters.giveBack('streams', 'ann', 2, 3, 60);
    expect((await counters.take('streams', 'ann', 2, 3, 60)).state.remaining).toBe(0);
    // More than is held goes back only down to zero: the full limit is there again, no more.
    await counters.giveBack('streams', 'ann', 10, 3, 60);
    expect((await counters.take('streams', 'ann', 3, 3, 60)).allowed).toBe(true);
    expect((await counters.take('streams', 'ann', 1, 3, 60)).allowed).toBe(false);
    if (redis) {
      const ttl = await redis.pttl(`${prefix}:limit:streams:ann`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(60_000);
    }
  });

  it('gives nothing back to a window that never was or has ended', async () => {
    await counters.giveBack('images', 'bo:2026-11-30', 2, 5, 60);
    if (redis) expect(await redis.exists(`${prefix}:limit:images:bo:2026-11-30`)).toBe(0);
    // Nothing went below zero: the limit is exactly the limit.
    expect((await counters.take('images', 'bo:2026-11-30', 5, 5, 60)).allowed).toBe(true);
    expect((await counters.take('images', 'bo:2026-11-30', 1, 5, 60)).allowed).toBe(false);
  });
});
