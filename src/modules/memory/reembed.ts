import { eq } from 'drizzle-orm';
import type { Container } from '../../container.js';
import { memories } from '../../infra/db/schema.js';
import * as store from './store.js';

export interface ReembedProgress {
  done: number;
  /** Rows still to do when the run started (this run's total). */
  total: number;
  batchMilliseconds: number;
}

export interface ReembedOptions {
  batchSize?: number;
  onProgress?: (progress: ReembedProgress) => void;
  signal?: AbortSignal;
}

/**
 * Re-embeds every memory whose vector was made by another embedder (or is missing) with the
 * configured one. Each batch commits on its own, so an interrupted run loses at most one batch
 * and the next run continues with what is left (rows already done no longer match the query).
 * Ensures the HNSW index for the configured dimension first.
 */
export async function reembedMemories(container: Pick<Container, 'db' | 'memory'>, options: ReembedOptions = {}): Promise<{ reembedded: number; remaining: number }> {
  const batchSize = Math.min(Math.max(options.batchSize ?? 64, 1), 2048);
  const { db } = container;
  const embedder = container.memory.embedder;
  const space = { model: embedder.id, dimensions: embedder.dimensions };
  await store.ensureVectorIndex(db, embedder.dimensions);
  const total = await store.countStaleEmbeddings(db, space);
  let done = 0;
  while (!options.signal?.aborted) {
    const startedAt = performance.now();
    const batch = await store.staleEmbeddingBatch(db, space, batchSize);
    if (batch.length === 0) break;
    const vectors = await embedder.embed(
      batch.map((row) => row.content),
      'document',
    );
    await db.transaction(async (transaction) => {
      for (const [index, row] of batch.entries()) {
        const vector = vectors[index]!;
        await transaction
          .update(memories)
          .set({ embedding: vector, embeddingModel: space.model, embeddingDimensions: vector.length })
          .where(eq(memories.id, row.id));
      }
    });
    done += batch.length;
    options.onProgress?.({ done, total, batchMilliseconds: Math.round(performance.now() - startedAt) });
  }
  return { reembedded: done, remaining: await store.countStaleEmbeddings(db, space) };
}
