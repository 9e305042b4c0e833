import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../config.js';
import { startGeminiFake, startOpenRouterFake, type OpenAiCompatibleFake } from '../../../test/fakes/index.js';
import { BuiltinEmbedder } from './builtin.js';
import { EmbeddingError } from './embedder.js';
import { createEmbedder } from './index.js';
import { LocalOnnxEmbedder } from './local.js';

const cosine = (left: number[], right: number[]) => left.reduce((sum, value, index) => sum + value * (right[index] ?? 0), 0);

describe('builtin embedder', () => {
  const embedder = new BuiltinEmbedder(384);

  it('is deterministic, unit length and of the configured size', async () => {
    const [first, second] = await embedder.embed(['The user loves hiking in the Alps.', 'The user loves hiking in the Alps.']);
    expect(first).toHaveLength(384);
    expect(first).toEqual(second);
    expect(cosine(first!, first!)).toBeCloseTo(1, 6);
    const [empty] = await embedder.embed(['']);
    expect(cosine(empty!, empty!)).toBeCloseTo(1, 6);
  });

  it('gives real lexical similarity, word forms included', async () => {
    const [memory, related, unrelated] = await embedder.embed(['The user loves hiking in the Alps.', 'Do you remember where I like to hike?', 'Quarterly tax filing deadlines for companies.']);
    expect(cosine(memory!, related!)).toBeGreaterThan(0.2);
    expect(cosine(memory!, related!)).toBeGreaterThan(cosine(memory!, unrelated!) + 0.1);
  });
});

describe('vendor embedders against the fakes', () => {
  let openrouter: OpenAiCompatibleFake;
  let gemini: Awaited<ReturnType<typeof startGeminiFake>>;

  beforeAll(async () => {
    openrouter = await startOpenRouterFake({ validKeys: ['or-key'] });
    gemini = await startGeminiFake({ validKeys: ['g-key'] });
  });
  afterAll(async () => {
    await openrouter?.close();
    await gemini?.close();
  });

  it('OpenAI-compatible /embeddings: batches, sends dimensions, checks the size', async () => {
    const config = loadConfig({ EMBEDDING_PROVIDER: 'openrouter', EMBEDDING_DIMENSIONS: '256', OPENROUTER_BASE_URL: openrouter.url, OPENROUTER_API_KEY: 'or-key' });
    const embedder = createEmbedder(config);
    expect(embedder.id).toBe('openrouter:openai/text-embedding-3-small');
    const vectors = await embedder.embed(['hello world', 'hello there']);
    expect(vectors).toHaveLength(2);
    expect(vectors[0]).toHaveLength(256);
    const request = openrouter.lastRequest('/embeddings');
    expect(request?.body).toMatchObject({ model: 'openai/text-embedding-3-small', input: ['hello world', 'hello there'], dimensions: 256 });
    expect(request?.headers.authorization).toBe('Bearer or-key');

    const wrongSize = createEmbedder(loadConfig({ EMBEDDING_PROVIDER: 'custom', EMBEDDING_MODEL: 'm', EMBEDDING_BASE_URL: openrouter.url, EMBEDDING_API_KEY: 'or-key', EMBEDDING_DIMENSIONS: '64' }));
    await expect(wrongSize.embed(['x'])).rejects.toThrow(/EMBEDDING_DIMENSIONS is 64/);
    const badKey = createEmbedder(loadConfig({ EMBEDDING_PROVIDER: 'openai', OPENAI_BASE_URL: openrouter.url, OPENAI_API_KEY: 'wrong' }));
    await expect(badKey.embed(['x'])).rejects.toThrow(/HTTP 401/);
  });

  it('Gemini :embedContent and :batchEmbedContents with outputDimensionality and task types', async () => {
    const embedder = createEmbedder(loadConfig({ EMBEDDING_PROVIDER: 'gemini', EMBEDDING_DIMENSIONS: '768', GEMINI_BASE_URL: gemini.url, GEMINI_API_KEY: 'g-key' }));
    const [single] = await embedder.embed(['what do I like?'], 'query');
    expect(single).toHaveLength(768);
    expect(gemini.lastRequest(':embedContent')?.body).toMatchObject({ taskType: 'RETRIEVAL_QUERY', outputDimensionality: 768 });
    const batch = await embedder.embed(['a b', 'c d', 'e f']);
    expect(batch).toHaveLength(3);
    const batchBody = gemini.lastRequest(':batchEmbedContents')?.body as { requests: unknown[] };
    expect(batchBody.requests).toHaveLength(3);
    expect(batchBody.requests[0]).toMatchObject({ model: 'models/gemini-embedding-001', taskType: 'RETRIEVAL_DOCUMENT' });
  });
});

describe('local ONNX embedder', () => {
  it('refuses clearly, without any download, when the model is not on disk', async () => {
    const fetchSpy = vi.spyOn(globalThis, 'fetch');
    expect(() => new LocalOnnxEmbedder({ modelDirectory: undefined, model: 'x', dimensions: 384 })).toThrow(/EMBEDDING_LOCAL_MODEL_DIR/);
    const directory = mkdtempSync(path.join(tmpdir(), 'anima-models-'));
    expect(() => createEmbedder(loadConfig({ EMBEDDING_PROVIDER: 'local', EMBEDDING_MODEL: 'all-MiniLM-L6-v2', EMBEDDING_LOCAL_MODEL_DIR: directory }))).toThrow(EmbeddingError);
    expect(() => new LocalOnnxEmbedder({ modelDirectory: directory, model: 'all-MiniLM-L6-v2', dimensions: 384 })).toThrow(/never downloaded/);
    // A folder with a config but no weights: transformers.js is told to stay local and fails to load.
    mkdirSync(path.join(directory, 'broken'));
    writeFileSync(path.join(directory, 'broken', 'config.json'), JSON.stringify({ model_type: 'bert' }));
    const broken = new LocalOnnxEmbedder({ modelDirectory: directory, model: 'broken', dimensions: 384 });
    await expect(broken.embed(['hello'])).rejects.toThrow(EmbeddingError);
    expect(fetchSpy).not.toHaveBeenCalled();
    fetchSpy.mockRestore();
  }, 60_000);
});
