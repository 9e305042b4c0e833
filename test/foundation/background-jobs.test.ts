import type { EventLoopUtilization } from 'node:perf_hooks';
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/infra/logging/logger.js';
import { createBullmqQueue } from '../../src/infra/queue/bullmq-queue.js';
import { createMemoryQueue, eventLoopBusyProbe, type BusyProbe } from '../../src/infra/queue/memory-queue.js';
import { openJobQueue, type ConsumeOptions, type JobHandlers, type JobQueue } from '../../src/infra/queue/index.js';
import { testRedisPrefix } from '../helpers/test-redis-prefix.js';

declare module '../../src/infra/queue/queue.js' {
  interface JobPayloads {
    'test.background': { name: string };
    'test.interactive': { name: string };
  }
}

/**
 * The budget for background jobs (memory formation, summaries) run inside the server, on the
 * in-process queue and on BullMQ (when the server consumes with Redis): at most
 * BACKGROUND_JOB_CONCURRENCY at once, held back while the process is busy but never for longer
 * than BACKGROUND_JOB_MAX_DEFER_MS, and never in the way of other jobs. No timing assertions: every
 * job is held open by a promise the test releases.
 */

const silent = createLogger('silent');

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

interface Recorder {
  started: string[];
  running: Set<string>;
  maxBackgroundAtOnce: number;
  release(name: string): void;
  /** Lets every job finish, now and later (so a failed test can still close its queue). */
  releaseAll(): void;
  handlers: JobHandlers;
}

function recorder(): Recorder {
  const gates = new Map<string, ReturnType<typeof gate>>();
  let allReleased = false;
  const gateOf = (name: string) => {
    if (!gates.has(name)) gates.set(name, gate());
    if (allReleased) gates.get(name)!.open();
    return gates.get(name)!;
  };
  const state: Recorder = {
    started: [],
    running: new Set(),
    maxBackgroundAtOnce: 0,
    release: (name) => gateOf(name).open(),
    releaseAll: () => {
      allReleased = true;
      for (const each of gates.values()) each.open();
    },
    handlers: {},
  };
  const handler = (background: boolean) => async ({ name }: { name: string }) => {
    state.started.push(name);
    state.running.add(name);
    if (background) state.maxBackgroundAtOnce = Math.max(state.maxBackgroundAtOnce, [...state.running].filter((running) => running.startsWith('bg')).length);
    await gateOf(name).promise;
    state.running.delete(name);
    return 'success' as const;
  };
  state.handlers = { 'test.background': handler(true), 'test.interactive': handler(false) };
  return state;
}

async function start(queue: JobQueue, jobs: Recorder): Promise<void> {
  await queue.startConsuming(jobs.handlers, { concurrency: 4, background: 'budgeted' });
}

