import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { EnqueueOptions, JobHandlers, JobName, JobPayloads, JobQueue, QueueStats } from './queue.js';

interface PendingJob {
  id: string;
  name: JobName;
  payload: unknown;
  attempt: number;
  maxAttempts: number;
}

/** In-process queue for the embedded default: bounded concurrency, retries with backoff. */
export function createMemoryQueue(logger: Logger): JobQueue {
  const waiting: PendingJob[] = [];
  const pendingIds = new Set<string>();
  const timers = new Set<NodeJS.Timeout>();
  let handlers: JobHandlers | undefined;
  let concurrency = 2;
  let active = 0;
  let completed = 0;
  let failed = 0;
  let closed = false;
  const idleWaiters: Array<() => void> = [];

  const isIdle = () => waiting.length === 0 && active === 0 && timers.size === 0;
  const notifyIdle = () => {
    if (!isIdle()) return;
    for (const resolve of idleWaiters.splice(0)) resolve();
  };

  const pump = () => {
    while (!closed && handlers && active < concurrency && waiting.length > 0) {
      const job = waiting.shift()!;
      active += 1;
      void run(job);
    }
    notifyIdle();
  };

  const schedule = (job: PendingJob, delayMs: number) => {
    if (delayMs <= 0) {
      waiting.push(job);
      pump();
      return;
    }
    const timer = setTimeout(() => {
      timers.delete(timer);
      waiting.push(job);
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
      pump();
    }
  };

  return {
    kind: 'memory',
    async enqueue<Name extends JobName>(name: Name, payload: JobPayloads[Name], options: EnqueueOptions = {}) {
      if (closed) throw new Error('queue is closed');
      const id = options.jobId ?? randomUUID();
      if (options.jobId && pendingIds.has(id)) return;
      pendingIds.add(id);
      schedule({ id, name, payload, attempt: 1, maxAttempts: options.attempts ?? 3 }, options.delayMs ?? 0);
    },
    async startConsuming(newHandlers, options) {
      handlers = { ...handlers, ...newHandlers };
      concurrency = options?.concurrency ?? concurrency;
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
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      waiting.length = 0;
      const deadline = Date.now() + 10_000;
      while (active > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      notifyIdle();
    },
  };
}
