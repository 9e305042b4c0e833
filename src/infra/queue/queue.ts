/**
 * Typed background jobs. Each module declares its jobs by augmenting JobPayloads:
 *
 *   declare module '../../infra/queue/queue.js' {
 *     interface JobPayloads { 'memory.form': { conversationId: string } }
 *   }
 *
 * With Redis the jobs go to BullMQ and `npm run worker` consumes them (the server too with
 * RUN_WORKERS_IN_PROCESS=true); without Redis an in-process queue runs them inside the server.
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
   * Deferrable work nobody waits for (memory formation, summaries). A consumer inside the server runs
   * these within BACKGROUND_JOB_CONCURRENCY and holds them back while the process is busy (see
   * ConsumeOptions.background); BullMQ keeps them in a queue of their own for that.
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

export interface ConsumeOptions {
  /** Jobs at once (BullMQ: per queue, default 4; in-process: all kinds, default 2). */
  concurrency?: number;
  /**
   * How this consumer runs background jobs (`background: true`):
   * - `'budgeted'`: inside the server, beside requests: at most BACKGROUND_JOB_CONCURRENCY at once, each
   *   held back while the event loop is at least BACKGROUND_JOB_BUSY_UTILIZATION busy, for at most
   *   BACKGROUND_JOB_MAX_DEFER_MS after it was picked up (then it runs anyway).
   * - `'unbudgeted'` (BullMQ's default): a process that only runs jobs (`npm run worker`): at
   *   `concurrency`, never held back.
   * The in-process queue only ever runs inside the server and always keeps the budget.
   */
  background?: 'budgeted' | 'unbudgeted';
}

export interface JobQueue {
  kind: 'memory' | 'bullmq';
  enqueue<Name extends JobName>(name: Name, payload: JobPayloads[Name], options?: EnqueueOptions): Promise<void>;
  /** Starts consuming with these handlers (the server, or the worker process). */
  startConsuming(handlers: JobHandlers, options?: ConsumeOptions): Promise<void>;
  stats(): Promise<QueueStats>;
  /** Resolves when nothing is waiting, delayed or running (tests, graceful shutdown). */
  whenIdle(timeoutMs?: number): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
