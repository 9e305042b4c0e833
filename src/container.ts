import type { Logger } from 'pino';
import type { Config } from './config.js';
import { openKeyValueBackend, scopeCache, type KeyValueBackend } from './infra/cache/index.js';
import { openDatabase, readDatabaseIdentity, type Database, type DatabaseHandle } from './infra/db/database.js';
import { openJobQueue, type JobHandlers, type JobQueue } from './infra/queue/index.js';
import { createCharactersModule, warmTokenCounter, type CharactersModule } from './modules/characters/index.js';
import { loadWordVectors } from './providers/embeddings/word-vectors.js';
import { createIdentityModule, type IdentityModule } from './modules/identity/index.js';
import { createMemoryModule, type MemoryModule } from './modules/memory/index.js';
import { createChatModule, type ChatModule } from './modules/chat/index.js';
import { createChannelBindingsModule, type ChannelBindingsModule } from './modules/channel-bindings/index.js';
import { createModerationModule, type ModerationModule } from './modules/moderation/index.js';
import { createMediaModule, type MediaModule } from './modules/media/index.js';
import { createImagesModule, type ImagesModule } from './modules/images/index.js';
import { createVoiceModule, type VoiceModule } from './modules/voice/index.js';
import { createMarketModule, type MarketModule } from './modules/market/index.js';
import type { AppModule } from './modules/module.js';
import { UsageRecorder } from './modules/usage/usage-recorder.js';
import { createProviderRegistry, ProviderGateway } from './modules/gateway/index.js';
import { createBillingModule, createPlanCatalog, type BillingModule } from './modules/billing/index.js';
import { createIdempotencyModule } from './modules/idempotency/index.js';

/** The side-effecting parts every module is built from; one object, passed whole. */
export interface Infrastructure {
  config: Readonly<Config>;
  logger: Logger;
  database: DatabaseHandle;
  db: Database;
  keyValue: KeyValueBackend;
  queue: JobQueue;
}

export interface Container extends Infrastructure {
  identity: IdentityModule;
  characters: CharactersModule;
  memory: MemoryModule;
  moderation: ModerationModule;
  chat: ChatModule;
  /** Stored images and audio (files or S3), signed URLs, retention. */
  media: MediaModule;
  channelBindings: ChannelBindingsModule;
  /** Image generation jobs, the gallery, vision describe. */
  images: ImagesModule;
  /** Speech and transcription (ElevenLabs, MiniMax, OpenAI-compatible, Gemini) through the gateway. */
  voice: VoiceModule;
  /** Credit packs and subscriptions through Stripe Checkout. */
  market: MarketModule;
  usage: UsageRecorder;
  /** Plans, wallets and the credit ledger, limits; the gateway's BillingPort. */
  billing: BillingModule;
  /** The one metered path of every provider call. */
  gateway: ProviderGateway;
  modules: AppModule[];
  /** Job consumers of every module, for the server (no Redis) or the worker process. */
  jobHandlers: JobHandlers;
  close(): Promise<void>;
}

export async function buildContainer(config: Readonly<Config>, logger: Logger): Promise<Container> {
  const opening = openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, logger, thread: config.embeddedDatabaseThread, preparedStatements: config.databasePreparedStatements });
  // What the first turn would otherwise load (the token counter's table, ≈ 0.1 s of this thread; the
  // built-in word vectors, ≈ 0.05 s) is loaded while the database opens — on the embedded default
  // that is another thread's work — instead of on the first turn (bench/first-turn.ts).
  warmTokenCounter();
  if (config.embedding.provider === 'words') {
    try {
      loadWordVectors();
    } catch {
      // Missing vectors are reported where they are used, as before.
    }
  }
  const database = await opening;
  let keyValue: KeyValueBackend | undefined;
  let queue: JobQueue | undefined;
  try {
    const backend = await openKeyValueBackend(config.redisUrl, `${config.redisKeyPrefix}:`);
    keyValue = backend;
    // Cached rows are keyed by the database they came from: a recreated or restored database behind
    // a kept Redis starts with an empty cache instead of rows that no longer exist.
    keyValue = { ...backend, cache: scopeCache(backend.cache, `db:${await readDatabaseIdentity(database.db)}:`) };
    queue = openJobQueue(config.redisUrl, logger, config.redisKeyPrefix, config.backgroundJobs);
  } catch (error) {
    await keyValue?.close();
    await database.close();
    throw error;
  }
  const infrastructure: Infrastructure = { config, logger, database, db: database.db, keyValue, queue };

  // Modules in dependency order; each receives the infrastructure and the modules it builds on.
  const usage = new UsageRecorder({ db: database.db, logger });
  // Plans are billing's; identity reads them too (a user's plan, platform keys), so they come first.
  const plans = createPlanCatalog(infrastructure);
  const identity = createIdentityModule(infrastructure, { plans });
  const billing = createBillingModule(infrastructure, { identity, plans });
  const gateway = new ProviderGateway({
    config,
    logger: logger.child({ module: 'gateway' }),
    keys: identity.keys,
    registry: createProviderRegistry(config),
    billing: billing.port,
    usage,
  });
  const characters = createCharactersModule(infrastructure, { identity: identity.service });
  const memory = createMemoryModule({ ...infrastructure, identity, characters, gateway });
  const moderation = createModerationModule(infrastructure);
  const media = createMediaModule({ ...infrastructure, identity, memory });
  const images = createImagesModule({ ...infrastructure, identity, characters, memory, gateway, usage, media: media.service, moderation: moderation.service });
  const voice = createVoiceModule({ ...infrastructure, identity, characters, media, gateway });
  const chat = createChatModule({ ...infrastructure, identity, characters, memory, moderation, gateway, imagine: images.imagine, voice: voice.chatVoice });
  const channelBindings = createChannelBindingsModule({ ...infrastructure, identity, characters });
  const market = createMarketModule({ ...infrastructure, identity, billing: billing.service });
  // billing before chat: its rate-limit hook must be in place before the limited routes are added;
  // idempotency (its Idempotency-Key hook) likewise before the routes that opt in.
  const idempotency = createIdempotencyModule(infrastructure, { identity });
  const modules: AppModule[] = [identity, billing, idempotency, characters, memory, moderation, media, images, voice, chat, channelBindings, market];

  const jobHandlers: JobHandlers = Object.assign({}, ...modules.map((module) => module.jobHandlers ?? {}));
  for (const module of modules) await module.start?.();

  return {
    ...infrastructure,
    identity,
    characters,
    memory,
    moderation,
    chat,
    media,
    channelBindings,
    images,
    voice,
    market,
    usage,
    billing,
    gateway,
    modules,
    jobHandlers,
    async close() {
      for (const module of [...modules].reverse()) {
        try {
          await module.close?.();
        } catch (error) {
          logger.warn({ err: error, module: module.name }, 'module did not close cleanly');
        }
      }
      await queue.close();
      await keyValue.close();
      await database.close();
    },
  };
}
