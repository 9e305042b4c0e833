import type { Config } from '../../config.js';
import { createEmbedder, type Embedder } from '../../providers/embeddings/index.js';
import { maskSecret } from '../identity/masking.js';
import type { ResolvedProviderKey } from '../identity/key-resolution.js';
import { embeddingProviderOf } from './default-registry.js';
import type { ProviderGateway } from './gateway.js';

/**
 * The embedder memory uses. Paid embedders are a gateway call per batch (modality and service
 * `embedding`): the platform pays (memories are embedded for everyone alike, with no end user), so
 * billing sees every call and usage is recorded once, by the gateway. The key is the one the
 * operator configured for embeddings (EMBEDDING_API_KEY, else the provider's platform key), passed
 * to the adapter per call. The in-process embedders (words, hashing, builtin, local) call no
 * vendor: they are not provider calls and are returned as they are.
 */
export function gatewayEmbedder(gateway: ProviderGateway, config: Readonly<Config>, countTokens: (text: string) => number): Embedder {
  const provider = embeddingProviderOf(config);
  if (!provider) return createEmbedder(config);
  const adapter = gateway.registry.adapterFor('embedding', provider);
  if (!adapter) throw new Error(`No embedding adapter is registered for ${provider}.`);
  const apiKey = config.embedding.apiKey ?? config.providers[provider].platformKey ?? '';
  const key: ResolvedProviderKey = { provider, apiKey, source: 'platform', providerKeyId: null, masked: apiKey ? maskSecret(apiKey) : '', name: null };
  const model = config.embedding.model;
  return {
    id: adapter.id,
    dimensions: adapter.dimensions,
    embed(texts, purpose) {
      const promptTokens = texts.reduce((total, text) => total + countTokens(text), 0);
      return gateway.call(
        { modality: 'embedding', provider, service: 'embedding', user: undefined, model, estimate: { promptTokens }, key },
        async (embedding, leaseKey) => ({ result: await embedding.embed(texts, purpose, leaseKey.apiKey), usage: { model, promptTokens } }),
      );
    },
  };
}
