import type { Infrastructure } from '../../container.js';
import { createImageProviders, IMAGE_PROVIDERS, type ImageModelProvider } from '../../providers/images/index.js';
import { OpenAiCompatibleVisionProvider } from '../../providers/vision/openai-compatible.js';
import type { CharactersModule } from '../characters/index.js';
import type { ProviderGateway } from '../gateway/index.js';
import type { IdentityModule } from '../identity/index.js';
import type { MemoryModule } from '../memory/index.js';
import type { AppModule } from '../module.js';
import type { UsageRecorder } from '../usage/usage-recorder.js';
import { registerImageRoutes } from './routes.js';
import { presentImage } from './schemas.js';
import { ImagesService, type ImageMediaPort } from './service.js';
import { createImagineCommand } from './imagine.js';
import type { ImagineCommand } from '../chat/service.js';
import { VisionService } from './vision.js';
import type { ModerationService } from '../moderation/index.js';

export { ImagesService, type ImageMediaPort, type GenerateInput } from './service.js';
export { VisionService } from './vision.js';
export type { GeneratedImageRow } from './tables.js';

declare module '../gateway/registry.js' {
  interface ProviderAdapters {
    image: ImageModelProvider;
  }
}

export interface ImagesModule extends AppModule {
  service: ImagesService;
  vision: VisionService;
  /** The chat command `!imagine <prompt>`. */
  imagine: ImagineCommand;
}

export interface ImagesModuleDependencies extends Infrastructure {
  identity: IdentityModule;
  characters: CharactersModule;
  memory: MemoryModule;
  gateway: ProviderGateway;
  usage: UsageRecorder;
  media: ImageMediaPort;
  /** Output moderation for the character's `!imagine` line. */
  moderation: Pick<ModerationService, 'wouldBlock'>;
  /** Overrides for tests. */
  imageProviders?: Partial<Record<(typeof IMAGE_PROVIDERS)[number], ImageModelProvider>>;
}

/** Image generation (fal, OpenAI, Stability, KIE) as jobs, the gallery, and POST /v1/vision/describe. */
export function createImagesModule(dependencies: ImagesModuleDependencies): ImagesModule {
  const { config, db, queue, keyValue, identity, gateway, media, usage, memory } = dependencies;
  const logger = dependencies.logger.child({ module: 'images' });
  const adapters = { ...createImageProviders(config), ...dependencies.imageProviders };
  for (const provider of IMAGE_PROVIDERS) gateway.registry.register('image', provider, adapters[provider]);
  if (!gateway.registry.has('vision', 'openai')) {
    gateway.registry.register('vision', 'openai', new OpenAiCompatibleVisionProvider({ provider: 'openai', baseUrl: config.providers.openai.baseUrl, timeoutMs: config.upstreamTimeoutMs }));
  }
  const service = new ImagesService({ config, db, logger, queue, events: keyValue.events, gateway, media, identity: identity.service, vault: identity.vault, usage });
  const vision = new VisionService({ config, gateway, vault: identity.vault });
  memory.userData.register('images', {
    exportUserData: async (userId) => (await service.exportOf(userId)).map((row) => presentImage(row, undefined)),
    deleteUserData: (userId) => service.deleteAllOf(userId),
  });
  const imagine = createImagineCommand({ config, logger, images: service, gateway, vault: identity.vault, moderation: dependencies.moderation });
  return {
    name: 'images',
    service,
    vision,
    imagine,
    jobHandlers: { 'images.generate': (payload) => service.runJob(payload) },
    registerRoutes: (app) => registerImageRoutes(app, { images: service, vision, identity: identity.service, characters: dependencies.characters.service, config }),
  };
}
