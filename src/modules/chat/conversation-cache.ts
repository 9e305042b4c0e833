import { randomUUID } from 'node:crypto';
import type { Events } from '../../infra/cache/cache.js';
import type { ConversationRow, HistoryRow } from './store.js';

/** Invalidations of conversations (their row or their messages) between replicas. */
export const CONVERSATIONS_CHANGED_CHANNEL = 'chat:conversations-changed';

export interface ConversationCacheOptions {
  /** Cross-replica invalidation (Redis pub/sub; the in-process bus on the embedded default). */
  events?: Events | undefined;
  /** How long an entry lives without a change (heals a lost pub/sub message). */
  ttlMs: number;
  /** Conversations kept (each with at most `historyLimit` messages); the least recently used go first. */
  maxEntries: number;
  /** Messages kept per conversation: the newest, as the prompt's history reads them. */
  historyLimit: number;
}

interface Entry {
  conversation: ConversationRow | undefined;
  /** Newest first, at most historyLimit; undefined until first read. */
  history: HistoryRow[] | undefined;
  expiresAt: number;
}

/**
 * What a turn reads of its conversation, kept per process: the conversation row (by character and
 * place) and its recent history. A turn that stores messages adds them here after its commit, so
 * the next turn reads nothing from the database; every other change (reset, `!voice`, deletion, a
 * user's data erased) drops the entry. Other replicas hear of each change through pub/sub and drop
 * their copy; an entry also expires after `ttlMs` whatever happens. A load that ran while a change
 * arrived is returned but not kept (a change marks the loads running as stale), so a change is never
 * overwritten by what was read before it. Being per process, it starts empty with the process.
 */
export class ConversationCache {
  private readonly entries = new Map<string, Entry>();
  /** Conversation ids → the key of their entry (character and place), for drops by id. */
  private readonly keysById = new Map<string, string>();
  /** Loads running, by conversation id (history) or for any conversation row: a change marks them stale, so they are not kept. */
  private readonly historyLoads = new Map<string, Set<Load>>();
  private readonly rowLoads = new Set<Load>();
  /** Tells this process's own publications from other replicas'. */
  private readonly origin = randomUUID();
  private unsubscribe: (() => Promise<void>) | undefined;

  constructor(private readonly options: ConversationCacheOptions) {}

  async start(): Promise<void> {
    if (!this.options.events || this.unsubscribe) return;
    this.unsubscribe = await this.options.events.subscribe(CONVERSATIONS_CHANGED_CHANNEL, (message) => {
      const [origin, conversationId] = message.split(' ');
      if (origin === this.origin) return;
      if (conversationId === '*') this.dropAll();
      else if (conversationId) this.drop(conversationId);
    });
  }

  async close(): Promise<void> {
    await this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.dropAll();
  }

  /** The conversation of a character at a place: cached, or loaded (a load is kept only if nothing changed meanwhile). */
  async conversation(key: string, load: () => Promise<ConversationRow>): Promise<ConversationRow> {
    const entry = this.live(key);
    if (entry?.conversation) return entry.conversation;
    const running: Load = { stale: false };
    this.rowLoads.add(running);
    let row: ConversationRow;
    try {
      row = await load();
    } finally {
      this.rowLoads.delete(running);
    }
    if (!running.stale) {
      const current = this.live(key);
      if (current) current.conversation = row;
      else this.put(key, { conversation: row, history: undefined, expiresAt: Date.now() + this.options.ttlMs });
      this.keysById.set(row.id, key);
    }
    return row;
  }

  /** The conversation's recent messages, newest first: cached, or loaded and kept when nothing changed meanwhile. */
  async history(key: string, conversationId: string, load: () => Promise<HistoryRow[]>): Promise<HistoryRow[]> {
    const entry = this.live(key);
    if (entry?.history && entry.conversation?.id === conversationId) return entry.history;
    const running: Load = { stale: false };
    const loads = this.historyLoads.get(conversationId) ?? new Set<Load>();
    loads.add(running);
    this.historyLoads.set(conversationId, loads);
    let rows: HistoryRow[];
    try {
      rows = await load();
    } finally {
      loads.delete(running);
      if (loads.size === 0) this.historyLoads.delete(conversationId);
    }
    const current = this.live(key);
    if (current && current.conversation?.id === conversationId && !running.stale) current.history = rows;
    return rows;
  }

