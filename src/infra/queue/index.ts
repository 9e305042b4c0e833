import type { Logger } from 'pino';
import { createBullmqQueue } from './bullmq-queue.js';
import { createMemoryQueue, eventLoopBusyProbe } from './memory-queue.js';
import type { JobQueue } from './queue.js';

export type { JobQueue, JobHandlers, JobName, JobPayloads, JobOutcome, EnqueueOptions, QueueStats } from './queue.js';

export { eventLoopBusyProbe, type BusyProbe, type MemoryQueueOptions } from './memory-queue.js';

/** The in-process queue's budget for background jobs (ignored with Redis: `npm run worker` runs them). */
export interface BackgroundJobSettings {
  concurrency: number;
  busyUtilization: number;
  maxDeferMs: number;
}

export function openJobQueue(redisUrl: string | undefined, logger: Logger, prefix?: string, background?: BackgroundJobSettings): JobQueue {
  if (redisUrl) return createBullmqQueue(redisUrl, logger, prefix);
  return createMemoryQueue(logger, {
    backgroundConcurrency: background?.concurrency ?? 1,
    busy: background && background.maxDeferMs > 0 && background.busyUtilization < 1 ? eventLoopBusyProbe(background.busyUtilization) : undefined,
    maxDeferMs: background?.maxDeferMs ?? 0,
  });
}
