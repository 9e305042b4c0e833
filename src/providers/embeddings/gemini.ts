import { checkVectors, EmbeddingError, l2Normalise, type Embedder } from './embedder.js';
import { postJson, type EmbeddingHttpOptions } from './http.js';

/** Gemini's `:batchEmbedContents` (up to 100 requests a call), with outputDimensionality and task types. */
interface BatchEmbedResponse {
  embeddings?: Array<{ values?: unknown }>;
}

const BATCH_SIZE = 100;

export interface GeminiEmbedderOptions extends EmbeddingHttpOptions {
  baseUrl: string;
  model: string;
  dimensions: number;
  apiKey: () => string | undefined;
}

export class GeminiEmbedder implements Embedder {
  readonly id: string;
  readonly dimensions: number;

  constructor(private readonly options: GeminiEmbedderOptions) {
    this.id = `gemini:${options.model}`;
    this.dimensions = options.dimensions;
  }

  /** `apiKey`: the key the gateway resolved for this call; without it, the configured one. */
  async embed(texts: string[], purpose: 'query' | 'document' = 'document', apiKey?: string): Promise<number[][]> {
    const vectors: number[][] = [];
    for (let start = 0; start < texts.length; start += BATCH_SIZE) {
      vectors.push(...(await this.embedBatch(texts.slice(start, start + BATCH_SIZE), purpose, apiKey || this.options.apiKey())));
    }
    return vectors;
  }

  private async embedBatch(texts: string[], purpose: 'query' | 'document', apiKey: string | undefined): Promise<number[][]> {
    if (texts.length === 0) return [];
    const { baseUrl, model, dimensions } = this.options;
    if (!apiKey) throw new EmbeddingError('Gemini embeddings need EMBEDDING_API_KEY or GEMINI_API_KEY.', false);
    const modelPath = `models/${model}`;
    const taskType = purpose === 'query' ? 'RETRIEVAL_QUERY' : 'RETRIEVAL_DOCUMENT';
    if (texts.length === 1) {
      const single = { content: { parts: [{ text: texts[0] }] }, taskType, outputDimensionality: dimensions };
      const answer = (await postJson(`${baseUrl}/v1beta/${modelPath}:embedContent`, { 'x-goog-api-key': apiKey }, single, 'Gemini embeddings', this.options)) as {
        embedding?: { values?: unknown };
      };
      return checkVectors([answer.embedding?.values], 1, dimensions, 'Gemini embeddings').map(l2Normalise);
    }
    const body = {
      requests: texts.map((text) => ({
        model: modelPath,
        content: { parts: [{ text }] },
        taskType,
        outputDimensionality: dimensions,
      })),
    };
    const answer = (await postJson(`${baseUrl}/v1beta/${modelPath}:batchEmbedContents`, { 'x-goog-api-key': apiKey }, body, 'Gemini embeddings', this.options)) as BatchEmbedResponse;
    if (!Array.isArray(answer.embeddings)) throw new EmbeddingError('Gemini embeddings answered without embeddings.', false);
    // Shortened Gemini vectors are not unit length; cosine does not care, but scores stay comparable this way.
    return checkVectors(answer.embeddings.map((item) => item.values), texts.length, dimensions, 'Gemini embeddings').map(l2Normalise);
  }
}
