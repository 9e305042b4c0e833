import type { Infrastructure } from '../../container.js';
import type { CharactersModule } from '../characters/index.js';
import type { ProviderGateway } from '../gateway/index.js';
import type { IdentityModule } from '../identity/index.js';
import type { MemoryModule } from '../memory/index.js';
import type { AppModule } from '../module.js';
import type { ModerationModule } from '../moderation/index.js';
import { registerChatRoutes } from './routes.js';
import { ChatService, type ImagineCommand } from './service.js';
import * as store from './store.js';
import type { ChatVoicePort } from './voice-port.js';

export { ChatService, type PreparedTurn, type TurnOutcome, type TurnRequest } from './service.js';
export { buildPrompt, type BuiltPrompt, type PromptInput } from './prompt-builder.js';
export { placeKey } from './store.js';

export interface ChatModule extends AppModule {
  service: ChatService;
}

export interface ChatModuleDependencies extends Infrastructure {
  identity: IdentityModule;
  characters: CharactersModule;
  memory: MemoryModule | undefined;
  moderation: ModerationModule;
  /** The metered path of every provider call (chat models, image descriptions). */
  gateway: ProviderGateway;
  /** `!imagine` (the images module). */
  imagine?: ImagineCommand;
  /** Voice in chat (the voice module). */
  voice?: ChatVoicePort | undefined;
}

export function createChatModule(dependencies: ChatModuleDependencies): ChatModule {
  const { config } = dependencies;
  const service = new ChatService({
    config,
    db: dependencies.db,
    logger: dependencies.logger.child({ module: 'chat' }),
    events: dependencies.keyValue.events,
    characters: dependencies.characters.service,
    gateway: dependencies.gateway,
    memory: dependencies.memory?.service,
    moderation: dependencies.moderation.service,
    imagine: dependencies.imagine,
    voice: dependencies.voice,
  });
  // The user's conversations in their export; erasing them drops what every replica cached.
  dependencies.memory?.userData.register('conversations', {
    exportUserData: (userId) => store.userConversations(dependencies.db, userId),
    async deleteUserData(userId) {
      await store.deleteUserMessages(dependencies.db, userId);
      await service.forgetCachedConversations();
    },
  });
  return {
    name: 'chat',
    service,
    registerRoutes: (app) =>
      registerChatRoutes(app, {
        chat: service,
        identity: dependencies.identity.service,
        characters: dependencies.characters.service,
        keepAliveMs: config.streamKeepAliveMs,
        voice: dependencies.voice,
      }),
    warmUp: async ({ db, characterId, userId }) => {
      if (characterId && userId) await service.warmUp(db, { characterId, userId });
    },
    start: () => service.start(),
    close: () => service.close(),
  };
}
