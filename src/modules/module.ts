import type { AppInstance } from '../app-types.js';
import type { JobHandlers } from '../infra/queue/index.js';

/** What each domain module hands the shell: its routes, its job consumers and its lifecycle. */
export interface AppModule {
  name: string;
  registerRoutes?(app: AppInstance): Promise<void> | void;
  jobHandlers?: JobHandlers;
  /** Runs once the container is built (bootstrap data, timers). */
  start?(): Promise<void>;
  close?(): Promise<void>;
}
