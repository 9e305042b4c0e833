import type { Infrastructure } from '../../container.js';
import { createChatProviders, type ChatProviders } from '../../providers/chat/index.js';
import { GeminiVisionProvider, type VisionProvider } from '../../providers/vision/gemini.js';
import type { CharactersModule } from '../characters/index.js';
import type { IdentityModule } from '../identity/index.js';
import type { MemoryModule } from '../memory/index.js';
import type { AppModule } from '../module.js';
import type { ModerationModule } from '../moderation/index.js';
import type { UsageRecorder } from '../usage/usage-recorder.js';
import { registerChatRoutes } from './routes.js';
import { ChatService, type ImagineCommand } from './service.js';

export { ChatService, type PreparedTurn, type TurnOutcome, type TurnRequest } from './service.js';
export { buildPrompt, type BuiltPrompt, type PromptInput } from './prompt-builder.js';
export { placeKey } from './store.js';

export interface ChatModule extends AppModule {
  service: ChatService;
  providers: ChatProviders;
}

export interface ChatModuleDependencies extends Infrastructure {
  identity: IdentityModule;
  characters: CharactersModule;
  memory: MemoryModule | undefined;
  moderation: ModerationModule;
  usage: UsageRecorder;
  /** Overrides for tests and benchmarks. */
  chatProviders?: ChatProviders;
  vision?: VisionProvider;
  /** `!imagine` (the images module). */
  imagine?: ImagineCommand;
}

export function createChatModule(dependencies: ChatModuleDependencies): ChatModule {
  const { config } = dependencies;
  const providers = dependencies.chatProviders ?? createChatProviders(config);
  const service = new ChatService({
    config,
    db: dependencies.db,
    logger: dependencies.logger.child({ module: 'chat' }),
    characters: dependencies.characters.service,
    keys: dependencies.identity.keys,
    memory: dependencies.memory?.service,
    usage: dependencies.usage,
    moderation: dependencies.moderation.service,
    chatProviders: providers,
    imagine: dependencies.imagine,
    vision: dependencies.vision ?? new GeminiVisionProvider({ baseUrl: config.providers.gemini.baseUrl, timeoutMs: config.upstreamTimeoutMs }),
  });
  return {
    name: 'chat',
    service,
    providers,
    registerRoutes: (app) =>
      registerChatRoutes(app, {
        chat: service,
        identity: dependencies.identity.service,
        characters: dependencies.characters.service,
        keepAliveMs: config.streamKeepAliveMs,
      }),
    close: () => service.close(),
  };
}
