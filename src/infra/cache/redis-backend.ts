import { Redis } from 'ioredis';
import type { Cache, Counters, EventHandler, Events, KeyValueBackend } from './cache.js';

const INCREMENT_IN_WINDOW = `
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
if count == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {count, redis.call('PTTL', KEYS[1])}
`;

/**
 * Options of every Redis connection that sends commands (pub/sub has its own). Auto-pipelining is
 * off: it defers each command to the next tick and wraps it in a pipeline object, which at the
 * concurrency a server sees (one to eight commands in flight) costs more CPU a command than it saves
 * in writes (`npx tsx bench/hot-path.ts`; issue 14, tenth pass). Commands still go out without
 * waiting for the answers of earlier ones.
 */
export const REDIS_COMMAND_OPTIONS = { maxRetriesPerRequest: 2, enableOfflineQueue: true, enableAutoPipelining: false } as const;

/** Redis backend: shared cache, atomic window counters (one Lua call) and pub/sub across replicas. */
export async function createRedisBackend(url: string, keyPrefix = 'anima:'): Promise<KeyValueBackend> {
  const client = new Redis(url, { lazyConnect: true, ...REDIS_COMMAND_OPTIONS });
  // Pub/sub needs a connection of its own: a subscribed connection can do nothing else.
  const subscriber = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: null });
  // Errors surface on each command; these listeners keep a reconnecting client from crashing the process.
  client.on('error', () => undefined);
  subscriber.on('error', () => undefined);
  await client.connect();
  await subscriber.connect();

  const handlers = new Map<string, Set<EventHandler>>();
  subscriber.on('message', (channel: string, message: string) => {
    const local = handlers.get(channel.slice(keyPrefix.length));
    if (local) for (const handler of local) handler(message);
  });

  const cache: Cache = {
    async get<T>(key: string) {
      const value = await client.get(keyPrefix + key);
      return value === null ? undefined : (JSON.parse(value) as T);
    },
    async set(key, value, ttlSeconds) {
      const serialized = JSON.stringify(value);
      if (ttlSeconds) await client.set(keyPrefix + key, serialized, 'EX', Math.max(1, Math.ceil(ttlSeconds)));
      else await client.set(keyPrefix + key, serialized);
    },
    async delete(key) {
      await client.del(keyPrefix + key);
    },
  };

  const counters: Counters = {
    async increment(key, windowSeconds, amount = 1) {
      const [count, ttlMs] = (await client.eval(
        INCREMENT_IN_WINDOW,
        1,
        `${keyPrefix}counter:${key}`,
        String(amount),
        String(Math.ceil(windowSeconds * 1000)),
      )) as [number, number];
      return { count, resetInSeconds: Math.max(0, ttlMs) / 1000 };
    },
  };

  const events: Events = {
    async publish(channel, message) {
      await client.publish(keyPrefix + channel, message);
    },
    async subscribe(channel, handler) {
      let set = handlers.get(channel);
      if (!set) {
        set = new Set();
        handlers.set(channel, set);
        await subscriber.subscribe(keyPrefix + channel);
      }
      set.add(handler);
      return async () => {
        const current = handlers.get(channel);
        current?.delete(handler);
        if (current && current.size === 0) {
          handlers.delete(channel);
          await subscriber.unsubscribe(keyPrefix + channel);
        }
      };
    },
  };

  return {
    kind: 'redis',
    cache,
    counters,
    events,
    ping: async () => {
      await client.ping();
    },
    close: async () => {
      handlers.clear();
      subscriber.disconnect();
      await client.quit().catch(() => client.disconnect());
    },
  };
}
