import type { Logger } from 'pino';
import { createBullmqQueue } from './bullmq-queue.js';
import { createMemoryQueue, eventLoopBusyProbe } from './memory-queue.js';
import type { JobQueue } from './queue.js';

export type { JobQueue, JobHandlers, JobName, JobPayloads, JobOutcome, EnqueueOptions, ConsumeOptions, QueueStats } from './queue.js';

export { eventLoopBusyProbe, type BusyProbe, type MemoryQueueOptions } from './memory-queue.js';

/**
 * The budget for background jobs run inside the server (BACKGROUND_JOB_*): the in-process queue's, and
 * BullMQ's when the server consumes (RUN_WORKERS_IN_PROCESS=true, `startConsuming(…, { background:
 * 'budgeted' })`). The worker process (`npm run worker`) runs them without it.
 */
export interface BackgroundJobSettings {
  concurrency: number;
  busyUtilization: number;
  maxDeferMs: number;
}

export function openJobQueue(redisUrl: string | undefined, logger: Logger, prefix?: string, background?: BackgroundJobSettings): JobQueue {
  const budget = {
    concurrency: background?.concurrency ?? 1,
    busy: background && background.maxDeferMs > 0 && background.busyUtilization < 1 ? eventLoopBusyProbe(background.busyUtilization) : undefined,
    maxDeferMs: background?.maxDeferMs ?? 0,
  };
  if (redisUrl) return createBullmqQueue(redisUrl, logger, prefix, { background: budget });
  return createMemoryQueue(logger, { backgroundConcurrency: budget.concurrency, busy: budget.busy, maxDeferMs: budget.maxDeferMs });
}
