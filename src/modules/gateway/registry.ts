import type { ProviderName } from '../../config.js';
import type { ChatModelProvider } from '../../providers/chat/chat-model.js';
import type { EmbeddingProvider } from '../../providers/embeddings/index.js';
import type { VisionProvider } from '../../providers/vision/gemini.js';

/**
 * One small adapter interface per modality. Modules that add a modality (speech, transcription,
 * images) extend this map by declaration merging, as jobs do with JobPayloads:
 *
 *   declare module '../gateway/registry.js' { interface ProviderAdapters { speech: SpeechProvider } }
 *
 * Every adapter receives the resolved key per call and reads nothing else secret.
 */
export interface ProviderAdapters {
  chat: ChatModelProvider;
  vision: VisionProvider;
  /** The configured paid embedder (EMBEDDING_PROVIDER), registered under its provider. */
  embedding: EmbeddingProvider;
}

export type Modality = keyof ProviderAdapters;

/**
 * The one registry of provider adapters, keyed by modality and provider name. Only the gateway
 * hands adapters out (bound to a lease), so every provider call is metered.
 */
export class ProviderRegistry {
  private readonly adapters = new Map<string, unknown>();

  register<M extends Modality>(modality: M, provider: ProviderName, adapter: ProviderAdapters[M]): this {
    this.adapters.set(`${modality}:${provider}`, adapter);
    return this;
  }

  has(modality: Modality, provider: ProviderName): boolean {
    return this.adapters.has(`${modality}:${provider}`);
  }

  /** Providers that offer a modality, in registration order. */
  providersFor(modality: Modality): ProviderName[] {
    const prefix = `${modality}:`;
    return [...this.adapters.keys()].filter((key) => key.startsWith(prefix)).map((key) => key.slice(prefix.length) as ProviderName);
  }

  /** @internal for the gateway: callers get adapters through a lease. */
  adapterFor<M extends Modality>(modality: M, provider: ProviderName): ProviderAdapters[M] | undefined {
    return this.adapters.get(`${modality}:${provider}`) as ProviderAdapters[M] | undefined;
  }
}
