import { randomUUID } from 'node:crypto';
import type { Infrastructure } from '../../container.js';
import type { Embedder } from '../../providers/embeddings/index.js';
import { countTokens } from '../characters/token-counter.js';
import type { CharactersModule } from '../characters/index.js';
import { gatewayEmbedder, type ProviderGateway } from '../gateway/index.js';
import type { IdentityModule } from '../identity/index.js';
import type { AppModule } from '../module.js';
import { ConversationSummaries } from './conversation-summaries.js';
import { MemoryFormation } from './formation.js';
import { MemoryModel } from './memory-model.js';
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
  /** Embeddings, memory formation and summaries call providers through it. */
  gateway: ProviderGateway;
  /** Override for tests: another embedder. */
  embedder?: Embedder;
}

export function createMemoryModule(dependencies: MemoryModuleDependencies): MemoryModule {
  const { config, db, queue, keyValue, identity, gateway } = dependencies;
  const logger = dependencies.logger.child({ module: 'memory' });
  const embedder = dependencies.embedder ?? gatewayEmbedder(gateway, config, countTokens);
  const service = new MemoryService({ db, embedder, queue, logger, settings: config.memory, countTokens });
  const model = new MemoryModel({ gateway, db, logger, countTokens });
  const formation = new MemoryFormation({
    db,
    cache: keyValue.cache,
    memory: service,
    model,
    logger,
  });
  service.setFormer(formation);
  const summaries = new ConversationSummaries({
    db,
    queue,
    memory: service,
    model,
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
    // A turn's recall (both statement shapes) and its summary check, on the warm-up's transaction.
    warmUp: async ({ db, characterId, userId }) => {
      await service.warmUp(db, characterId ? { characterId, userId } : undefined);
      await summaries.warmUp(db, randomUUID());
    },
    start: () => service.start(),
    close: () => service.close(),
  };
}
