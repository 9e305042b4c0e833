import type { KeyValueBackend } from './cache.js';
import { createMemoryBackend } from './memory-backend.js';
import { createRedisBackend } from './redis-backend.js';

export type { Cache, Counters, Events, KeyValueBackend, CounterHit } from './cache.js';
export { scopeCache } from './cache.js';

export async function openKeyValueBackend(redisUrl: string | undefined, keyPrefix?: string): Promise<KeyValueBackend> {
  return redisUrl ? createRedisBackend(redisUrl, keyPrefix) : createMemoryBackend();
}
export { LocalCache, type LocalCacheOptions } from './local-cache.js';
