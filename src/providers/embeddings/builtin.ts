import { l2Normalise, type Embedder } from './embedder.js';

/**
 * The embedder that needs nothing: feature hashing of word unigrams and character trigrams into a
 * fixed number of dimensions, with a sign hash so collisions cancel rather than pile up, then L2
 * normalisation. Deterministic and fast (~20 µs a sentence); texts that share words or word
 * pieces are similar, which is real lexical similarity, not meaning. The default in development
 * and tests; production installations should configure a model.
 */

const STOPWORDS = new Set(
  'a an and are as at be been but by do does did for from had has have he her him his i if in into is it its me my of on or our she so than that the their them then there these they this to us was we were what when where which who will with you your yours am im i\'m'.split(' '),
);

const WORD_WEIGHT = 1;
const TRIGRAM_WEIGHT = 0.35;

/** A light stemmer: enough that "likes"/"liked"/"liking" share a feature, without a dictionary. */
export function stemLite(word: string): string {
  if (word.length <= 4) return word;
  for (const suffix of ['ingly', 'edly', 'ing', 'ies', 'ied', 'ed', 'es', 'ly', 's']) {
    if (word.endsWith(suffix) && word.length - suffix.length >= 3) {
      const stem = word.slice(0, -suffix.length);
      return suffix === 'ies' || suffix === 'ied' ? `${stem}y` : stem;
    }
  }
  return word;
}

/** FNV-1a, 32 bits; `seed` gives independent hashes (slot and sign here, pseudo-random directions for unknown words in word-vectors.ts). */
export function fnv1a(text: string, seed: number): number {
  let hash = (0x811c9dc5 ^ seed) >>> 0;
  for (let index = 0; index < text.length; index += 1) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

export class BuiltinEmbedder implements Embedder {
  readonly id: string;

  constructor(readonly dimensions: number) {
    this.id = `builtin-hash-v1`;
  }

  async embed(texts: string[]): Promise<number[][]> {
    return texts.map((text) => this.embedOne(text));
  }

  embedOne(text: string): number[] {
    const vector = new Array<number>(this.dimensions).fill(0);
    const add = (feature: string, weight: number) => {
      const slot = fnv1a(feature, 0) % this.dimensions;
      const sign = fnv1a(feature, 0x9e3779b9) & 1 ? 1 : -1;
      vector[slot] = (vector[slot] ?? 0) + sign * weight;
    };
    const words = (text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).filter((word) => !STOPWORDS.has(word));
    for (const word of words) {
      const stem = stemLite(word);
      add(`w:${stem}`, WORD_WEIGHT);
      const padded = `#${stem}#`;
      for (let index = 0; index + 3 <= padded.length; index += 1) add(`t:${padded.slice(index, index + 3)}`, TRIGRAM_WEIGHT);
    }
    // An empty or all-stopword text still gets a unit vector: a zero vector has no cosine.
    if (words.length === 0) add('empty', 1);
    return l2Normalise(vector);
  }
}
