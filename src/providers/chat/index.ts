import type { Config } from '../../config.js';
import type { ChatModelProvider } from './chat-model.js';
import { GeminiChatProvider } from './gemini.js';
import { OpenAiCompatibleChatProvider } from './openai-compatible.js';

export type { ChatMessage, ChatModelProvider, ChatRequest, ChatResult, ChatStreamEvent, ChatUsage, ChatContentPart } from './chat-model.js';
export { ProviderCallError, type ProviderFailureKind } from './provider-error.js';

export type ChatProviderName = 'openrouter' | 'openai' | 'xai' | 'gemini';

export interface ChatProviders {
  forProvider(name: ChatProviderName): ChatModelProvider;
}

/** The chat adapters, built once from config; each reads its key only when a call is made. */
export function createChatProviders(config: Pick<Readonly<Config>, 'providers' | 'upstreamTimeoutMs' | 'publicBaseUrl'>, fetchImplementation?: typeof fetch): ChatProviders {
  const adapters: Record<ChatProviderName, ChatModelProvider> = {
    openrouter: openAiCompatible('openrouter'),
    openai: openAiCompatible('openai'),
    xai: openAiCompatible('xai'),
    gemini: new GeminiChatProvider({ baseUrl: config.providers.gemini.baseUrl, timeoutMs: config.upstreamTimeoutMs, fetch: fetchImplementation }),
  };
  function openAiCompatible(provider: 'openrouter' | 'openai' | 'xai'): ChatModelProvider {
    return new OpenAiCompatibleChatProvider({
      provider,
      baseUrl: config.providers[provider].baseUrl,
      timeoutMs: config.upstreamTimeoutMs,
      appUrl: config.publicBaseUrl,
      fetch: fetchImplementation,
    });
  }
  return { forProvider: (name) => adapters[name] };
}
