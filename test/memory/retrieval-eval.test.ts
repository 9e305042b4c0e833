import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEvalSet, measureRecall, seedEvalSet, type EvalSet } from '../../bench/memory-eval/eval-set.js';
import type { ScopeFilter } from '../../src/modules/memory/store.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * Fusion must never be worse than its best part: on the project's evaluation set (questions worded
 * unlike their answers), the default fused search finds at least as much at 1, 5 and 10 as full-text
 * search alone and as vector search alone, with the default (word-vector) embedder.
 */
describe.each(backends())('retrieval on the evaluation set (%s)', (backend) => {
  let server: TestServer;
  let set: EvalSet;
  let ids: Map<string, string>;
  let filter: ScopeFilter;

  beforeAll(async () => {
    server = await startTestServer(backend);
    const { characters, identity, memory } = server.container;
    expect(memory.embedder.id).toBe('builtin-words-glove100-v1');
    set = loadEvalSet();
    const characterId = (await characters.service.create({ name: 'Eval' }, { userId: null })).id;
    const userId = (await identity.service.registerUser('eval-user', undefined)).user.id;
    ids = await seedEvalSet(memory.service, characterId, userId, set);
    filter = { characterId, includeCore: true, userId };
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('fused recall@1/5/10 ≥ the better of full-text only and vector only', async () => {
    const memory = server.container.memory.service;
    const lexical = await measureRecall(memory, filter, ids, set, 'lexical');
    const vector = await measureRecall(memory, filter, ids, set, 'vector');
    const fused = await measureRecall(memory, filter, ids, set, 'fused');
    for (const k of ['r1', 'r5', 'r10'] as const) {
      expect(fused[k], `R@${k.slice(1)}: fused ${fused[k]} vs full-text ${lexical[k]}, vector ${vector[k]}`).toBeGreaterThanOrEqual(Math.max(lexical[k], vector[k]));
    }
    // The semantic embedder is what makes the difference on this set: it finds answers full-text cannot.
    expect(vector.r10).toBeGreaterThan(lexical.r10);
  }, 180_000);
});
