import { ConfigError, loadConfig } from './config.js';
import { buildContainer } from './container.js';
import { createLogger } from './infra/logging/logger.js';
import { stopOnSignals } from './infra/process-signals.js';

/** Runs the job consumers as their own process (with REDIS_URL, jobs come from BullMQ). */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel).child({ role: 'worker' });
  if (!config.redisUrl) {
    logger.error('The worker needs REDIS_URL: without Redis the server runs the jobs itself.');
    process.exit(1);
  }
  const container = await buildContainer(config, logger);
  // Running jobs is all this process does: background jobs too at the normal concurrency, never held back.
  await container.queue.startConsuming(container.jobHandlers, { background: 'unbudgeted' });
  logger.info({ jobs: Object.keys(container.jobHandlers) }, 'worker consuming jobs');
  stopOnSignals(logger, () => container.close());
}

void main();
