/**
 * Typed background jobs. Each module declares its jobs by augmenting JobPayloads:
 *
 *   declare module '../../infra/queue/queue.js' {
 *     interface JobPayloads { 'memory.form': { conversationId: string } }
 *   }
 *
 * With Redis the jobs go to BullMQ and `npm run worker` consumes them; without Redis an
 * in-process queue runs them inside the server.
 */

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface JobPayloads {}

export type JobName = keyof JobPayloads;
export type JobOutcome = 'success' | 'skipped';
export type JobHandler<Name extends JobName> = (payload: JobPayloads[Name], context: { attempt: number; jobId: string }) => Promise<JobOutcome>;
export type JobHandlers = { [Name in JobName]?: JobHandler<Name> };

export interface EnqueueOptions {
  /** Jobs with the same id are coalesced while one is pending. */
  jobId?: string;
  delayMs?: number;
  attempts?: number;
  /**
   * Deferrable work nobody waits for (memory formation, summaries). The in-process queue runs these
   * within BACKGROUND_JOB_CONCURRENCY and holds them back while the process is busy; BullMQ ignores it.
   */
  background?: boolean;
}

export interface QueueStats {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
  completed: number;
}

export interface JobQueue {
  kind: 'memory' | 'bullmq';
  enqueue<Name extends JobName>(name: Name, payload: JobPayloads[Name], options?: EnqueueOptions): Promise<void>;
  /** Starts consuming with these handlers (the server without Redis, or the worker process). */
  startConsuming(handlers: JobHandlers, options?: { concurrency?: number }): Promise<void>;
  stats(): Promise<QueueStats>;
  /** Resolves when nothing is waiting, delayed or running (tests, graceful shutdown). */
  whenIdle(timeoutMs?: number): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
