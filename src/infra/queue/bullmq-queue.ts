import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import type { Logger } from 'pino';
import type { EnqueueOptions, JobHandlers, JobName, JobPayloads, JobQueue, QueueStats } from './queue.js';

const QUEUE_NAME = 'anima-jobs';

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

/** BullMQ on Redis: jobs survive restarts and are shared by every worker process. */
export function createBullmqQueue(redisUrl: string, logger: Logger, prefix = 'anima'): JobQueue {
  const connection = connectionFromUrl(redisUrl);
  const queue = new Queue(QUEUE_NAME, { connection, prefix });
  queue.on('error', (error) => logger.warn({ err: error }, 'job queue connection error'));
  let worker: Worker | undefined;

  return {
    kind: 'bullmq',
    async enqueue<Name extends JobName>(name: Name, payload: JobPayloads[Name], options: EnqueueOptions = {}) {
      await queue.add(name, payload, {
        jobId: options.jobId,
        delay: options.delayMs,
        attempts: options.attempts ?? 3,
        backoff: { type: 'exponential', delay: 500 },
        removeOnComplete: { count: 1000 },
        removeOnFail: { count: 5000 },
      });
    },
    async startConsuming(handlers: JobHandlers, options) {
      if (worker) throw new Error('already consuming');
      worker = new Worker(
        QUEUE_NAME,
        async (job) => {
          const handler = handlers[job.name as JobName] as
            | ((payload: unknown, context: { attempt: number; jobId: string }) => Promise<string>)
            | undefined;
          if (!handler) throw new Error(`No handler for job ${job.name}`);
          return handler(job.data, { attempt: job.attemptsMade + 1, jobId: job.id ?? '' });
        },
        { connection, prefix, concurrency: options?.concurrency ?? 4 },
      );
      worker.on('failed', (job, error) => logger.warn({ err: error, job: job?.name, jobId: job?.id }, 'job failed'));
      worker.on('error', (error) => logger.warn({ err: error }, 'job worker error'));
      await worker.waitUntilReady();
    },
    async stats(): Promise<QueueStats> {
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized');
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
        const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
        if (Object.values(counts).every((count) => count === 0)) return;
        if (Date.now() > deadline) throw new Error('queue did not become idle in time');
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    async ping() {
      // A cheap round trip through the same connection the jobs use.
      await queue.getJobCounts('waiting');
    },
    async close() {
      await worker?.close();
      await queue.close();
    },
  };
}
