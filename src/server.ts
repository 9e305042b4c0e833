import { pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import { buildApp } from './app.js';
import type { AppInstance } from './app-types.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { buildContainer, type Container } from './container.js';
import { createLogger } from './infra/logging/logger.js';
import { stopOnSignals } from './infra/process-signals.js';
import { warmUpModules } from './modules/warm-up.js';

export interface RunningServer {
  app: AppInstance;
  container: Container;
  /** Base URL the server listens on, e.g. http://127.0.0.1:8000 */
  url: string;
  /** Graceful stop: refuse new requests, let in-flight ones and open streams finish within the grace period. */
  stop(): Promise<void>;
}

export async function startServer(config: Readonly<Config>, logger: Logger = createLogger(config.logLevel)): Promise<RunningServer> {
  const container = await buildContainer(config, logger);
  let app: AppInstance;
  try {
    app = await buildApp(container);
    // The first turn's database work, done before listening (rolled back; see src/modules/warm-up.ts).
    // After the routes' set-up, not beside it: both need the main thread, and side by side each of
    // the warm-up's round trips waited for it (restart to ready ≈ 0.3 s longer on embedded).
    const warmedUp = await warmUpModules(container.db, container.modules, logger);
    logger.debug({ warm_up_ms: Math.round(warmedUp.ms), modules_ms: warmedUp.modulesMs, failed: warmedUp.failed }, 'warmed up the turn path');
    // Jobs run beside requests here: background jobs (memory formation, summaries) within BACKGROUND_JOB_*.
    if (config.runWorkersInProcess) await container.queue.startConsuming(container.jobHandlers, { background: 'budgeted' });
    await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    await container.close();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      // Connections still open when the grace period ends (a stream that never finishes) are cut.
      const forceTimer = setTimeout(() => app.server.closeAllConnections(), config.shutdownGraceMs);
      forceTimer.unref();
      try {
        await app.close();
      } finally {
        clearTimeout(forceTimer);
        await container.close();
      }
    })();
    return stopping;
  };
  return { app, container, url: `http://${host}:${port}`, stop };
}

async function main(): Promise<void> {
  let config: Readonly<Config>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  const startedAt = performance.now();
  let server: RunningServer;
  try {
    server = await startServer(config, logger);
  } catch (error) {
    logger.fatal({ err: error }, 'could not start');
    process.stderr.write(`Anima could not start: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
  logger.info(
    { url: server.url, database: server.container.database.kind, cache: server.container.keyValue.kind, queue: server.container.queue.kind, startup_ms: Math.round(performance.now() - startedAt) },
    'Anima is listening',
  );
  stopOnSignals(logger, () => server.stop());
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void main();
}
