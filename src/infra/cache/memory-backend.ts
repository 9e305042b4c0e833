import { EventEmitter } from 'node:events';
import type { Cache, Counters, Events, KeyValueBackend } from './cache.js';

interface Entry {
  value: string;
  expiresAt: number | undefined;
}

/** In-process backend: a bounded LRU cache, fixed-window counters and a local event bus. */
export function createMemoryBackend(options: { maxEntries?: number; now?: () => number } = {}): KeyValueBackend {
  const maxEntries = options.maxEntries ?? 10_000;
  const now = options.now ?? Date.now;
  const entries = new Map<string, Entry>();
  const windows = new Map<string, { count: number; resetsAt: number }>();
  const bus = new EventEmitter();
  bus.setMaxListeners(0);

  const readLive = (key: string): Entry | undefined => {
    const entry = entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= now()) {
      entries.delete(key);
      return undefined;
    }
    // Re-insert so Map order tracks recency: the first key is the least recently used.
    entries.delete(key);
    entries.set(key, entry);
    return entry;
  };

  const cache: Cache = {
    async get<T>(key: string) {
      const entry = readLive(key);
      return entry ? (JSON.parse(entry.value) as T) : undefined;
    },
    async set(key, value, ttlSeconds) {
      entries.delete(key);
      entries.set(key, { value: JSON.stringify(value), expiresAt: ttlSeconds ? now() + ttlSeconds * 1000 : undefined });
      while (entries.size > maxEntries) {
        const oldest = entries.keys().next().value;
        if (oldest === undefined) break;
        entries.delete(oldest);
      }
    },
    async delete(key) {
      entries.delete(key);
    },
  };

  const counters: Counters = {
    async increment(key, windowSeconds, amount = 1) {
      const current = now();
      let window = windows.get(key);
      if (!window || window.resetsAt <= current) {
        window = { count: 0, resetsAt: current + windowSeconds * 1000 };
        windows.set(key, window);
        if (windows.size > maxEntries) {
          for (const [windowKey, value] of windows) if (value.resetsAt <= current) windows.delete(windowKey);
        }
      }
      window.count += amount;
      return { count: window.count, resetInSeconds: Math.max(0, (window.resetsAt - current) / 1000) };
    },
  };

  const events: Events = {
    async publish(channel, message) {
      bus.emit(channel, message);
    },
    async subscribe(channel, handler) {
      bus.on(channel, handler);
      return async () => {
        bus.off(channel, handler);
      };
    },
  };

  return {
    kind: 'memory',
    cache,
    counters,
    events,
    ping: async () => undefined,
    close: async () => {
      entries.clear();
      windows.clear();
      bus.removeAllListeners();
    },
  };
}
