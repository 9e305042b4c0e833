/**
 * A byte-pair encoding's merge ranks as flat typed arrays: every token's bytes back to back in one
 * `Uint8Array`, where each starts in a `Uint32Array`, its rank in an `Int32Array`, and an
 * open-addressing hash table (FNV-1a over the bytes, linear probing) from bytes to token.
 *
 * Why not a `Map<string, number>`: o200k_base has 200,000 tokens, and a map of them is 200,000
 * strings and a 200,000-entry table on the JavaScript heap — ≈ 14 MB, over a quarter of the
 * server's heap objects, which every major garbage collection marks again (issue 14, fifteenth
 * pass: those collections are where a loaded server's slowest turns come from). Here the same
 * ranks are four array buffers, outside what the collector walks, ≈ 4 MB in all; and a lookup
 * hashes a range of a byte buffer in place instead of slicing a string for each pair it tries.
 */
export class BpeRankTable {
  private constructor(
    private readonly bytes: Uint8Array,
    /** Token i's bytes are bytes[starts[i] … starts[i + 1]). */
    private readonly starts: Uint32Array,
    private readonly ranks: Int32Array,
    /** Token index + 1 by hash slot; 0 is an empty slot. */
    private readonly slots: Int32Array,
  ) {}

  /** Number of tokens in the table. */
  get size(): number {
    return this.ranks.length;
  }

  /**
   * From tiktoken's rank file format (js-tiktoken's `bpe_ranks`): lines of
   * `! <first rank> <token> <token> …`, each token base64, ranks consecutive from the first.
   */
  static fromTiktokenRanks(bpeRanks: string): BpeRankTable {
    const lines = bpeRanks.split('\n');
    let count = 0;
    for (const line of lines) if (line) count += line.split(' ').length - 2;
    // Base64 decodes to at most three bytes a four characters: the file's length bounds the bytes.
    const bytes = new Uint8Array(Math.ceil((bpeRanks.length * 3) / 4));
    const starts = new Uint32Array(count + 1);
    const ranks = new Int32Array(count);
    let token = 0;
    let end = 0;
    for (const line of lines) {
      if (!line) continue;
      const fields = line.split(' ');
      const first = Number.parseInt(fields[1]!, 10);
      for (let index = 2; index < fields.length; index += 1) {
        starts[token] = end;
        end = decodeBase64Into(fields[index]!, bytes, end);
        ranks[token] = first + index - 2;
        token += 1;
      }
    }
    starts[count] = end;
    let capacity = 1;
    while (capacity < count * 2) capacity *= 2;
    const table = new BpeRankTable(bytes.slice(0, end), starts, ranks, new Int32Array(capacity));
    for (let index = 0; index < count; index += 1) table.insert(index);
    return table;
  }

  /** The rank of the token whose bytes are source[start … end), or -1 when no token has them. */
  rank(source: Uint8Array, start: number, end: number): number {
    const mask = this.slots.length - 1;
    const length = end - start;
    for (let slot = hashBytes(source, start, end) & mask; ; slot = (slot + 1) & mask) {
      const entry = this.slots[slot]!;
      if (entry === 0) return -1;
      const token = entry - 1;
      const from = this.starts[token]!;
      if (this.starts[token + 1]! - from !== length) continue;
      let same = true;
      for (let offset = 0; offset < length; offset += 1) {
        if (this.bytes[from + offset] !== source[start + offset]) {
          same = false;
          break;
        }
      }
      if (same) return this.ranks[token]!;
    }
  }

  /** Token `index`'s bytes (a copy), for tests. */
  tokenBytes(index: number): Uint8Array {
    return this.bytes.slice(this.starts[index], this.starts[index + 1]);
  }

  private insert(token: number): void {
    const mask = this.slots.length - 1;
    let slot = hashBytes(this.bytes, this.starts[token]!, this.starts[token + 1]!) & mask;
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = token + 1;
  }
}

/** 32-bit FNV-1a of source[start … end). */
function hashBytes(source: Uint8Array, start: number, end: number): number {
  let hash = 0x811c9dc5;
  for (let index = start; index < end; index += 1) hash = Math.imul(hash ^ source[index]!, 0x01000193);
  return hash >>> 0;
}

const BASE64_VALUES = new Int8Array(128).fill(-1);
for (const [value, character] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].entries()) {
  BASE64_VALUES[character.charCodeAt(0)] = value;
}

/** Decodes standard base64 (with or without padding) into target from `at`; returns the end. */
function decodeBase64Into(text: string, target: Uint8Array, at: number): number {
  let bits = 0;
  let held = 0;
  let end = at;
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code === 61) break; // '=': padding
    const value = code < 128 ? BASE64_VALUES[code]! : -1;
    if (value < 0) throw new Error(`not base64: ${JSON.stringify(text)}`);
    bits = (bits << 6) | value;
    held += 6;
    if (held >= 8) {
      held -= 8;
      target[end] = (bits >>> held) & 0xff;
      end += 1;
    }
  }
  return end;
}
