import { describe, expect, it } from 'vitest';
import type { UsageRecord } from '../usage/usage-recorder.js';
import { meteredEmbedder } from './metered-embedder.js';

const inner = { id: 'openai:text-embedding-3-small:384', dimensions: 3, embed: async (texts: string[]) => texts.map(() => [1, 0, 0]) };

describe('meteredEmbedder', () => {
  it('records platform-paid embedding usage with token counts for paid providers', async () => {
    const records: UsageRecord[] = [];
    const embedder = meteredEmbedder(inner, 'openai', 'text-embedding-3-small', { record: async (record) => void records.push(record) }, (text) => text.split(' ').length);
    expect(await embedder.embed(['one two', 'three'])).toHaveLength(2);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ service: 'embedding', model: 'text-embedding-3-small', promptTokens: 3, key: { provider: 'openai', source: 'platform' } });
    expect(embedder.id).toBe(inner.id);
  });

  it('leaves the built-in and local embedders unmetered (nothing is paid)', async () => {
    const records: UsageRecord[] = [];
    const recorder = { record: async (record: UsageRecord) => void records.push(record) };
    await meteredEmbedder(inner, 'builtin', undefined, recorder, () => 1).embed(['x']);
    await meteredEmbedder(inner, 'local', undefined, recorder, () => 1).embed(['x']);
    expect(records).toEqual([]);
  });
});
