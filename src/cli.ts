#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, PROVIDERS, type Config } from './config.js';
import { buildContainer, type Container } from './container.js';
import { openDatabase } from './infra/db/database.js';
import { createLogger } from './infra/logging/logger.js';
import { seedDemoCharacters } from './modules/characters/seed.js';
import { rotateVaultKeys } from './modules/identity/vault-rotation.js';
import { reembedMemories } from './modules/memory/reembed.js';
import { checkProviderKey } from './providers/key-checks/index.js';

const USAGE = `Usage: anima <command> [options]   (or: npm run cli -- <command> [options])

Commands:
  migrate                         apply pending database migrations and exit
  create-key --name N --role R    create a platform API key (R: admin | service | user) and print it once
             [--user EXTERNAL_ID] [--expires-at ISO-8601]
                                  a user key belongs to the user with that external id (created if new)
  seed                            add the demo characters (skips those that exist)
  check                           validate the configuration, reach the database and Redis,
                                  and check each configured provider key against its provider
  rotate-vault-keys               re-encrypt every stored provider key under the current ENCRYPTION_KEY
  check-ledger                    verify that every wallet's balance is the sum of its credit ledger
                                  and its reserved credits the sum of its open holds (exit 1 if not)
  reembed [--batch-size N]        re-embed memories made by another embedder (resumable; shows progress)
`;

type CommandHandler = (config: Readonly<Config>, args: string[]) => Promise<number>;

async function withContainer<T>(config: Readonly<Config>, work: (container: Container) => Promise<T>): Promise<T> {
  const container = await buildContainer(config, createLogger(process.env.CLI_LOG_LEVEL ?? 'warn'));
  try {
    return await work(container);
  } finally {
    await container.close();
  }
}

const commands: Record<string, CommandHandler> = {
  async seed(config) {
    return withContainer(config, async (container) => {
      const result = await seedDemoCharacters(container.characters.service);
      console.log(`Demo characters: created ${result.created.length ? result.created.join(', ') : 'none'}; already there: ${result.skipped.length ? result.skipped.join(', ') : 'none'}.`);
      return 0;
    });
  },

  async 'rotate-vault-keys'(config) {
    return withContainer(config, async (container) => {
      const report = await rotateVaultKeys(container, (message) => console.log(message));
      console.log(`Vault key ${report.currentKeyId}: ${report.reencrypted} re-encrypted, ${report.alreadyCurrent} already current, ${report.failed} failed, of ${report.total}.`);
      return report.failed === 0 ? 0 : 1;
    });
  },

  async 'check-ledger'(config) {
    return withContainer(config, async (container) => {
      const report = await container.billing.service.checkLedger();
      for (const mismatch of report.mismatches) {
        console.log(
          `user ${mismatch.userId}: balance ${mismatch.balanceMicro} micro, ledger sum ${mismatch.ledgerSumMicro}; reserved ${mismatch.reservedMicro}, open holds ${mismatch.heldMicro}`,
        );
      }
      console.log(`Ledger: ${report.wallets} wallets, ${report.entries} entries, ${report.mismatches.length} mismatched.`);
      return report.mismatches.length === 0 ? 0 : 1;
    });
  },

  async reembed(config, args) {
    const { values } = parseArgs({ args, options: { 'batch-size': { type: 'string', default: '64' } } });
    const batchSize = Number(values['batch-size']);
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      console.error('--batch-size must be a positive whole number');
      return 2;
    }
    const controller = new AbortController();
    // Ctrl-C finishes the current batch and stops; the next run continues from there.
    process.once('SIGINT', () => controller.abort());
    return withContainer(config, async (container) => {
      const result = await reembedMemories(container, {
        batchSize,
        signal: controller.signal,
        onProgress: (progress) => {
          const percent = progress.total === 0 ? 100 : Math.floor((progress.done / progress.total) * 100);
          process.stderr.write(`\rre-embedded ${progress.done} / ${progress.total} (${percent}%), last batch ${progress.batchMilliseconds.toFixed(0)} ms   `);
        },
      });
      process.stderr.write('\n');
      console.log(`Re-embedded ${result.reembedded} memories; ${result.remaining} left${result.remaining > 0 ? ' (run again to continue)' : ''}.`);
      return result.remaining === 0 ? 0 : 1;
    });
  },

  async migrate(config) {
    const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, logger: createLogger('warn'), thread: config.embeddedDatabaseThread, preparedStatements: config.databasePreparedStatements });
    await database.close();
    console.log(`Migrations applied (${database.kind} database).`);
    return 0;
  },

  async 'create-key'(config, args) {
    const { values } = parseArgs({
      args,
      options: { name: { type: 'string' }, role: { type: 'string' }, user: { type: 'string' }, 'expires-at': { type: 'string' } },
    });
    const role = values.role;
    if (!values.name || (role !== 'admin' && role !== 'service' && role !== 'user')) {
      console.error('create-key needs --name and --role admin|service|user');
      return 2;
    }
    if (role === 'user' && !values.user) {
      console.error('a user key needs --user <external id>');
      return 2;
    }
    const expiresAt = values['expires-at'] ? new Date(values['expires-at']) : null;
    if (expiresAt && Number.isNaN(expiresAt.getTime())) {
      console.error('--expires-at must be an ISO-8601 date');
      return 2;
    }
    return withContainer(config, async (container) => {
      const user = values.user
        ? await container.identity.service.resolveActingUser({ role: 'service', credential: 'internal_env', apiKeyId: null, ownUserId: null }, { externalUserId: values.user })
        : undefined;
      const created = await container.identity.service.createApiKey({ role, name: values.name!, userId: user?.id ?? null, expiresAt });
      console.log(`Created ${role} key "${values.name}" (id ${created.row.id}). It is shown only now:\n\n  ${created.key}\n`);
      return 0;
    });
  },

  async check(config) {
    let failures = 0;
    console.log(`configuration: ok (${config.databaseUrl ? 'PostgreSQL' : 'embedded database'}, ${config.redisUrl ? 'Redis' : 'in-process cache and queue'})`);
    return withContainer(config, async (container) => {
      for (const [name, probe] of [
        ['database', () => container.database.ping()],
        ['cache', () => container.keyValue.ping()],
        ['queue', () => container.queue.ping()],
      ] as const) {
        try {
          await probe();
          console.log(`${name}: ok`);
        } catch (error) {
          failures += 1;
          console.log(`${name}: FAILED (${error instanceof Error ? error.message : String(error)})`);
        }
      }
      for (const provider of PROVIDERS) {
        const settings = config.providers[provider];
        if (!settings.platformKey) {
          console.log(`${provider}: no platform key (users may bring their own)`);
          continue;
        }
        const outcome = await checkProviderKey(provider, settings.platformKey, { baseUrl: settings.baseUrl, timeoutMs: config.keyCheckTimeoutMs });
        if (outcome.status === 'invalid' || outcome.status === 'unreachable') failures += 1;
        console.log(`${provider}: platform key ${outcome.status}${outcome.detail ? ` (${outcome.detail})` : ''} at ${settings.baseUrl}`);
      }
      return failures === 0 ? 0 : 1;
    });
  },
};

async function main(): Promise<number> {
  const [command, ...args] = process.argv.slice(2);
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  const handler = commands[command];
  if (!handler) {
    console.error(`Unknown command "${command}".\n\n${USAGE}`);
    return 2;
  }
  let config: Readonly<Config>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      return 1;
    }
    throw error;
  }
  return handler(config, args);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
