import type { EventLoopUtilization } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/infra/logging/logger.js';
import { createMemoryQueue, eventLoopBusyProbe, type BusyProbe } from '../../src/infra/queue/memory-queue.js';
import type { JobHandlers, JobQueue } from '../../src/infra/queue/index.js';

declare module '../../src/infra/queue/queue.js' {
  interface JobPayloads {
    'test.background': { name: string };
    'test.interactive': { name: string };
  }
}

/**
 * The in-process queue's budget for background jobs (memory formation, summaries): at most
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
  handlers: JobHandlers;
}

function recorder(): Recorder {
  const gates = new Map<string, ReturnType<typeof gate>>();
  const gateOf = (name: string) => {
    if (!gates.has(name)) gates.set(name, gate());
    return gates.get(name)!;
  };
  const state: Recorder = {
    started: [],
    running: new Set(),
    maxBackgroundAtOnce: 0,
    release: (name) => gateOf(name).open(),
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
  await queue.startConsuming(jobs.handlers, { concurrency: 4 });
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
