import type { Logger } from 'pino';

/**
 * The one graceful-shutdown path of every process (server, worker, bot): on SIGTERM or SIGINT, stop
 * what is running, then exit 0 — or 1 when stopping failed.
 */
export function stopOnSignals(logger: Logger, stop: () => Promise<void>): void {
  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'unclean shutdown');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}
