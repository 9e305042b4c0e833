import type { Logger } from 'pino';
import { createBullmqQueue } from './bullmq-queue.js';
import { createMemoryQueue } from './memory-queue.js';
import type { JobQueue } from './queue.js';

export type { JobQueue, JobHandlers, JobName, JobPayloads, JobOutcome, EnqueueOptions, QueueStats } from './queue.js';

export function openJobQueue(redisUrl: string | undefined, logger: Logger, prefix?: string): JobQueue {
  return redisUrl ? createBullmqQueue(redisUrl, logger, prefix) : createMemoryQueue(logger);
}
