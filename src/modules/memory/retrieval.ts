import type { MemoryScope, ScoredRow, TextHit, VectorHit } from './store.js';

/**
 * Pure ranking: min–max normalised linear fusion of the vector and full-text lists, then scope
 * weights, importance and recency. Kept free of I/O so it is tested on its own.
 *
 * Why not reciprocal rank fusion: RRF gives the n-th item of a noisy list as much as the n-th of a
 * good one, so a weak retriever drags the fusion below the strong one (measured: hashing vectors
 * fused by RRF found less than full-text alone). Score fusion keeps how sure each list is: the
 * vector list's cosine is scaled to [0, 1] between its best and its worst candidate, the full-text
 * rank divided by its best (a non-match scores 0), and the two are mixed by `vectorWeight`.
 */

export interface RankingSettings {
  weights: Record<MemoryScope, number>;
  /** Cosine similarity from which a vector match counts as relevant (full-text matches of the query's own words always do). */
  minRelevance: number;
  /** Weight of the vector list in [0, 1]; the full-text list gets the rest. */
  vectorWeight: number;
  /** Drop what is not relevant instead of ranking it last (a caller's explicit min_relevance). */
  dropIrrelevant?: boolean;
}

export interface RankedMemory extends ScoredRow {
  score: number;
  /** Cosine similarity when the vector search found it. */
  similarity: number | undefined;
  /** The full-text rank (query words + weighted expansion) when the full-text search found it. */
  textRank: number | undefined;
  /** Above the relevance threshold, or matching a word of the query; others only fill the list up. */
  relevant: boolean;
}

const RECENCY_HALF_LIFE_DAYS = 60;

export function fuseResults(vectorHits: VectorHit[], textHits: TextHit[], settings: RankingSettings, now: Date): RankedMemory[] {
  // Built field by field, not by spreading the hits: recall ranks up to 80 candidates on every chat
  // turn, and three object spreads a candidate were most of this function's time (issue 14).
  const byId = new Map<string, Fused>();
  const vectorWeight = Math.min(Math.max(settings.vectorWeight, 0), 1);
  const { best, worst } = similarityBounds(vectorHits);
  for (const hit of vectorHits) {
    const similarity = 1 - hit.distance;
    const normalised = best > worst ? (similarity - worst) / (best - worst) : 1;
    byId.set(hit.id, { row: hit, similarity, textRank: undefined, relevant: similarity >= settings.minRelevance, fusion: vectorWeight * normalised });
  }
  const bestText = textHits.reduce((max, hit) => Math.max(max, hit.rank), 0);
  for (const hit of textHits) {
    const fusion = (1 - vectorWeight) * (bestText > 0 ? hit.rank / bestText : 1);
    const existing = byId.get(hit.id);
    if (existing) {
      existing.fusion += fusion;
      existing.textRank = hit.rank;
      existing.relevant ||= hit.matched;
    } else {
      byId.set(hit.id, { row: hit, similarity: undefined, textRank: hit.rank, relevant: hit.matched, fusion });
    }
  }
  const nowMs = now.getTime();
  const ranked: RankedMemory[] = [];
  for (const { row, similarity, textRank, relevant, fusion } of byId.values()) {
    if (settings.dropIrrelevant && !relevant) continue;
    const ageDays = Math.max(0, (nowMs - row.updatedAt.getTime()) / 86_400_000);
    const recency = 0.8 + 0.2 * Math.pow(0.5, ageDays / RECENCY_HALF_LIFE_DAYS);
    const importance = 0.75 + 0.5 * Math.min(Math.max(row.importance, 0), 1);
    ranked.push({
      id: row.id,
      scope: row.scope,
      content: row.content,
      importance: row.importance,
      userId: row.userId,
      guildId: row.guildId,
      createdAt: row.createdAt,
      updatedAt: row.updatedAt,
      score: fusion * settings.weights[row.scope] * importance * recency,
      similarity,
      textRank,
      relevant,
    });
  }
  // The threshold orders rather than drops: relevant memories first, the rest after them.
  return ranked.sort((left, right) => Number(right.relevant) - Number(left.relevant) || right.score - left.score);
}

/** The best and the worst cosine similarity of a vector list: the bounds of its min–max normalisation. */
export function similarityBounds(vectorHits: VectorHit[]): { best: number; worst: number } {
  let best = -Infinity;
  let worst = Infinity;
  for (const hit of vectorHits) {
    best = Math.max(best, 1 - hit.distance);
    worst = Math.min(worst, 1 - hit.distance);
  }
  return { best, worst };
}

interface Fused {
  row: ScoredRow;
  similarity: number | undefined;
  textRank: number | undefined;
  relevant: boolean;
  fusion: number;
}

export const SCOPE_LABELS: Record<MemoryScope, string> = {
  core: '[core]',
  user: '[about you]',
  group: '[about this server]',
};

/** The prompt section: a header and one labelled line per memory, best first, within the token budget; `tokens` is its count (header, lines and line breaks). */
export function buildPromptSection<T extends { scope: MemoryScope; content: string }>(
  memories: T[],
  tokenBudget: number,
  countTokens: (text: string) => number,
): { text: string; included: T[]; tokens: number } {
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
  return lines.length > 0 ? { text: `${header}\n${lines.join('\n')}`, included, tokens: used } : { text: '', included: [], tokens: 0 };
}
