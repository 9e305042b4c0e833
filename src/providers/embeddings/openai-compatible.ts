import { checkVectors, EmbeddingError, l2Normalise, type Embedder } from './embedder.js';
import { postJson, type EmbeddingHttpOptions } from './http.js';

/** OpenAI's `/embeddings` shape, spoken by OpenAI, OpenRouter and local embedding servers. */
interface EmbeddingsResponse {
  data?: Array<{ index?: number; embedding?: unknown }>;
}

const BATCH_SIZE = 96;

export interface OpenAiCompatibleEmbedderOptions extends EmbeddingHttpOptions {
  /** Names the vendor in ids and messages: openrouter, openai, custom. */
  provider: string;
  baseUrl: string;
  model: string;
  dimensions: number;
  /** Read when a call is made, so a key added later is used without a restart. */
  apiKey: () => string | undefined;
  /** Send `dimensions` (models with shortenable output, e.g. text-embedding-3-*). */
  sendDimensions: boolean;
}

export class OpenAiCompatibleEmbedder implements Embedder {
  readonly id: string;
  readonly dimensions: number;

  constructor(private readonly options: OpenAiCompatibleEmbedderOptions) {
    this.id = `${options.provider}:${options.model}`;
    this.dimensions = options.dimensions;
  }

  /** `apiKey`: the key the gateway resolved for this call; without it, the configured one. */
  async embed(texts: string[], _purpose?: 'query' | 'document', apiKey?: string): Promise<number[][]> {
    const vectors: number[][] = [];
    for (let start = 0; start < texts.length; start += BATCH_SIZE) {
      vectors.push(...(await this.embedBatch(texts.slice(start, start + BATCH_SIZE), apiKey || this.options.apiKey())));
    }
    return vectors;
  }

  private async embedBatch(texts: string[], apiKey: string | undefined): Promise<number[][]> {
    if (texts.length === 0) return [];
    const { provider, baseUrl, model, dimensions, sendDimensions } = this.options;
    const headers: Record<string, string> = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
    const body = { model, input: texts, encoding_format: 'float', ...(sendDimensions ? { dimensions } : {}) };
    const answer = (await postJson(`${baseUrl}/embeddings`, headers, body, `${provider} embeddings`, this.options)) as EmbeddingsResponse;
    if (!Array.isArray(answer.data)) throw new EmbeddingError(`${provider} embeddings answered without data.`, false);
    const ordered = [...answer.data].sort((left, right) => (left.index ?? 0) - (right.index ?? 0)).map((item) => item.embedding);
    return checkVectors(ordered, texts.length, dimensions, `${provider} embeddings`).map(l2Normalise);
  }
}
