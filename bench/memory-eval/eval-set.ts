import { readFileSync } from 'node:fs';
import { projectFile } from '../../src/infra/project-files.js';
import type { MemoryService } from '../../src/modules/memory/service.js';
import type { ScopeFilter } from '../../src/modules/memory/store.js';

/**
 * The project's own retrieval evaluation set: 120 memories of one user (memories.tsv: key, text)
 * and 123 questions (questions.tsv: the key of the memory that answers it, the question), written
 * so the answer's wording differs from the question's ("What is my pet called?" → "a ferret named
 * Pico"). Recall@k is the share of questions whose answer is among the first k results.
 */

export interface EvalSet {
  memories: Array<{ key: string; content: string }>;
  questions: Array<{ key: string; question: string }>;
}

const rowsOf = (file: string) =>
  readFileSync(projectFile('bench', 'memory-eval', file), 'utf8')
    .split('\n')
    .filter((line) => line.trim().length > 0)
    .map((line) => {
      const tab = line.indexOf('\t');
      return [line.slice(0, tab), line.slice(tab + 1)] as const;
    });

export function loadEvalSet(): EvalSet {
  return {
    memories: rowsOf('memories.tsv').map(([key, content]) => ({ key, content })),
    questions: rowsOf('questions.tsv').map(([key, question]) => ({ key, question })),
  };
}

/** Stores the set's memories as user-scope memories of one user; returns each key's memory id. */
export async function seedEvalSet(memory: MemoryService, characterId: string, userId: string, set: EvalSet): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  for (const entry of set.memories) {
    const row = await memory.create({ characterId, scope: 'user', userId, guildId: null, content: entry.content, importance: 0.5 });
    ids.set(entry.key, row.id);
  }
  return ids;
}

export type Retriever = 'lexical' | 'vector' | 'fused';
export interface RecallAtK {
  r1: number;
  r5: number;
  r10: number;
}

export interface EvalOptions {
  vectorWeight?: number;
  expansionWeight?: number;
}

/** Recall@1/5/10 of one retriever over the set (no fill-up: only what the retriever itself found). */
export async function measureRecall(memory: MemoryService, filter: ScopeFilter, ids: Map<string, string>, set: EvalSet, retriever: Retriever, options: EvalOptions = {}): Promise<RecallAtK> {
  let r1 = 0;
  let r5 = 0;
  let r10 = 0;
  for (const question of set.questions) {
    const results = await memory.search({
      filter,
      query: question.question,
      limit: 10,
      fill: false,
      only: retriever === 'lexical' ? 'text' : retriever === 'vector' ? 'vector' : undefined,
      // Lexical alone is the full-text search as it was: the query's own words, no expansion.
      expansionWeight: retriever === 'lexical' ? 0 : options.expansionWeight,
      vectorWeight: options.vectorWeight,
    });
    const position = results.findIndex((result) => result.id === ids.get(question.key));
    if (position === 0) r1 += 1;
    if (position >= 0 && position < 5) r5 += 1;
    if (position >= 0 && position < 10) r10 += 1;
  }
  const total = set.questions.length;
  return { r1: r1 / total, r5: r5 / total, r10: r10 / total };
}
