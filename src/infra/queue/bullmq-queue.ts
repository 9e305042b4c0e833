import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, Worker, type ConnectionOptions, type Job, type WorkerOptions } from 'bullmq';
import type { Logger } from 'pino';
import type { BusyProbe } from './memory-queue.js';
import type { EnqueueOptions, JobHandlers, JobName, JobPayloads, JobQueue, QueueStats } from './queue.js';

/** Every job not enqueued as `background`, and every job enqueued before background jobs had a queue of their own. */
export const JOB_QUEUE_NAME = 'anima-jobs';
/** Jobs enqueued with `background: true` (memory formation, summaries), so a consumer can budget them apart. */
export const BACKGROUND_QUEUE_NAME = 'anima-background';
const DEFAULT_CONCURRENCY = 4;

function connectionFromUrl(url: string): ConnectionOptions {
  const parsed = new URL(url);
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 6379),
    username: parsed.username || undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db: parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0,
    tls: parsed.protocol === 'rediss:' ? {} : undefined,
    // BullMQ workers need blocking commands that never give up.
    maxRetriesPerRequest: null,
  };
}

export interface BullmqQueueOptions {
  /**
   * The budget for background jobs, applied when a consumer asks for it (`startConsuming(…, { background:
   * 'budgeted' })`, the server): at most `concurrency` at once, and each waits while `busy` says the process
   * is busy, for at most `maxDeferMs` after it was picked up. Default: 1 at once, never held back.
   */
  background?: { concurrency: number; busy?: BusyProbe | undefined; maxDeferMs: number };
  /** Tests: BullMQ's lock duration and stalled-job check (defaults 30 s / 30 s). */
  worker?: Pick<WorkerOptions, 'lockDuration' | 'stalledInterval'>;
}

/**
 * Waits while the process is busy, re-asking the probe every `windowMs`, for at most `maxDeferMs`;
 * returns at once when `stop` aborts (closing). Like the in-process queue, an undefined answer (still
 * measuring) means "ask again after the window".
 */
async function waitWhileBusy(busy: BusyProbe | undefined, maxDeferMs: number, stop: AbortSignal): Promise<void> {
  if (!busy || maxDeferMs <= 0) return;
  const pickedUpAt = performance.now();
  for (;;) {
    const waited = performance.now() - pickedUpAt;
    if (stop.aborted || waited >= maxDeferMs || busy.isBusy() === false) return;
    await sleep(Math.min(busy.windowMs, maxDeferMs - waited), undefined, { signal: stop }).catch(() => undefined);
  }
}

/**
 * BullMQ on Redis: jobs survive restarts and are shared by every worker process. Background jobs
 * (`background: true`) go to their own queue, `anima-background`, so that the server, when it consumes
 * (`RUN_WORKERS_IN_PROCESS=true`), runs them within the same budget as the in-process queue while the
 * worker process (`npm run worker`) runs them at its normal concurrency.
 */
