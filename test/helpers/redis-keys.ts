import { Redis } from 'ioredis';

/**
 * Redis keys of test and benchmark servers. Every server of a test run gets a key prefix of its own
 * under the run's (`t<run id><random>`, test/helpers/test-redis-prefix.ts), and the run's global
 * teardown drops the run's keys; a benchmark drops its server's prefix when it is done. Without this,
 * every run left its cache entries, counters and job records behind in the machine's Redis.
 */

/** Deletes every key under `prefix` (Anima writes `<REDIS_KEY_PREFIX>:…`); answers how many. */
export async function dropRedisKeys(url: string, prefix: string): Promise<number> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    let dropped = 0;
    for await (const keys of redis.scanStream({ match: `${prefix}*`, count: 1000 }) as AsyncIterable<string[]>) {
      if (keys.length > 0) dropped += await redis.unlink(...keys);
    }
    return dropped;
  } finally {
    redis.disconnect();
  }
}

/** The run's keys, for the global teardown: every test server's prefix starts with it. */
export function runRedisPrefix(run: string): string {
  return `t${run}`;
}