describe('background job budget (in-process queue)', () => {
  it('with concurrency 1, two background jobs never overlap; other jobs do not wait for them', async () => {
    const queue = createMemoryQueue(silent, { backgroundConcurrency: 1 });
    const jobs = recorder();
    await start(queue, jobs);
    await queue.enqueue('test.background', { name: 'bg-1' }, { background: true });
    await queue.enqueue('test.background', { name: 'bg-2' }, { background: true });
    await queue.enqueue('test.interactive', { name: 'image' });
    await expect.poll(() => jobs.started).toEqual(['bg-1', 'image']);
    expect((await queue.stats()).waiting).toBe(1);
    jobs.release('image');
    jobs.release('bg-1');
    await expect.poll(() => jobs.started).toEqual(['bg-1', 'image', 'bg-2']);
    jobs.release('bg-2');
    await queue.whenIdle(5000);
    expect(jobs.maxBackgroundAtOnce).toBe(1);
    await queue.close();
  });

  it('a larger budget runs that many at once', async () => {
    const queue = createMemoryQueue(silent, { backgroundConcurrency: 2 });
    const jobs = recorder();
    await start(queue, jobs);
    for (const name of ['bg-1', 'bg-2', 'bg-3']) await queue.enqueue('test.background', { name }, { background: true });
    await expect.poll(() => jobs.started).toEqual(['bg-1', 'bg-2']);
    for (const name of ['bg-1', 'bg-2', 'bg-3']) jobs.release(name);
    await queue.whenIdle(5000);
    expect(jobs.maxBackgroundAtOnce).toBe(2);
    await queue.close();
  });

  it('holds background jobs back while the process is busy and runs them when it is not', async () => {
    let busy = true;
    let asked = 0;
    const probe: BusyProbe = {
      windowMs: 5,
      isBusy: () => {
        asked += 1;
        return busy;
      },
    };
    const queue = createMemoryQueue(silent, { backgroundConcurrency: 1, busy: probe, maxDeferMs: 600_000 });
    const jobs = recorder();
    await start(queue, jobs);
    await queue.enqueue('test.background', { name: 'bg-1' }, { background: true });
    await queue.enqueue('test.interactive', { name: 'image' });
    // The image runs at once; the background job waits through several busy answers.
    await expect.poll(() => jobs.started).toEqual(['image']);
    await expect.poll(() => asked).toBeGreaterThanOrEqual(3);
    expect(jobs.started).toEqual(['image']);
    busy = false;
    await expect.poll(() => jobs.started).toEqual(['image', 'bg-1']);
    jobs.release('image');
    jobs.release('bg-1');
    await queue.whenIdle(5000);
    await queue.close();
  });

  it('never holds a background job back longer than the bound', async () => {
    const probe: BusyProbe = { windowMs: 5, isBusy: () => true };
    const queue = createMemoryQueue(silent, { backgroundConcurrency: 1, busy: probe, maxDeferMs: 20 });
    const jobs = recorder();
    await start(queue, jobs);
    await queue.enqueue('test.background', { name: 'bg-1' }, { background: true });
    await expect.poll(() => jobs.started, { timeout: 5000 }).toEqual(['bg-1']);
    jobs.release('bg-1');
    await queue.whenIdle(5000);
    await queue.close();
  });

  it('the event-loop probe measures a window before it answers, and starts a new one after a quiet spell', () => {
    // A scripted clock and loop: `active` of `idle + active` milliseconds were spent running code.
    let now = 0;
    let active = 0;
    let idle = 0;
    const source = {
      now: () => now,
      eventLoopUtilization: (current?: EventLoopUtilization, previous?: EventLoopUtilization): EventLoopUtilization => {
        if (current && previous) {
          const spent = { idle: current.idle - previous.idle, active: current.active - previous.active };
          return { ...spent, utilization: spent.active / (spent.active + spent.idle) };
        }
        return { idle, active, utilization: active / (active + idle || 1) };
      },
    };
    const pass = (busyMs: number, idleMs: number) => {
      now += busyMs + idleMs;
      active += busyMs;
      idle += idleMs;
    };
    const probe = eventLoopBusyProbe(0.5, 100, source);
    expect(probe.isBusy()).toBeUndefined();
    pass(40, 20);
    expect(probe.isBusy()).toBeUndefined();
    pass(50, 10);
    expect(probe.isBusy()).toBe(true);
    pass(10, 110);
    expect(probe.isBusy()).toBe(false);
    // After a long quiet spell the old mark says nothing about now: measure again.
    pass(0, 60_000);
    expect(probe.isBusy()).toBeUndefined();
    pass(100, 20);
    expect(probe.isBusy()).toBe(true);
  });

  it('the event-loop probe sees a blocked loop as busy', async () => {
    const nextIteration = () => new Promise((resolve) => setImmediate(resolve));
    const probe = eventLoopBusyProbe(0.5, 20);
    expect(probe.isBusy()).toBeUndefined();
    await nextIteration();
    const until = performance.now() + 40;
    while (performance.now() < until) {
      // the loop runs code for the whole window
    }
    // Utilisation is booked when a loop iteration ends.
    await nextIteration();
    expect(probe.isBusy()).toBe(true);
  });
});

/** A probe that counts its questions; `busy` is what it answers. */
function scriptedProbe(busy: boolean): BusyProbe & { busy: boolean; asked: number } {
  const probe = {
    busy,
    asked: 0,
    windowMs: 5,
    isBusy: () => {
      probe.asked += 1;
      return probe.busy;
    },
  };
  return probe;
}