  /**
   * Messages a turn committed: added to the cached history in the database's order (created_at,
   * then id, newest first), and other replicas told to drop theirs. Call after the commit.
   */
  async added(conversationId: string, rows: HistoryRow[]): Promise<void> {
    this.staleHistory(conversationId);
    const key = this.keysById.get(conversationId);
    const entry = key ? this.live(key) : undefined;
    if (entry?.history && entry.conversation?.id === conversationId) {
      // As the database reads them: after the context reset (a turn begun before a `!wack` ends after
      // it), and each once (a load may have read the rows after their commit, before this call).
      const known = new Set(entry.history.map((row) => row.id));
      const resetAt = entry.conversation.contextResetAt?.getTime();
      const fresh = rows.filter((row) => !known.has(row.id) && row.status !== 'failed' && (resetAt === undefined || row.createdAt.getTime() > resetAt));
      entry.history = mergeNewestFirst(fresh.sort(newestFirst), entry.history, this.options.historyLimit);
    }
    await this.publish(conversationId);
  }

  /** A change to the conversation itself (reset, voice replies, deletion): dropped here and in every replica. */
  async changed(conversationId: string): Promise<void> {
    this.drop(conversationId);
    await this.publish(conversationId);
  }

  /** Drops everything here and in every replica (e.g. a user's messages were erased). */
  async changedAll(): Promise<void> {
    this.dropAll();
    await this.options.events?.publish(CONVERSATIONS_CHANGED_CHANNEL, `${this.origin} *`);
  }

  private async publish(conversationId: string): Promise<void> {
    await this.options.events?.publish(CONVERSATIONS_CHANGED_CHANNEL, `${this.origin} ${conversationId}`);
  }

  private live(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    // Least recently used goes first: a hit moves the entry to the end of the map's order.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry;
  }

  private put(key: string, entry: Entry): void {
    if (this.entries.size >= this.options.maxEntries) {
      const oldest = this.entries.entries().next().value;
      if (oldest) {
        this.entries.delete(oldest[0]);
        if (oldest[1].conversation) this.keysById.delete(oldest[1].conversation.id);
      }
    }
    this.entries.set(key, entry);
  }

  private staleHistory(conversationId: string): void {
    for (const running of this.historyLoads.get(conversationId) ?? []) running.stale = true;
  }

  private drop(conversationId: string): void {
    this.staleHistory(conversationId);
    for (const running of this.rowLoads) running.stale = true;
    const key = this.keysById.get(conversationId);
    if (key) {
      this.entries.delete(key);
      this.keysById.delete(conversationId);
    }
  }

  private dropAll(): void {
    for (const loads of this.historyLoads.values()) for (const running of loads) running.stale = true;
    for (const running of this.rowLoads) running.stale = true;
    this.entries.clear();
    this.keysById.clear();
  }
}

interface Load {
  stale: boolean;
}

/**
 * Two histories already newest first, merged into one of at most `limit` rows: a turn adds one or
 * two messages to a cached history of up to `historyLimit`, which sorting whole again on every turn
 * re-compared (issue 14).
 */
function mergeNewestFirst(left: HistoryRow[], right: HistoryRow[], limit: number): HistoryRow[] {
  const merged: HistoryRow[] = [];
  let l = 0;
  let r = 0;
  while (merged.length < limit && (l < left.length || r < right.length)) {
    if (r >= right.length || (l < left.length && newestFirst(left[l]!, right[r]!) <= 0)) merged.push(left[l++]!);
    else merged.push(right[r++]!);
  }
  return merged;
}

function newestFirst(left: HistoryRow, right: HistoryRow): number {
  const byTime = right.createdAt.getTime() - left.createdAt.getTime();
  if (byTime !== 0) return byTime;
  return right.id < left.id ? -1 : right.id > left.id ? 1 : 0;
}
