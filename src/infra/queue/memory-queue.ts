import { randomUUID } from 'node:crypto';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { EnqueueOptions, JobHandlers, JobName, JobPayloads, JobQueue, QueueStats } from './queue.js';

interface PendingJob {
  id: string;
  name: JobName;
  payload: unknown;
  attempt: number;
  maxAttempts: number;
  background: boolean;
  /** When it became ready to run (performance.now()), for the bound on deferral. */
  readyAt?: number;
}

/**
 * Whether the process is busy serving requests: true, false, or undefined while it is still
 * measuring (the queue asks again after `windowMs`).
 */
export interface BusyProbe {
  isBusy(): boolean | undefined;
  windowMs: number;
}

/**
 * Event-loop utilisation (the share of time the loop was running code rather than waiting) over
 * the last window: no timer of its own, two cheap reads per decision. A first question after a
 * quiet spell starts a window and answers after it, so an old idle hour never hides a busy second.
 */
export function eventLoopBusyProbe(
  threshold: number,
  windowMs = 100,
  /** Tests: another source of time and utilisation. */
  source: { now(): number; eventLoopUtilization(current?: EventLoopUtilization, previous?: EventLoopUtilization): EventLoopUtilization } = performance,
): BusyProbe {
  let mark: { at: number; utilization: EventLoopUtilization } | undefined;
  return {
    windowMs,
    isBusy() {
      const now = source.now();
      if (!mark || now - mark.at > windowMs * 10) {
        mark = { at: now, utilization: source.eventLoopUtilization() };
        return undefined;
      }
      if (now - mark.at < windowMs) return undefined;
      const current = source.eventLoopUtilization();
      const busy = source.eventLoopUtilization(current, mark.utilization).utilization >= threshold;
      mark = { at: now, utilization: current };
      return busy;
    },
  };
}

export interface MemoryQueueOptions {
  /** Jobs at once, all kinds (default 2; startConsuming may change it). */
  concurrency?: number;
  /** Background jobs (enqueued with `background: true`) at once, within `concurrency` (default 1). */
  backgroundConcurrency?: number;
  /** Background jobs wait while this says the process is busy... */
  busy?: BusyProbe | undefined;
  /** ...but never longer than this after they became ready (0: never deferred). */
  maxDeferMs?: number;
}

/**
 * In-process queue for the embedded default: bounded concurrency, retries with backoff. Background
 * jobs (memory formation, summaries) have their own smaller budget and are held back while the
 * event loop is busy (turns first), for at most `maxDeferMs`; other jobs (an image a request waits
 * for) never queue behind them.
 */
export function createMemoryQueue(logger: Logger, options: MemoryQueueOptions = {}): JobQueue {
  const waiting: PendingJob[] = [];
  const pendingIds = new Set<string>();
  const timers = new Set<NodeJS.Timeout>();
  let handlers: JobHandlers | undefined;
  let concurrency = options.concurrency ?? 2;
  const backgroundConcurrency = Math.max(1, options.backgroundConcurrency ?? 1);
  const maxDeferMs = options.busy ? Math.max(0, options.maxDeferMs ?? 0) : 0;
  let active = 0;
  let activeBackground = 0;
  let recheck: NodeJS.Timeout | undefined;
  let completed = 0;
  let failed = 0;
  let closed = false;
  const idleWaiters: Array<() => void> = [];

  const isIdle = () => waiting.length === 0 && active === 0 && timers.size === 0;
  const notifyIdle = () => {
    if (!isIdle()) return;
    for (const resolve of idleWaiters.splice(0)) resolve();
  };

  /** May a background job start now? Undefined: not yet, ask again after the probe's window. */
  const backgroundMayStart = (job: PendingJob): boolean | undefined => {
    if (activeBackground >= backgroundConcurrency) return false;
    if (maxDeferMs === 0 || !options.busy) return true;
    if (performance.now() - (job.readyAt ?? 0) >= maxDeferMs) return true;
    const busy = options.busy.isBusy();
    return busy === false ? true : undefined;
  };

  const pump = () => {
    let index = 0;
    let recheckWanted = false;
    while (!closed && handlers && active < concurrency && index < waiting.length) {
      const job = waiting[index]!;
      if (job.background) {
        const may = backgroundMayStart(job);
        if (may !== true) {
          recheckWanted ||= may === undefined;
          index += 1;
          continue;
        }
      }
      waiting.splice(index, 1);
      active += 1;
      if (job.background) activeBackground += 1;
      void run(job);
    }
    if (recheckWanted && !recheck && !closed) {
      recheck = setTimeout(() => {
        recheck = undefined;
        pump();
      }, options.busy?.windowMs ?? 100);
      recheck.unref();
    }
    notifyIdle();
  };

  const schedule = (job: PendingJob, delayMs: number) => {
    if (delayMs <= 0) {
      waiting.push({ ...job, readyAt: performance.now() });
      pump();
      return;
    }
    const timer = setTimeout(() => {
      timers.delete(timer);
      waiting.push({ ...job, readyAt: performance.now() });
      pump();
    }, delayMs);
    timer.unref();
    timers.add(timer);
  };

  const run = async (job: PendingJob) => {
    const handler = handlers?.[job.name] as ((payload: unknown, context: { attempt: number; jobId: string }) => Promise<string>) | undefined;
    try {
      if (!handler) throw new Error(`No handler for job ${job.name}`);
      const outcome = await handler(job.payload, { attempt: job.attempt, jobId: job.id });
      completed += 1;
      pendingIds.delete(job.id);
      logger.debug({ job: job.name, jobId: job.id, outcome }, 'job finished');
    } catch (error) {
      if (job.attempt < job.maxAttempts && !closed) {
        logger.warn({ err: error, job: job.name, attempt: job.attempt }, 'job failed; retrying');
        schedule({ ...job, attempt: job.attempt + 1 }, Math.min(30_000, 500 * 2 ** (job.attempt - 1)));
      } else {
        failed += 1;
        pendingIds.delete(job.id);
        logger.error({ err: error, job: job.name, jobId: job.id }, 'job failed for good');
      }
    } finally {
      active -= 1;
      if (job.background) activeBackground -= 1;
      pump();
    }
  };

  return {
    kind: 'memory',
    async enqueue<Name extends JobName>(name: Name, payload: JobPayloads[Name], enqueueOptions: EnqueueOptions = {}) {
      if (closed) throw new Error('queue is closed');
      const id = enqueueOptions.jobId ?? randomUUID();
      if (enqueueOptions.jobId && pendingIds.has(id)) return;
      pendingIds.add(id);
      schedule({ id, name, payload, attempt: 1, maxAttempts: enqueueOptions.attempts ?? 3, background: enqueueOptions.background === true }, enqueueOptions.delayMs ?? 0);
    },
    // `consumeOptions.background` is not asked: this queue only ever runs inside the server, always budgeted.
    async startConsuming(newHandlers, consumeOptions) {
      handlers = { ...handlers, ...newHandlers };
      concurrency = consumeOptions?.concurrency ?? concurrency;
      pump();
    },
    async stats(): Promise<QueueStats> {
      return { waiting: waiting.length, active, delayed: timers.size, failed, completed };
    },
    whenIdle(timeoutMs = 30_000) {
      if (isIdle()) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('queue did not become idle in time')), timeoutMs);
        idleWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
    ping: async () => undefined,
    async close() {
      closed = true;
      if (recheck) clearTimeout(recheck);
      recheck = undefined;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      waiting.length = 0;
      const deadline = Date.now() + 10_000;
      while (active > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      notifyIdle();
    },
  };
}