const redisUrl = process.env.TEST_REDIS_URL;

describe.skipIf(!redisUrl)('background job budget (BullMQ, consumed inside the server)', () => {
  // BullMQ picks jobs up over Redis: polls get more than their default second on a loaded machine.
  const within = { timeout: 10_000 };
  const opened: Array<{ close(): Promise<void> }> = [];
  const recorders: Recorder[] = [];
  const prefix = () => testRedisPrefix();
  const track = <Closable extends { close(): Promise<void> }>(closable: Closable): Closable => (opened.push(closable), closable);
  const record = () => {
    const jobs = recorder();
    recorders.push(jobs);
    return jobs;
  };
  afterEach(async () => {
    for (const jobs of recorders.splice(0)) jobs.releaseAll();
    for (const closable of opened.splice(0).reverse()) await closable.close();
  });
  const running = (jobs: Recorder) => [...jobs.running].sort();
  /** A BullMQ queue with these options, consuming into a fresh recorder (budgeted, at concurrency 4, unless told). */
  const consuming = async (options: Parameters<typeof createBullmqQueue>[3], consume: ConsumeOptions = { concurrency: 4, background: 'budgeted' }, keyPrefix = prefix()) => {
    const queue = track(createBullmqQueue(redisUrl!, silent, keyPrefix, options));
    const jobs = record();
    await queue.startConsuming(jobs.handlers, consume);
    return { queue, jobs };
  };

  it('with background concurrency 1, two background jobs never overlap while an interactive job runs alongside', async () => {
    const { queue, jobs } = await consuming({ background: { concurrency: 1, maxDeferMs: 0 } });
    await queue.enqueue('test.background', { name: 'bg-1' }, { background: true });
    await queue.enqueue('test.background', { name: 'bg-2' }, { background: true });
    await queue.enqueue('test.interactive', { name: 'image' });
    await expect.poll(() => running(jobs), within).toEqual(['bg-1', 'image']);
    // bg-2 waits in the background queue; stats() and whenIdle() see it there.
    expect(await queue.stats()).toMatchObject({ waiting: 1, active: 2 });
    jobs.release('image');
    await expect.poll(async () => (await queue.stats()).active, within).toBe(1);
    expect(running(jobs)).toEqual(['bg-1']);
    await expect(queue.whenIdle(200)).rejects.toThrow('idle');
    jobs.release('bg-1');
    await expect.poll(() => running(jobs), within).toEqual(['bg-2']);
    jobs.release('bg-2');
    await queue.whenIdle(10_000);
    expect([...jobs.started].sort()).toEqual(['bg-1', 'bg-2', 'image']);
    expect(jobs.maxBackgroundAtOnce).toBe(1);
    expect(await queue.stats()).toMatchObject({ waiting: 0, active: 0, completed: 3, failed: 0 });
  });

  /** Three background jobs: two run at once, the third waits until they are released. */
  async function twoOfThreeAtOnce(queue: JobQueue, jobs: ReturnType<typeof record>): Promise<void> {
    for (const name of ['bg-1', 'bg-2', 'bg-3']) await queue.enqueue('test.background', { name }, { background: true });
    await expect.poll(() => jobs.running.size, within).toBe(2);
    expect(await queue.stats()).toMatchObject({ waiting: 1, active: 2 });
    for (const name of ['bg-1', 'bg-2', 'bg-3']) jobs.release(name);
    await queue.whenIdle(10_000);
    expect(jobs.started).toHaveLength(3);
    expect(jobs.maxBackgroundAtOnce).toBe(2);
  }

  it('openJobQueue hands BullMQ the budget: with BACKGROUND_JOB_CONCURRENCY 2, two run at once and a third waits', async () => {
    const queue = track(openJobQueue(redisUrl, silent, prefix(), { concurrency: 2, busyUtilization: 1, maxDeferMs: 0 }));
    expect(queue.kind).toBe('bullmq');
    const jobs = record();
    await queue.startConsuming(jobs.handlers, { concurrency: 4, background: 'budgeted' });
    await twoOfThreeAtOnce(queue, jobs);
  });

  it('holds a background job back while the process is busy and runs it when it is not', async () => {
    const probe = scriptedProbe(true);
    const { queue, jobs } = await consuming({ background: { concurrency: 1, busy: probe, maxDeferMs: 600_000 } });
    await queue.enqueue('test.background', { name: 'bg-1' }, { background: true });
    await queue.enqueue('test.interactive', { name: 'image' });
    // The image runs at once; the background job, picked up (active), waits through several busy answers.
    await expect.poll(() => jobs.started, within).toEqual(['image']);
    await expect.poll(() => probe.asked, within).toBeGreaterThanOrEqual(3);
    expect(jobs.started).toEqual(['image']);
    expect(await queue.stats()).toMatchObject({ waiting: 0, active: 2 });
    probe.busy = false;
    await expect.poll(() => jobs.started, within).toEqual(['image', 'bg-1']);
    jobs.release('image');
    jobs.release('bg-1');
    await queue.whenIdle(10_000);
  });

  it('never holds a background job back longer than the bound', async () => {
    const probe = scriptedProbe(true);
    const { queue, jobs } = await consuming({ background: { concurrency: 1, busy: probe, maxDeferMs: 50 } });
    await queue.enqueue('test.background', { name: 'bg-1' }, { background: true });
    await expect.poll(() => jobs.started, within).toEqual(['bg-1']);
    // It was held back (the probe was asked and said busy every time), then ran anyway.
    expect(probe.asked).toBeGreaterThan(0);
    jobs.release('bg-1');
    await queue.whenIdle(10_000);
  });

  it('a background job waiting longer than the lock duration keeps its lock and runs once', async () => {
    const lockDuration = 1000;
    const probe = scriptedProbe(true);
    const { queue, jobs } = await consuming({
      background: { concurrency: 1, busy: probe, maxDeferMs: 600_000 },
      // Stalled jobs (lock expired) are looked for twice a lock duration: a lost lock shows within the wait.
      worker: { lockDuration, stalledInterval: lockDuration / 2 },
    });
    await queue.enqueue('test.background', { name: 'bg-1' }, { background: true });
    await expect.poll(() => probe.asked, within).toBeGreaterThan(0);
    const heldSince = Date.now();
    await expect.poll(() => Date.now() - heldSince, { timeout: 20_000, interval: 100 }).toBeGreaterThanOrEqual(3 * lockDuration);
    expect(jobs.started).toEqual([]);
    probe.busy = false;
    await expect.poll(() => jobs.started, within).toEqual(['bg-1']);
    jobs.release('bg-1');
    await queue.whenIdle(10_000);
    // A lost lock would have put the job back to be run a second time (or failed it as stalled).
    expect(jobs.started).toEqual(['bg-1']);
    expect(await queue.stats()).toMatchObject({ completed: 1, failed: 0 });
  });

  it('without the budget (the worker process) background jobs run at the normal concurrency, never held back', async () => {
    // Budget 1 and a probe that is always busy with no bound: budgeted, nothing would run.
    const probe = scriptedProbe(true);
    const { queue, jobs } = await consuming({ background: { concurrency: 1, busy: probe, maxDeferMs: 600_000 } }, { concurrency: 2, background: 'unbudgeted' });
    await twoOfThreeAtOnce(queue, jobs);
    expect(probe.asked).toBe(0);
  });

  it('still runs background jobs enqueued to anima-jobs before they had a queue of their own', async () => {
    const keyPrefix = prefix();
    const url = new URL(redisUrl!);
    const before = track(new Queue('anima-jobs', { connection: { host: url.hostname, port: Number(url.port || 6379), db: Number(url.pathname.slice(1) || 0) }, prefix: keyPrefix }));
    await before.add('test.background', { name: 'bg-old' });
    const { queue, jobs } = await consuming({ background: { concurrency: 1, maxDeferMs: 0 } }, { concurrency: 4, background: 'budgeted' }, keyPrefix);
    await expect.poll(() => jobs.started, within).toEqual(['bg-old']);
    jobs.release('bg-old');
    await queue.whenIdle(10_000);
  });
});
