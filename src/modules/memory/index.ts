import type { Infrastructure } from '../../container.js';
import { createChatProviders } from '../../providers/chat/index.js';
import { createEmbedder, LOCAL_EMBEDDING_PROVIDERS, type Embedder } from '../../providers/embeddings/index.js';
import { countTokens } from '../characters/token-counter.js';
import type { CharactersModule } from '../characters/index.js';
import type { IdentityModule } from '../identity/index.js';
import type { AppModule } from '../module.js';
import type { UsageRecorder } from '../usage/usage-recorder.js';
import { ConversationSummaries } from './conversation-summaries.js';
import { meteredEmbedder } from './metered-embedder.js';
import { MemoryFormation, type ChatModels } from './formation.js';
import { registerMemoryRoutes } from './routes.js';
import { MemoryService } from './service.js';
import { builtInUserData, registerUserDataRoutes, UserDataRegistry } from './user-data.js';

export type { ConversationMemory, FinishedExchange, MemoryPlace, RecallResult, RecalledMemory } from './memory-port.js';
export { MemoryService } from './service.js';
export { MemoryFormation } from './formation.js';
export { reembedMemories } from './reembed.js';
export { UserDataRegistry, type UserDataHook } from './user-data.js';

export interface MemoryModule extends AppModule {
  /** The ConversationMemory the chat engine uses, plus the memory API's operations. */
  service: MemoryService;
  formation: MemoryFormation;
  embedder: Embedder;
  /** `GET /v1/me/export` and `DELETE /v1/me`: modules register their section of a user's data here. */
  userData: UserDataRegistry;
}

export interface MemoryModuleDependencies extends Infrastructure {
  identity: IdentityModule;
  characters: CharactersModule;
  usage: UsageRecorder;
  /** Overrides for tests: another embedder or chat models. */
  embedder?: Embedder;
  chatModels?: ChatModels;
}

export function createMemoryModule(dependencies: MemoryModuleDependencies): MemoryModule {
  const { config, db, queue, keyValue, identity, usage } = dependencies;
  const logger = dependencies.logger.child({ module: 'memory' });
  const provider = config.embedding.provider;
  const created = dependencies.embedder ?? createEmbedder(config);
  const embedder = dependencies.embedder || LOCAL_EMBEDDING_PROVIDERS.has(provider) ? created : meteredEmbedder(created, provider as 'openai', config.embedding.model, usage, countTokens);
  const service = new MemoryService({ db, embedder, queue, logger, settings: config.memory, countTokens });
  const formation = new MemoryFormation({
    db,
    cache: keyValue.cache,
    memory: service,
    chatModels: dependencies.chatModels ?? createChatProviders(config),
    keys: identity.keys,
    usage,
    logger,
  });
  service.setFormer(formation);
  const summaries = new ConversationSummaries({
    db,
    queue,
    memory: service,
    chatModels: dependencies.chatModels ?? createChatProviders(config),
    resolveKey: (userId, provider) => formation.resolveKey(userId, provider),
    usage,
    logger,
    everyMessages: config.memory.summaryEveryMessages,
  });
  service.setSummaries(summaries);
  const userData = new UserDataRegistry();
  for (const [section, hook] of Object.entries(builtInUserData(db))) userData.register(section, hook);
  return {
    name: 'memory',
    service,
    formation,
    embedder,
    userData,
    jobHandlers: {
      'memory.form': (payload) => formation.handleJob(payload),
      'memory.summarize': (payload) => summaries.handleJob(payload),
    },
    registerRoutes: (app) => {
      registerMemoryRoutes(app, { memory: service, formation, characters: dependencies.characters.service, identity: identity.service, config });
      registerUserDataRoutes(app, { registry: userData, identity: identity.service, db });
    },
    start: () => service.start(),
    close: () => service.close(),
  };
}