export function createBullmqQueue(redisUrl: string, logger: Logger, prefix = 'anima', options: BullmqQueueOptions = {}): JobQueue {
  const connection = connectionFromUrl(redisUrl);
  const queue = new Queue(JOB_QUEUE_NAME, { connection, prefix });
  const backgroundQueue = new Queue(BACKGROUND_QUEUE_NAME, { connection, prefix });
  const queues = [queue, backgroundQueue];
  for (const each of queues) each.on('error', (error) => logger.warn({ err: error, queue: each.name }, 'job queue connection error'));
  const budget = { concurrency: Math.max(1, options.background?.concurrency ?? 1), busy: options.background?.busy, maxDeferMs: options.background?.maxDeferMs ?? 0 };
  const closing = new AbortController();
  let workers: Worker[] | undefined;

  const countJobs = async (...states: Array<'waiting' | 'active' | 'delayed' | 'failed' | 'completed' | 'prioritized'>) => {
    const counts = await Promise.all(queues.map((each) => each.getJobCounts(...states)));
    const total: Record<string, number> = {};
    for (const count of counts) for (const [state, value] of Object.entries(count)) total[state] = (total[state] ?? 0) + (value ?? 0);
    return total;
  };

  return {
    kind: 'bullmq',
    async enqueue<Name extends JobName>(name: Name, payload: JobPayloads[Name], enqueueOptions: EnqueueOptions = {}) {
      // A job id coalesces within its queue; a given job kind is always enqueued to the same one.
      await (enqueueOptions.background ? backgroundQueue : queue).add(name, payload, {
        jobId: enqueueOptions.jobId,
        delay: enqueueOptions.delayMs,
        attempts: enqueueOptions.attempts ?? 3,
        backoff: { type: 'exponential', delay: 500 },
        removeOnComplete: { count: 1000 },
        removeOnFail: { count: 5000 },
      });
    },
    async startConsuming(handlers: JobHandlers, consumeOptions) {
      if (workers) throw new Error('already consuming');
      const concurrency = consumeOptions?.concurrency ?? DEFAULT_CONCURRENCY;
      const budgeted = consumeOptions?.background === 'budgeted';
      // Both workers dispatch by job name, not by queue: jobs enqueued with `background: true` before
      // background jobs had their own queue still sit in anima-jobs under their names, and the main
      // worker runs them (unbudgeted, as they were then).
      const dispatch = async (job: Job) => {
        const handler = handlers[job.name as JobName] as
          | ((payload: unknown, context: { attempt: number; jobId: string }) => Promise<string>)
          | undefined;
        if (!handler) throw new Error(`No handler for job ${job.name}`);
        return handler(job.data, { attempt: job.attemptsMade + 1, jobId: job.id ?? '' });
      };
      // A budgeted background job waits inside the processor, so BullMQ counts it active and holds its
      // lock: the worker's lock manager renews the lock of every job whose processor is running (lock
      // duration 30 s, renewed at least every 15 s) however long it waits, and the wait is timers, never a busy
      // loop that could starve those renewals. BACKGROUND_JOB_MAX_DEFER_MS (2 s by default) is far
      // below the lock duration anyway. A test waits past a short lock duration to prove it.
      const budgetedBackground = async (job: Job) => {
        await waitWhileBusy(budget.busy, budget.maxDeferMs, closing.signal);
        return dispatch(job);
      };
      const started = [
        new Worker(JOB_QUEUE_NAME, dispatch, { connection, prefix, concurrency, ...options.worker }),
        new Worker(BACKGROUND_QUEUE_NAME, budgeted ? budgetedBackground : dispatch, {
          connection,
          prefix,
          concurrency: budgeted ? budget.concurrency : concurrency,
          ...options.worker,
        }),
      ];
      workers = started;
      for (const worker of started) {
        worker.on('failed', (job, error) => logger.warn({ err: error, job: job?.name, jobId: job?.id }, 'job failed'));
        worker.on('error', (error) => logger.warn({ err: error, queue: worker.name }, 'job worker error'));
      }
      await Promise.all(started.map((worker) => worker.waitUntilReady()));
    },
    async stats(): Promise<QueueStats> {
      const counts = await countJobs('waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized');
      return {
        waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
        active: counts.active ?? 0,
        delayed: counts.delayed ?? 0,
        failed: counts.failed ?? 0,
        completed: counts.completed ?? 0,
      };
    },
    async whenIdle(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const counts = await countJobs('waiting', 'active', 'delayed', 'prioritized');
        if (Object.values(counts).every((count) => count === 0)) return;
        if (Date.now() > deadline) throw new Error('queue did not become idle in time');
        await sleep(25);
      }
    },
    async ping() {
      // A cheap round trip through the same connection the jobs use.
      await queue.getJobCounts('waiting');
    },
    async close() {
      // Background jobs still waiting for a quiet moment run now; closing waits for running jobs.
      closing.abort();
      await Promise.all((workers ?? []).map((worker) => worker.close()));
      await Promise.all(queues.map((each) => each.close()));
    },
  };
}
