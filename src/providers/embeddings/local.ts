import { existsSync } from 'node:fs';
import path from 'node:path';
import { EmbeddingError, checkVectors, type Embedder } from './embedder.js';

/**
 * A local ONNX sentence-embedding model run by transformers.js, loaded only from
 * EMBEDDING_LOCAL_MODEL_DIR/<EMBEDDING_MODEL> (config.json, tokenizer.json, onnx/model.onnx).
 * Remote models are switched off before anything loads, so a missing model is a clear error and
 * never a download.
 */

type FeatureExtractor = (texts: string[], options: { pooling: 'mean'; normalize: boolean }) => Promise<{ tolist(): unknown }>;

export interface LocalEmbedderOptions {
  modelDirectory: string | undefined;
  model: string | undefined;
  dimensions: number;
}

export class LocalOnnxEmbedder implements Embedder {
  readonly id: string;
  readonly dimensions: number;
  private extractor: Promise<FeatureExtractor> | undefined;
  private readonly modelDirectory: string;
  private readonly model: string;

  constructor(options: LocalEmbedderOptions) {
    if (!options.modelDirectory) {
      throw new EmbeddingError('EMBEDDING_PROVIDER=local needs EMBEDDING_LOCAL_MODEL_DIR: a directory holding the model folder.', false);
    }
    if (!options.model) {
      throw new EmbeddingError('EMBEDDING_PROVIDER=local needs EMBEDDING_MODEL: the model folder name inside EMBEDDING_LOCAL_MODEL_DIR.', false);
    }
    const modelPath = path.resolve(options.modelDirectory, options.model);
    if (!existsSync(path.join(modelPath, 'config.json'))) {
      throw new EmbeddingError(
        `No local embedding model at ${modelPath} (config.json missing). Models are never downloaded at run time: copy the model files there first.`,
        false,
      );
    }
    this.modelDirectory = path.resolve(options.modelDirectory);
    this.model = options.model;
    this.id = `local:${options.model}`;
    this.dimensions = options.dimensions;
  }

  async embed(texts: string[]): Promise<number[][]> {
    if (texts.length === 0) return [];
    const extractor = await this.load();
    const output = await extractor(texts, { pooling: 'mean', normalize: true });
    return checkVectors(output.tolist(), texts.length, this.dimensions, `local model ${this.model}`);
  }

  private load(): Promise<FeatureExtractor> {
    this.extractor ??= (async () => {
      const transformers = await import('@huggingface/transformers');
      transformers.env.allowRemoteModels = false;
      transformers.env.allowLocalModels = true;
      transformers.env.localModelPath = `${this.modelDirectory}${path.sep}`;
      try {
        const extractor = await transformers.pipeline('feature-extraction', this.model, { local_files_only: true, dtype: 'fp32' });
        return extractor;
      } catch (error) {
        throw new EmbeddingError(`The local embedding model ${this.model} could not be loaded: ${error instanceof Error ? error.message : String(error)}`, false, { cause: error });
      }
    })();
    // A failed load is not cached: fixing the files fixes the next call.
    this.extractor.catch(() => {
      this.extractor = undefined;
    });
    return this.extractor;
  }
}
