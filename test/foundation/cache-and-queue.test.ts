import { afterEach, describe, expect, it } from 'vitest';
import { openKeyValueBackend, type KeyValueBackend } from '../../src/infra/cache/index.js';
import { createLogger } from '../../src/infra/logging/logger.js';
import { openJobQueue, type JobQueue } from '../../src/infra/queue/index.js';
import { testRedisPrefix } from '../helpers/test-redis-prefix.js';

declare module '../../src/infra/queue/queue.js' {
  interface JobPayloads {
    'test.echo': { value: number; failTimes?: number };
  }
}

const redisUrl = process.env.TEST_REDIS_URL;
const variants: Array<[string, string | undefined]> = [['in-process', undefined], ...(redisUrl ? [['redis', redisUrl] as [string, string]] : [])];
const silent = createLogger('silent');

describe.each(variants)('cache, counters and events (%s)', (_name, url) => {
  let backend: KeyValueBackend | undefined;
  afterEach(async () => backend?.close());

  it('stores JSON values with expiry and deletes them', async () => {
    backend = await openKeyValueBackend(url, `${testRedisPrefix()}:`);
    await backend.cache.set('character:1', { name: 'Ada', traits: { curious: 0.9 } }, 60);
    expect(await backend.cache.get('character:1')).toEqual({ name: 'Ada', traits: { curious: 0.9 } });
    await backend.cache.delete('character:1');
    expect(await backend.cache.get('character:1')).toBeUndefined();
    await backend.cache.set('short', 1, 1);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await backend.cache.get('short')).toBeUndefined();
  });

  it('counts in fixed windows, atomically under concurrency', async () => {
    backend = await openKeyValueBackend(url, `${testRedisPrefix()}:`);
    const hits = await Promise.all(Array.from({ length: 50 }, () => backend!.counters.increment('user:1:minute', 60)));
    expect(hits.map((hit) => hit.count).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, index) => index + 1));
    expect(hits[0]!.resetInSeconds).toBeGreaterThan(58);
    expect((await backend.counters.increment('other', 60, 5)).count).toBe(5);
  });

  it('delivers published events to subscribers, and stops after unsubscribe', async () => {
    backend = await openKeyValueBackend(url, `${testRedisPrefix()}:`);
    const received: string[] = [];
    const unsubscribe = await backend.events.subscribe('characters.changed', (message) => received.push(message));
    await backend.events.publish('characters.changed', 'abc');
    await expect.poll(() => received).toEqual(['abc']);
    await unsubscribe();
    await backend.events.publish('characters.changed', 'def');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(received).toEqual(['abc']);
  });
});

describe.each(variants)('job queue (%s)', (_name, url) => {
  let queue: JobQueue | undefined;
  afterEach(async () => queue?.close());

  it('runs every job once, retries failures, and reports when idle', async () => {
    queue = openJobQueue(url, silent, testRedisPrefix());
    const seen: number[] = [];
    const attempts = new Map<number, number>();
    await queue.startConsuming({
      'test.echo': async (payload) => {
        const attempt = (attempts.get(payload.value) ?? 0) + 1;
        attempts.set(payload.value, attempt);
        if (attempt <= (payload.failTimes ?? 0)) throw new Error('transient');
        seen.push(payload.value);
        return 'success';
      },
    });
    for (let value = 0; value < 10; value += 1) await queue.enqueue('test.echo', { value, failTimes: value === 3 ? 1 : 0 });
    await expect.poll(() => seen.length, { timeout: 15_000 }).toBe(10);
    await queue.whenIdle(15_000);
    expect([...seen].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(attempts.get(3)).toBe(2);
    const stats = await queue.stats();
    expect(stats.waiting + stats.active).toBe(0);
  });

  it('coalesces jobs with the same id while one is pending', async () => {
    queue = openJobQueue(url, silent, testRedisPrefix());
    const seen: number[] = [];
    await queue.enqueue('test.echo', { value: 1 }, { jobId: 'conversation-1', delayMs: 200 });
    await queue.enqueue('test.echo', { value: 2 }, { jobId: 'conversation-1', delayMs: 200 });
    await queue.startConsuming({ 'test.echo': async (payload) => (seen.push(payload.value), 'success') });
    await new Promise((resolve) => setTimeout(resolve, 600));
    await queue.whenIdle(10_000);
    expect(seen).toEqual([1]);
  });
});
