/**
 * Retrieval quality on the project's own evaluation set (bench/memory-eval/): recall@1/5/10 of
 * full-text search alone, vector search alone and the fusion, for the built-in word-vector
 * embedder and (the baseline) the hashing embedder, measured in the same run through
 * MemoryService.search on the embedded database.
 *
 *   npx tsx bench/memory-eval.ts [--grid]
 *
 * --grid also sweeps the fusion's vector weight and the expansion weight (how the defaults were chosen).
 */
import { loadEvalSet, measureRecall, seedEvalSet, type RecallAtK } from './memory-eval/eval-set.js';
import { startTestServer } from '../test/helpers/test-server.js';

const grid = process.argv.includes('--grid');
const set = loadEvalSet();
const format = (recall: RecallAtK) => `${recall.r1.toFixed(3)} | ${recall.r5.toFixed(3)} | ${recall.r10.toFixed(3)}`;

const lines = [
  `## memory-eval (retrieval quality, ${set.memories.length} memories, ${set.questions.length} questions)`,
  '',
  'One user\'s memories; each question\'s answer is worded differently from the question. Recall@k = share of questions whose answer is among the first k results of MemoryService.search (no fill-up).',
  '',
  '| embedder | retriever | R@1 | R@5 | R@10 |',
  '| --- | --- | --- | --- | --- |',
];
const sweeps: string[] = [];

for (const provider of ['hashing', 'words'] as const) {
  const server = await startTestServer('embedded', { EMBEDDING_PROVIDER: provider, LOG_LEVEL: 'warn' });
  try {
    const { characters, identity, memory } = server.container;
    const characterId = (await characters.service.create({ name: 'Eval' }, { userId: null })).id;
    const userId = (await identity.service.registerUser(`eval-${provider}`, undefined)).user.id;
    const ids = await seedEvalSet(memory.service, characterId, userId, set);
    const filter = { characterId, includeCore: true, userId };
    const label = provider === 'words' ? 'words (GloVe SIF, default)' : 'hashing (baseline)';
    lines.push(`| ${label} | full-text only | ${format(await measureRecall(memory.service, filter, ids, set, 'lexical'))} |`);
    lines.push(`| ${label} | vector only | ${format(await measureRecall(memory.service, filter, ids, set, 'vector'))} |`);
    if (provider === 'words') {
      lines.push(`| ${label} | full-text + expansion only | ${format(await measureRecall(memory.service, filter, ids, set, 'fused', { vectorWeight: 0 }))} |`);
    }
    lines.push(`| ${label} | fused (defaults) | ${format(await measureRecall(memory.service, filter, ids, set, 'fused'))} |`);
    if (grid) {
      for (const vectorWeight of [0.3, 0.4, 0.5, 0.6, 0.7]) {
        for (const expansionWeight of provider === 'words' ? [0, 0.15, 0.3, 0.5] : [0]) {
          const recall = await measureRecall(memory.service, filter, ids, set, 'fused', { vectorWeight, expansionWeight });
          sweeps.push(`| ${provider} | ${vectorWeight} | ${expansionWeight} | ${format(recall)} |`);
        }
      }
    }
  } finally {
    await server.stop();
  }
}
if (grid) lines.push('', '| embedder | vector weight | expansion weight | R@1 | R@5 | R@10 |', '| --- | --- | --- | --- | --- | --- |', ...sweeps);
process.stdout.write(`${lines.join('\n')}\n`);
