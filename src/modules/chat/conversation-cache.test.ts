import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMemoryBackend } from '../../infra/cache/memory-backend.js';
import { ConversationCache, CONVERSATIONS_CHANGED_CHANNEL, type ConversationCacheOptions } from './conversation-cache.js';
import type { ConversationRow, HistoryRow } from './store.js';

const T0 = Date.UTC(2026, 0, 1);

function conversationRow(id: string, extra: Partial<ConversationRow> = {}): ConversationRow {
  return {
    id,
    characterId: 'character',
    userId: 'user',
    guildId: null,
    channelId: null,
    placeKey: 'dm:user',
    contextResetAt: null,
    lastSummarizedAt: null,
    voiceReplies: false,
    createdAt: new Date(T0),
    updatedAt: new Date(T0),
    ...extra,
  };
}

/** A stored message `offsetMs` after T0; ids are compared as strings, as the database compares uuids. */
function message(id: string, offsetMs: number, role: 'user' | 'assistant' = 'user'): HistoryRow {
  return { id, role, content: `text ${id}`, speakerUserId: null, speakerName: null, tokenCount: 1, status: 'complete', createdAt: new Date(T0 + offsetMs) };
}

/** The database's order: created_at desc, then id desc. */
function databaseOrder(rows: HistoryRow[]): HistoryRow[] {
  return [...rows].sort((left, right) => right.createdAt.getTime() - left.createdAt.getTime() || (right.id < left.id ? -1 : right.id > left.id ? 1 : 0));
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

const ids = (rows: HistoryRow[]) => rows.map((row) => row.id);

function makeCache(options: Partial<ConversationCacheOptions> = {}): ConversationCache {
  return new ConversationCache({ ttlMs: 60_000, maxEntries: 100, historyLimit: 10, ...options });
}

/** Fills the cache for `key` with conversation `id` and its history; returns the loaders' spies. */
async function prime(cache: ConversationCache, key: string, id: string, history: HistoryRow[], row: ConversationRow = conversationRow(id)) {
  const loadRow = vi.fn(async () => row);
  const loadHistory = vi.fn(async () => history);
  await cache.conversation(key, loadRow);
  await cache.history(key, id, loadHistory);
  return { loadRow, loadHistory };
}

describe('ConversationCache', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('serves the conversation and its history from memory once loaded', async () => {
    const cache = makeCache();
    const history = [message('b', 2), message('a', 1)];
    const { loadRow, loadHistory } = await prime(cache, 'k', 'c1', history);
    const again = vi.fn(async () => conversationRow('other'));
    const againHistory = vi.fn(async () => [] as HistoryRow[]);
    expect((await cache.conversation('k', again)).id).toBe('c1');
    expect(await cache.history('k', 'c1', againHistory)).toEqual(history);
    expect(loadRow).toHaveBeenCalledTimes(1);
    expect(loadHistory).toHaveBeenCalledTimes(1);
    expect(again).not.toHaveBeenCalled();
    expect(againHistory).not.toHaveBeenCalled();
  });

  it('does not serve a cached history for another conversation id at the same key', async () => {
    const cache = makeCache();
    await prime(cache, 'k', 'c1', [message('a', 1)]);
    const other = vi.fn(async () => [message('z', 5)]);
    expect(ids(await cache.history('k', 'c2', other))).toEqual(['z']);
    expect(other).toHaveBeenCalledTimes(1);
  });

  it('adds a turn’s messages in the database’s order (created_at desc, then id desc) and keeps the newest historyLimit', async () => {
    const cache = makeCache({ historyLimit: 5 });
    const loaded = [message('m3', 30, 'assistant'), message('m2', 20), message('m1', 10, 'assistant'), message('m0', 0)];
    await prime(cache, 'k', 'c1', loaded);
    // A shared channel: another member's turn began earlier and ends later; two rows share a millisecond.
    const added = [message('u5', 25), message('a5', 40, 'assistant'), message('x9', 30), message('x1', 30)];
    await cache.added('c1', added);
    const expected = databaseOrder([...loaded, ...added]).slice(0, 5);
    const reload = vi.fn(async () => [] as HistoryRow[]);
    const history = await cache.history('k', 'c1', reload);
    expect(reload).not.toHaveBeenCalled();
    expect(ids(history)).toEqual(ids(expected));
    expect(ids(history)).toEqual(['a5', 'x9', 'x1', 'm3', 'u5']);
  });

  it('does not count a message twice when a load already read it from the database', async () => {
    // A history load that ran after the turn's commit but finished before the turn called added().
    const cache = makeCache();
    const committed = [message('u1', 10), message('a1', 11, 'assistant')];
    await prime(cache, 'k', 'c1', databaseOrder([message('m0', 0), ...committed]));
    await cache.added('c1', committed);
    const history = await cache.history('k', 'c1', async () => []);
    expect(ids(history)).toEqual(['a1', 'u1', 'm0']);
  });

  it('leaves out added messages from before the conversation’s context reset, as the database read does', async () => {
    // A turn prepared before a `!wack` ends after it: its user message predates the reset.
    const cache = makeCache();
    const reset = conversationRow('c1', { contextResetAt: new Date(T0 + 100) });
    await prime(cache, 'k', 'c1', [], reset);
    await cache.added('c1', [message('u1', 90), message('a1', 110, 'assistant')]);
    expect(ids(await cache.history('k', 'c1', async () => []))).toEqual(['a1']);
  });

  it('does nothing to a conversation whose history was never read', async () => {
    const cache = makeCache();
    await cache.conversation('k', async () => conversationRow('c1'));
    await cache.added('c1', [message('u1', 1)]);
    const load = vi.fn(async () => [message('db', 1)]);
    expect(ids(await cache.history('k', 'c1', load))).toEqual(['db']);
    expect(load).toHaveBeenCalledTimes(1);
  });

  it('returns a history load that was running when messages were added, but does not keep it', async () => {
    const cache = makeCache();
    await cache.conversation('k', async () => conversationRow('c1'));
    const gate = deferred<HistoryRow[]>();
    const running = cache.history('k', 'c1', () => gate.promise);
    await cache.added('c1', [message('u1', 5)]);
    gate.resolve([message('old', 1)]);
    expect(ids(await running)).toEqual(['old']);
    const next = vi.fn(async () => [message('u1', 5), message('old', 1)]);
    expect(ids(await cache.history('k', 'c1', next))).toEqual(['u1', 'old']);
    expect(next).toHaveBeenCalledTimes(1);
    // That second load was kept.
    expect(ids(await cache.history('k', 'c1', async () => []))).toEqual(['u1', 'old']);
  });

  it('returns a history load that was running across changed() or changedAll(), but does not keep it', async () => {
    for (const change of ['changed', 'changedAll'] as const) {
      const cache = makeCache();
      await cache.conversation('k', async () => conversationRow('c1'));
      const gate = deferred<HistoryRow[]>();
      const running = cache.history('k', 'c1', () => gate.promise);
      // The conversation row is loaded again at once (a new turn) while the old history load still runs.
      if (change === 'changed') await cache.changed('c1');
      else await cache.changedAll();
      await cache.conversation('k', async () => conversationRow('c1', { contextResetAt: new Date(T0 + 50) }));
      gate.resolve([message('before-reset', 1)]);
      expect(ids(await running)).toEqual(['before-reset']);
      const next = vi.fn(async () => [] as HistoryRow[]);
      expect(await cache.history('k', 'c1', next)).toEqual([]);
      expect(next, change).toHaveBeenCalledTimes(1);
    }
  });

  it('returns a conversation row load that was running across a change, but does not keep it', async () => {
    for (const change of ['changed', 'changedAll'] as const) {
      const cache = makeCache();
      const gate = deferred<ConversationRow>();
      const running = cache.conversation('k', () => gate.promise);
      if (change === 'changed') await cache.changed('c1');
      else await cache.changedAll();
      gate.resolve(conversationRow('c1'));
      expect((await running).id).toBe('c1');
      const next = vi.fn(async () => conversationRow('c1', { voiceReplies: true }));
      expect((await cache.conversation('k', next)).voiceReplies).toBe(true);
      expect(next, change).toHaveBeenCalledTimes(1);
    }
  });

  it('drops a conversation on changed() and everything on changedAll()', async () => {
    const cache = makeCache();
    await prime(cache, 'k1', 'c1', [message('a', 1)]);
    await prime(cache, 'k2', 'c2', [message('b', 1)]);
    await cache.changed('c1');
    const reload1 = vi.fn(async () => conversationRow('c1'));
    const keep2 = vi.fn(async () => conversationRow('c2'));
    await cache.conversation('k1', reload1);
    await cache.conversation('k2', keep2);
    expect(reload1).toHaveBeenCalledTimes(1);
    expect(keep2).not.toHaveBeenCalled();

    await cache.changedAll();
    const reload2 = vi.fn(async () => conversationRow('c2'));
    await cache.conversation('k2', reload2);
    expect(reload2).toHaveBeenCalledTimes(1);
  });

  it('evicts the least recently used conversation beyond maxEntries', async () => {
    const cache = makeCache({ maxEntries: 2 });
    await prime(cache, 'k1', 'c1', [message('a', 1)]);
    await prime(cache, 'k2', 'c2', [message('b', 1)]);
    // A hit on k1 makes k2 the least recently used.
    const hit = vi.fn(async () => conversationRow('c1'));
    await cache.conversation('k1', hit);
    expect(hit).not.toHaveBeenCalled();
    await prime(cache, 'k3', 'c3', [message('c', 1)]);

    const k2 = vi.fn(async () => conversationRow('c2'));
    const k1 = vi.fn(async () => conversationRow('c1'));
    const k1History = vi.fn(async () => [] as HistoryRow[]);
    await cache.conversation('k1', k1);
    expect(ids(await cache.history('k1', 'c1', k1History))).toEqual(['a']);
    expect(k1).not.toHaveBeenCalled();
    expect(k1History).not.toHaveBeenCalled();
    await cache.conversation('k2', k2);
    expect(k2).toHaveBeenCalledTimes(1);
  });

  it('forgets an entry after ttlMs', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: T0 });
    const cache = makeCache({ ttlMs: 1_000 });
    await prime(cache, 'k', 'c1', [message('a', 1)]);
    vi.setSystemTime(T0 + 999);
    const early = vi.fn(async () => conversationRow('c1'));
    await cache.conversation('k', early);
    expect(early).not.toHaveBeenCalled();
    vi.setSystemTime(T0 + 1_000);
    const expired = vi.fn(async () => conversationRow('c1'));
    const expiredHistory = vi.fn(async () => [message('fresh', 2)]);
    await cache.conversation('k', expired);
    expect(ids(await cache.history('k', 'c1', expiredHistory))).toEqual(['fresh']);
    expect(expired).toHaveBeenCalledTimes(1);
    expect(expiredHistory).toHaveBeenCalledTimes(1);
  });

  describe('between replicas (one in-process bus for both)', () => {
    const setup = async () => {
      const backend = createMemoryBackend();
      const published: string[] = [];
      await backend.events.subscribe(CONVERSATIONS_CHANGED_CHANNEL, (text) => published.push(text));
      const first = makeCache({ events: backend.events });
      const second = makeCache({ events: backend.events });
      await first.start();
      await second.start();
      return { backend, published, first, second };
    };

    it('drops the entry when another replica reports a change, and keeps it on its own reports', async () => {
      const { published, first, second } = await setup();
      await prime(first, 'k', 'c1', [message('m0', 0)]);
      await prime(second, 'k', 'c1', [message('m0', 0)]);

      // The first replica's turn: its own report comes back to it and is ignored (it keeps its updated
      // copy); the second replica drops its copy.
      await first.added('c1', [message('u1', 10), message('a1', 11, 'assistant')]);
      expect(published).toHaveLength(1);
      expect(published[0]).toMatch(/^\S+ c1$/);
      const firstReload = vi.fn(async () => [] as HistoryRow[]);
      expect(ids(await first.history('k', 'c1', firstReload))).toEqual(['a1', 'u1', 'm0']);
      expect(firstReload).not.toHaveBeenCalled();
      const secondRow = vi.fn(async () => conversationRow('c1'));
      const secondReload = vi.fn(async () => [message('a1', 11, 'assistant'), message('u1', 10), message('m0', 0)]);
      await second.conversation('k', secondRow);
      expect(ids(await second.history('k', 'c1', secondReload))).toEqual(['a1', 'u1', 'm0']);
      expect(secondRow).toHaveBeenCalledTimes(1);
      expect(secondReload).toHaveBeenCalledTimes(1);

      // A reset on the second replica: the first drops its copy, the second keeps nothing either.
      await second.changed('c1');
      const afterReset = vi.fn(async () => conversationRow('c1', { contextResetAt: new Date(T0 + 20) }));
      expect((await first.conversation('k', afterReset)).contextResetAt).toEqual(new Date(T0 + 20));
      expect(afterReset).toHaveBeenCalledTimes(1);
    });

    it('drops everything when another replica reports `*`, and stops listening when closed', async () => {
      const { backend, published, first, second } = await setup();
      await prime(first, 'k1', 'c1', [message('a', 1)]);
      await prime(first, 'k2', 'c2', [message('b', 1)]);
      await second.changedAll();
      expect(published.at(-1)).toMatch(/^\S+ \*$/);
      const reload1 = vi.fn(async () => conversationRow('c1'));
      const reload2 = vi.fn(async () => conversationRow('c2'));
      await first.conversation('k1', reload1);
      await first.conversation('k2', reload2);
      expect(reload1).toHaveBeenCalledTimes(1);
      expect(reload2).toHaveBeenCalledTimes(1);

      await first.close();
      await prime(first, 'k1', 'c1', [message('a', 1)]);
      await backend.events.publish(CONVERSATIONS_CHANGED_CHANNEL, 'someone-else *');
      const afterClose = vi.fn(async () => conversationRow('c1'));
      await first.conversation('k1', afterClose);
      expect(afterClose).not.toHaveBeenCalled();
    });

    it('ignores malformed messages', async () => {
      const { backend, first } = await setup();
      await prime(first, 'k', 'c1', [message('a', 1)]);
      await backend.events.publish(CONVERSATIONS_CHANGED_CHANNEL, 'lonely-origin');
      await backend.events.publish(CONVERSATIONS_CHANGED_CHANNEL, '');
      const load = vi.fn(async () => conversationRow('c1'));
      await first.conversation('k', load);
      expect(load).not.toHaveBeenCalled();
    });
  });
});
