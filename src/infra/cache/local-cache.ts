import type { Events } from './cache.js';

export interface LocalCacheOptions {
  /** Cross-replica invalidation: a tag published here drops that tag's entries in every process. */
  events?: Events | undefined;
  channel: string;
  /** How long an entry lives without an invalidation (heals a lost pub/sub message). */
  ttlMs: number;
  maxEntries?: number;
}

interface Entry<V> {
  value: V;
  tag: string;
  expiresAt: number;
}

/**
 * A per-process read-through cache for rows a chat turn reads and that rarely change (users,
 * plans, provider keys). Entries are tagged (e.g. with the user id); `invalidate(tag)` drops the
 * tag here and publishes it so every replica drops it too (Redis pub/sub, or the local bus on the
 * embedded default). A load that was running while an invalidation arrived is returned but not
 * kept, so a change can never be overwritten by the value read before it. Being per process, it
 * starts empty with the process: a database reset behind a restarted server serves nothing stale.
 */
export class LocalCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly pending = new Map<string, Promise<V>>();
  /** Bumped by every invalidation: a load started before it does not store its result. */
  private generation = 0;
  private unsubscribe: (() => Promise<void>) | undefined;

  constructor(private readonly options: LocalCacheOptions) {}

  async start(): Promise<void> {
    if (this.options.events && !this.unsubscribe) this.unsubscribe = await this.options.events.subscribe(this.options.channel, (tag) => this.drop(tag));
  }

  async close(): Promise<void> {
    await this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.entries.clear();
  }

  /**
   * The cached value, or `load()`'s (shared by concurrent callers of the same key). Undefined
   * results are not kept. `tag` names what invalidates the entry (given, or derived from the value).
   */
  async get(key: string, tag: string | ((value: V) => string), load: () => Promise<V>): Promise<V> {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt > Date.now()) return entry.value;
    if (entry) this.entries.delete(key);
    const running = this.pending.get(key);
    if (running) return running;
    const generation = this.generation;
    const settle = () => {
      if (this.pending.get(key) === loading) this.pending.delete(key);
    };
    const loading: Promise<V> = load().then(
      (value) => {
        settle();
        if (value !== undefined && generation === this.generation) this.set(key, typeof tag === 'string' ? tag : tag(value), value);
        return value;
      },
      (error: unknown) => {
        settle();
        throw error;
      },
    );
    this.pending.set(key, loading);
    return loading;
  }

  /** Drops `tag` here and in every replica. Call after the change is committed. */
  async invalidate(tag: string): Promise<void> {
    this.drop(tag);
    await this.options.events?.publish(this.options.channel, tag);
  }

  private set(key: string, tag: string, value: V): void {
    const maxEntries = this.options.maxEntries ?? 10_000;
    if (this.entries.size >= maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, { value, tag, expiresAt: Date.now() + this.options.ttlMs });
  }

  private drop(tag: string): void {
    this.generation += 1;
    // Loads in flight may have read the old row: later callers must not join them.
    this.pending.clear();
    if (tag === '*') {
      this.entries.clear();
      return;
    }
    for (const [key, entry] of this.entries) if (entry.tag === tag) this.entries.delete(key);
  }
}
