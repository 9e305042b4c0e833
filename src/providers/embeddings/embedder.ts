/**
 * One interface for every embedding model. `id` names the model (and its settings) so stored
 * vectors can be matched to the embedder that made them; vectors of different ids are never compared.
 */
export interface Embedder {
  id: string;
  dimensions: number;
  /** One vector per text, in order. `purpose` lets asymmetric models embed queries and documents differently. */
  embed(texts: string[], purpose?: 'query' | 'document'): Promise<number[][]>;
  /** Optional: words related to the text's words (nearest neighbours), for widening a full-text query. */
  expandQuery?(text: string, perWord: number): string[];
}

/** An embedder that calls a vendor: it takes the key per call (the gateway resolves it). */
export interface EmbeddingProvider extends Embedder {
  embed(texts: string[], purpose?: 'query' | 'document', apiKey?: string): Promise<number[][]>;
}

/** An embedding call failed, or the embedder cannot work as configured. */
export class EmbeddingError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'EmbeddingError';
  }
}

export function l2Normalise(vector: number[]): number[] {
  let sum = 0;
  for (const value of vector) sum += value * value;
  const norm = Math.sqrt(sum);
  return norm > 0 ? vector.map((value) => value / norm) : vector;
}

/** Checks a provider's answer: one finite vector of the configured size per input. */
export function checkVectors(vectors: unknown, count: number, dimensions: number, source: string): number[][] {
  if (!Array.isArray(vectors) || vectors.length !== count) {
    throw new EmbeddingError(`${source} answered ${Array.isArray(vectors) ? vectors.length : 'no'} vectors for ${count} texts.`, false);
  }
  return vectors.map((vector: unknown) => {
    if (!Array.isArray(vector) || vector.length !== dimensions || !vector.every((value) => typeof value === 'number' && Number.isFinite(value))) {
      throw new EmbeddingError(
        `${source} answered a vector of ${Array.isArray(vector) ? vector.length : 'no'} dimensions; EMBEDDING_DIMENSIONS is ${dimensions}.`,
        false,
      );
    }
    return vector as number[];
  });
}
