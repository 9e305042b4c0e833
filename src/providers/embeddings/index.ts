import type { Config } from '../../config.js';
import { BuiltinEmbedder } from './builtin.js';
import { EmbeddingError, type Embedder } from './embedder.js';
import { GeminiEmbedder } from './gemini.js';
import { LocalOnnxEmbedder } from './local.js';
import { OpenAiCompatibleEmbedder } from './openai-compatible.js';
import { WORD_VECTOR_DIMENSIONS, WordVectorEmbedder } from './word-vectors.js';

export { BuiltinEmbedder } from './builtin.js';
export { EmbeddingError, l2Normalise, type Embedder, type EmbeddingProvider } from './embedder.js';
export { GeminiEmbedder } from './gemini.js';
export { LocalOnnxEmbedder } from './local.js';
export { OpenAiCompatibleEmbedder } from './openai-compatible.js';
export { WordVectorEmbedder } from './word-vectors.js';

/** Embedders that run in-process and cost nothing (no metering, no key). */
export const LOCAL_EMBEDDING_PROVIDERS = new Set(['words', 'hashing', 'builtin', 'local']);

const DEFAULT_MODELS = {
  openrouter: 'openai/text-embedding-3-small',
  openai: 'text-embedding-3-small',
  gemini: 'gemini-embedding-001',
} as const;

/**
 * The embedder the configuration names (EMBEDDING_PROVIDER). Throws EmbeddingError when it cannot
 * work as configured, so a bad setting stops start-up instead of failing every turn.
 */
export function createEmbedder(
  config: Pick<Readonly<Config>, 'embedding' | 'providers' | 'upstreamTimeoutMs'>,
  fetchImplementation?: typeof fetch,
): Embedder {
  const { embedding } = config;
  const http = { timeoutMs: config.upstreamTimeoutMs, fetch: fetchImplementation };
  switch (embedding.provider) {
    case 'words':
      if (embedding.dimensions !== WORD_VECTOR_DIMENSIONS) {
        throw new EmbeddingError(`EMBEDDING_PROVIDER=words makes ${WORD_VECTOR_DIMENSIONS}-dimensional vectors; unset EMBEDDING_DIMENSIONS (it is ${embedding.dimensions}).`, false);
      }
      return new WordVectorEmbedder();
    case 'hashing':
    case 'builtin':
      return new BuiltinEmbedder(embedding.dimensions);
    case 'openrouter':
    case 'openai': {
      const provider = embedding.provider;
      const model = embedding.model ?? DEFAULT_MODELS[provider];
      return new OpenAiCompatibleEmbedder({
        ...http,
        provider,
        baseUrl: (embedding.baseUrl ?? config.providers[provider].baseUrl).replace(/\/+$/, ''),
        model,
        dimensions: embedding.dimensions,
        apiKey: () => embedding.apiKey ?? config.providers[provider].platformKey,
        sendDimensions: /text-embedding-3/.test(model),
      });
    }
    case 'custom': {
      if (!embedding.baseUrl) throw new EmbeddingError('EMBEDDING_PROVIDER=custom needs EMBEDDING_BASE_URL (an OpenAI-compatible /embeddings server).', false);
      if (!embedding.model) throw new EmbeddingError('EMBEDDING_PROVIDER=custom needs EMBEDDING_MODEL.', false);
      return new OpenAiCompatibleEmbedder({
        ...http,
        provider: 'custom',
        baseUrl: embedding.baseUrl.replace(/\/+$/, ''),
        model: embedding.model,
        dimensions: embedding.dimensions,
        apiKey: () => embedding.apiKey,
        sendDimensions: false,
      });
    }
    case 'gemini':
      return new GeminiEmbedder({
        ...http,
        baseUrl: (embedding.baseUrl ?? config.providers.gemini.baseUrl).replace(/\/+$/, ''),
        model: embedding.model ?? DEFAULT_MODELS.gemini,
        dimensions: embedding.dimensions,
        apiKey: () => embedding.apiKey ?? config.providers.gemini.platformKey,
      });
    case 'local':
      return new LocalOnnxEmbedder({ modelDirectory: embedding.localModelDir, model: embedding.model, dimensions: embedding.dimensions });
  }
}
