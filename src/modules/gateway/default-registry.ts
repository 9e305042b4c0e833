import type { Config } from '../../config.js';
import { createChatProviders } from '../../providers/chat/index.js';
import { GeminiVisionProvider } from '../../providers/vision/gemini.js';
import { ProviderRegistry } from './registry.js';

/**
 * The registry with every built-in adapter, built once from config. Modules that add a modality
 * register their adapters on it when they are created.
 */
export function createProviderRegistry(config: Readonly<Config>, fetchImplementation?: typeof fetch): ProviderRegistry {
  const registry = new ProviderRegistry();
  const chat = createChatProviders(config, fetchImplementation);
  for (const provider of ['openrouter', 'openai', 'xai', 'gemini'] as const) registry.register('chat', provider, chat.forProvider(provider));
  registry.register('vision', 'gemini', new GeminiVisionProvider({ baseUrl: config.providers.gemini.baseUrl, timeoutMs: config.upstreamTimeoutMs, fetch: fetchImplementation }));
  return registry;
}
