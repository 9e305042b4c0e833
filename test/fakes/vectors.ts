/**
 * Deterministic embeddings for the fakes. Each lower-cased word maps to a pseudo-random unit
 * direction (seeded by a hash of the word); a text is the normalised sum of its words. Equal
 * texts give equal vectors and texts sharing words have a positive cosine similarity, which is
 * what memory-retrieval tests need, without any model.
 */
import { createHash } from 'node:crypto';

const wordVectors = new Map<string, Float64Array>();

export function seededRandom(seed: number): () => number {
  // mulberry32: tiny, fast and good enough for spreading directions.
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function wordVector(word: string, dimensions: number): Float64Array {
  const key = `${dimensions}\u0000${word}`;
  const cached = wordVectors.get(key);
  if (cached !== undefined) return cached;
  const random = seededRandom(createHash('sha256').update(word).digest().readUInt32LE(0));
  const vector = new Float64Array(dimensions);
  for (let index = 0; index < dimensions; index += 1) vector[index] = random() * 2 - 1;
  wordVectors.set(key, vector);
  return vector;
}

export function embedText(text: string, dimensions: number): number[] {
  const words = text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [text];
  const sum = new Float64Array(dimensions);
  for (const word of words) {
    const vector = wordVector(word, dimensions);
    for (let index = 0; index < dimensions; index += 1) sum[index] = (sum[index] ?? 0) + (vector[index] ?? 0);
  }
  let norm = 0;
  for (const value of sum) norm += value * value;
  norm = Math.sqrt(norm) || 1;
  return Array.from(sum, (value) => value / norm);
}

/** OpenAI's `encoding_format: "base64"`: little-endian float32 bytes, base64. */
export function embeddingToBase64(vector: number[]): string {
  return Buffer.from(new Float32Array(vector).buffer).toString('base64');
}

export function cosineSimilarity(left: number[], right: number[]): number {
  let dot = 0;
  let leftNorm = 0;
  let rightNorm = 0;
  for (let index = 0; index < Math.min(left.length, right.length); index += 1) {
    const a = left[index] ?? 0;
    const b = right[index] ?? 0;
    dot += a * b;
    leftNorm += a * a;
    rightNorm += b * b;
  }
  return dot / (Math.sqrt(leftNorm * rightNorm) || 1);
}
