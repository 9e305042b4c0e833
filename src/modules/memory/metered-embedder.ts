import type { ProviderName } from '../../config.js';
import type { Embedder } from '../../providers/embeddings/index.js';
import type { UsageRecorder } from '../usage/usage-recorder.js';

/**
 * Embedding calls to a paid provider pass the metering point like every other upstream call. The
 * embedder runs on the platform's configured key (memories are embedded for everyone alike), so the
 * platform pays; tokens are counted with the tokenizer, since the Embedder interface returns vectors only.
 */
export function meteredEmbedder(
  embedder: Embedder,
  provider: ProviderName | 'custom' | 'builtin' | 'local',
  model: string | undefined,
  usage: Pick<UsageRecorder, 'record'>,
  countTokens: (text: string) => number,
): Embedder {
  if (provider === 'builtin' || provider === 'local') return embedder;
  return {
    id: embedder.id,
    dimensions: embedder.dimensions,
    async embed(texts, purpose) {
      const vectors = await embedder.embed(texts, purpose);
      await usage.record({
        userId: undefined,
        service: 'embedding',
        key: { provider: provider === 'custom' ? 'openai' : provider, apiKey: '', source: 'platform', providerKeyId: null, masked: '' },
        model,
        promptTokens: texts.reduce((total, text) => total + countTokens(text), 0),
      });
      return vectors;
    },
  };
}
