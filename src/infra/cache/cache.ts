/**
 * Cache, counters and cross-replica events behind small interfaces, with an in-process backend
 * (the embedded default) and a Redis backend (several replicas). Values are JSON.
 */

export interface Cache {
  get<T>(key: string): Promise<T | undefined>;
  set(key: string, value: unknown, ttlSeconds?: number): Promise<void>;
  delete(key: string): Promise<void>;
}

export interface CounterHit {
  count: number;
  /** Seconds until the current window resets. */
  resetInSeconds: number;
}

export interface Counters {
  /** Adds `amount` in a fixed window of `windowSeconds`, returning the count in that window. */
  increment(key: string, windowSeconds: number, amount?: number): Promise<CounterHit>;
}

export type EventHandler = (message: string) => void;

export interface Events {
  publish(channel: string, message: string): Promise<void>;
  /** Returns an unsubscribe function. Local publishes reach local subscribers too. */
  subscribe(channel: string, handler: EventHandler): Promise<() => Promise<void>>;
}

export interface KeyValueBackend {
  kind: 'memory' | 'redis';
  cache: Cache;
  counters: Counters;
  events: Events;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The same cache with every key under `scope` (the database's identity: see readDatabaseIdentity). */
export function scopeCache(cache: Cache, scope: string): Cache {
  return {
    get: (key) => cache.get(`${scope}${key}`),
    set: (key, value, ttlSeconds) => cache.set(`${scope}${key}`, value, ttlSeconds),
    delete: (key) => cache.delete(`${scope}${key}`),
  };
}
