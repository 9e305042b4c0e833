import type { Config, ProviderName } from '../../config.js';
import { createChatProviders } from '../../providers/chat/index.js';
import { createEmbedder } from '../../providers/embeddings/index.js';
import { GeminiVisionProvider } from '../../providers/vision/gemini.js';
import { ProviderRegistry } from './registry.js';

/**
 * The provider an embedding call is metered and keyed under: the configured vendor; an
 * OpenAI-compatible server of the operator's own (`custom`) is metered as `openai`. Undefined for
 * the in-process embedders (words, hashing, builtin, local), which call no vendor.
 */
export function embeddingProviderOf(config: Pick<Readonly<Config>, 'embedding'>): ProviderName | undefined {
  const { provider } = config.embedding;
  switch (provider) {
    case 'words':
    case 'hashing':
    case 'builtin':
    case 'local':
      return undefined;
    case 'custom':
      return 'openai';
    case 'openrouter':
    case 'openai':
    case 'gemini':
      return provider;
  }
}

/**
 * The registry with every built-in adapter, built once from config. Modules that add a modality
 * register their adapters on it when they are created.
 */
export function createProviderRegistry(config: Readonly<Config>, fetchImplementation?: typeof fetch): ProviderRegistry {
  const registry = new ProviderRegistry();
  const chat = createChatProviders(config, fetchImplementation);
  for (const provider of ['openrouter', 'openai', 'xai', 'gemini'] as const) registry.register('chat', provider, chat.forProvider(provider));
  registry.register('vision', 'gemini', new GeminiVisionProvider({ baseUrl: config.providers.gemini.baseUrl, timeoutMs: config.upstreamTimeoutMs, fetch: fetchImplementation }));
  const embeddingProvider = embeddingProviderOf(config);
  // Built (and checked) at start-up, so a bad EMBEDDING_* setting stops the process instead of every turn.
  if (embeddingProvider) registry.register('embedding', embeddingProvider, createEmbedder(config, fetchImplementation));
  return registry;
}
