import type { Config } from '../../config.js';
import { FalImageProvider, planFal } from './fal.js';
import type { ImageModelProvider, ImagePlan, ImageProviderName, ImageRequest } from './image-model.js';
import { KieImageProvider, planKie } from './kie.js';
import { OpenAiImageProvider, planOpenAi } from './openai.js';
import { StabilityImageProvider, planStability } from './stability.js';

export * from './image-model.js';
export { FAL_STYLE_MODELS } from './fal.js';

const PLANNERS: Record<ImageProviderName, (request: ImageRequest) => ImagePlan> = {
  fal: planFal,
  openai: planOpenAi,
  stability: planStability,
  kie: planKie,
};

/** Maps the one request shape to what `provider` will be asked; throws 422 naming the field it cannot honour. */
export function planImage(provider: ImageProviderName, request: ImageRequest): ImagePlan {
  return PLANNERS[provider](request);
}

/** The provider a model id belongs to, for clients (the OpenAI SDK) that name only a model. */
export function providerOfModel(model: string): ImageProviderName | undefined {
  if (/^(gpt-image-|dall-e-)/.test(model)) return 'openai';
  if (/^flux-kontext-/.test(model)) return 'kie';
  if (/^(stable-image-)?(core|ultra|sd3)$/.test(model)) return 'stability';
  if (/^fal-ai\//.test(model)) return 'fal';
  return undefined;
}

export function createImageProviders(config: Readonly<Config>, fetchImplementation?: typeof fetch): Record<ImageProviderName, ImageModelProvider> {
  const http = (provider: ImageProviderName) => ({ baseUrl: config.providers[provider].baseUrl, timeoutMs: config.upstreamTimeoutMs, fetch: fetchImplementation });
  return {
    fal: new FalImageProvider({ ...http('fal'), queueBaseUrl: config.falQueueBaseUrl }),
    openai: new OpenAiImageProvider(http('openai')),
    stability: new StabilityImageProvider(http('stability')),
    kie: new KieImageProvider(http('kie')),
  };
}
