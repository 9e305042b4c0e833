import type { MemoryScope, ScoredRow, TextHit, VectorHit } from './store.js';

/**
 * Pure ranking: reciprocal rank fusion of the vector and full-text lists, weighted per scope and
 * nudged by importance and recency. Kept free of I/O so it is tested on its own.
 */

export interface RankingSettings {
  weights: Record<MemoryScope, number>;
  minRelevance: number;
  /** RRF's k: larger flattens the difference between ranks (60 is the paper's value). */
  fusionK?: number;
}

export interface RankedMemory extends ScoredRow {
  score: number;
  /** Cosine similarity when the vector search found it. */
  similarity: number | undefined;
  /** ts_rank_cd when the full-text search found it. */
  textRank: number | undefined;
}

const RECENCY_HALF_LIFE_DAYS = 60;

export function fuseResults(vectorHits: VectorHit[], textHits: TextHit[], settings: RankingSettings, now: Date): RankedMemory[] {
  const fusionK = settings.fusionK ?? 60;
  const byId = new Map<string, RankedMemory & { fusion: number }>();
  const relevantVector = vectorHits.filter((hit) => 1 - hit.distance >= settings.minRelevance);
  relevantVector.forEach((hit, index) => {
    byId.set(hit.id, { ...hit, score: 0, similarity: 1 - hit.distance, textRank: undefined, fusion: 1 / (fusionK + index + 1) });
  });
  textHits.forEach((hit, index) => {
    const existing = byId.get(hit.id);
    const fusion = 1 / (fusionK + index + 1);
    if (existing) {
      existing.fusion += fusion;
      existing.textRank = hit.rank;
    } else {
      byId.set(hit.id, { ...hit, score: 0, similarity: undefined, textRank: hit.rank, fusion });
    }
  });
  const ranked: RankedMemory[] = [];
  for (const { fusion, ...memory } of byId.values()) {
    const ageDays = Math.max(0, (now.getTime() - memory.updatedAt.getTime()) / 86_400_000);
    const recency = 0.8 + 0.2 * Math.pow(0.5, ageDays / RECENCY_HALF_LIFE_DAYS);
    const importance = 0.75 + 0.5 * Math.min(Math.max(memory.importance, 0), 1);
    ranked.push({ ...memory, score: fusion * settings.weights[memory.scope] * importance * recency * 100 });
  }
  return ranked.sort((left, right) => right.score - left.score);
}

export const SCOPE_LABELS: Record<MemoryScope, string> = {
  core: '[core]',
  user: '[about you]',
  group: '[about this server]',
};

/** The prompt section: a header and one labelled line per memory, best first, within the token budget. */
export function buildPromptSection<T extends { scope: MemoryScope; content: string }>(
  memories: T[],
  tokenBudget: number,
  countTokens: (text: string) => number,
): { text: string; included: T[] } {
  const header = 'Things you remember from earlier conversations:';
  let used = countTokens(header) + 1;
  const lines: string[] = [];
  const included: T[] = [];
  for (const memory of memories) {
    const line = `- ${SCOPE_LABELS[memory.scope]} ${memory.content.replace(/\s+/g, ' ').trim()}`;
    const cost = countTokens(line) + 1;
    if (used + cost > tokenBudget) continue;
    lines.push(line);
    included.push(memory);
    used += cost;
  }
  return lines.length > 0 ? { text: `${header}\n${lines.join('\n')}`, included } : { text: '', included: [] };
}
