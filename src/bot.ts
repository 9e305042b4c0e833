import { pathToFileURL } from 'node:url';
import { ConfigError, loadBotConfig, type BotConfig } from './config.js';
import { AnimaBot } from './bot/anima-bot.js';
import { createLogger } from './infra/logging/logger.js';
import { stopOnSignals } from './infra/process-signals.js';

/** `npm run bot`: the Discord bot, a separate process that talks to Anima over its HTTP API. */
async function main(): Promise<void> {
  let config: Readonly<BotConfig>;
  try {
    config = loadBotConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`The Discord bot cannot start.\n${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel).child({ role: 'bot' });
  const bot = new AnimaBot(config, logger);
  stopOnSignals(logger, () => bot.stop());
  try {
    await bot.start();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    logger.fatal({ err: error }, 'the bot could not start');
    process.stderr.write(`The Discord bot could not start: ${message}\n`);
    await bot.client.destroy().catch(() => undefined);
    process.exit(1);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void main();
}
