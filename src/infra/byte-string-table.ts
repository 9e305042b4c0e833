/**
 * A large, fixed set of byte strings (a tokenizer's vocabulary, a word list) as flat typed arrays:
 * every entry's bytes back to back in one `Uint8Array`, where each starts in a `Uint32Array`, and an
 * open-addressing hash table (FNV-1a over the bytes, linear probing) from bytes to the entry's index.
 *
 * Why not a `Map<string, number>`: a map of 200,000 tokens is 200,000 strings and a 200,000-entry
 * table on the JavaScript heap, which every major garbage collection marks again — a loaded server's
 * slowest turns sit beside those collections (issue 14, fifteenth pass). Here the same set is three
 * array buffers the collector does not walk, and a lookup hashes a range of a byte buffer in place
 * (no string sliced for each lookup).
 */
export class ByteStringTable {
  private constructor(
    private readonly bytes: Uint8Array,
    /** Entry i's bytes are bytes[starts[i] … starts[i + 1]). */
    private readonly starts: Uint32Array,
    /** Entry index + 1 by hash slot; 0 is an empty slot. */
    private readonly slots: Int32Array,
  ) {}

  /** Number of entries. */
  get size(): number {
    return this.starts.length - 1;
  }

  /**
   * The table of `count` entries that `write(index, target, at)` lays down one after another: each
   * call writes entry `index`'s bytes into target from `at` and returns where they end. `maxBytes`
   * bounds the bytes of all entries together. Entries must be distinct.
   */
  static build(count: number, maxBytes: number, write: (index: number, target: Uint8Array, at: number) => number): ByteStringTable {
    const bytes = new Uint8Array(maxBytes);
    const starts = new Uint32Array(count + 1);
    let end = 0;
    for (let index = 0; index < count; index += 1) {
      starts[index] = end;
      end = write(index, bytes, end);
    }
    starts[count] = end;
    let capacity = 1;
    while (capacity < count * 2) capacity *= 2;
    const table = new ByteStringTable(bytes.slice(0, end), starts, new Int32Array(capacity));
    for (let index = 0; index < count; index += 1) table.insert(index);
    return table;
  }

  /** A table of these strings' UTF-8 bytes, entry i being strings[i]. */
  static fromStrings(strings: readonly string[]): ByteStringTable {
    let maxBytes = 0;
    for (const text of strings) maxBytes += text.length * 3;
    return ByteStringTable.build(strings.length, maxBytes, (index, target, at) => at + utf8.encodeInto(strings[index]!, target.subarray(at)).written);
  }

  /** The index of the entry whose bytes are source[start … end), or -1 when there is none. */
  indexOf(source: Uint8Array, start: number, end: number): number {
    const mask = this.slots.length - 1;
    const length = end - start;
    for (let slot = hashBytes(source, start, end) & mask; ; slot = (slot + 1) & mask) {
      const entry = this.slots[slot]!;
      if (entry === 0) return -1;
      const index = entry - 1;
      const from = this.starts[index]!;
      if (this.starts[index + 1]! - from !== length) continue;
      let same = true;
      for (let offset = 0; offset < length; offset += 1) {
        if (this.bytes[from + offset] !== source[start + offset]) {
          same = false;
          break;
        }
      }
      if (same) return index;
    }
  }

  /** The index of the entry that is this string's UTF-8, or -1. */
  indexOfString(text: string): number {
    const bytes = utf8Bytes(text);
    return this.indexOf(bytes, 0, bytes.length);
  }

  /** Entry `index`'s bytes (a copy). */
  bytesOf(index: number): Uint8Array {
    return this.bytes.slice(this.starts[index], this.starts[index + 1]);
  }

  /** Entry `index` decoded as UTF-8 (a new string each call). */
  stringOf(index: number): string {
    return utf8Decoder.decode(this.bytes.subarray(this.starts[index], this.starts[index + 1]));
  }

  /** Every entry decoded, in order (for scripts, tests and benchmarks, not hot paths). */
  strings(): string[] {
    const all = new Array<string>(this.size);
    for (let index = 0; index < all.length; index += 1) all[index] = this.stringOf(index);
    return all;
  }

  private insert(index: number): void {
    const mask = this.slots.length - 1;
    let slot = hashBytes(this.bytes, this.starts[index]!, this.starts[index + 1]!) & mask;
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = index + 1;
  }
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();
/** Lookups' UTF-8, one buffer reused (grown when a string needs more; a UTF-16 unit is at most three bytes). */
let scratch = new Uint8Array(256);

/**
 * A string's UTF-8 for a lookup, in a buffer shared by every caller: valid until the next call, so read it
 * before calling again (the token counter merges a piece's bytes with `indexOf`, which does not call this).
 */
export function utf8Bytes(text: string): Uint8Array {
  if (scratch.length < text.length * 3) scratch = new Uint8Array(text.length * 3);
  return scratch.subarray(0, utf8.encodeInto(text, scratch).written);
}

/** 32-bit FNV-1a of source[start … end). */
function hashBytes(source: Uint8Array, start: number, end: number): number {
  let hash = 0x811c9dc5;
  for (let index = start; index < end; index += 1) hash = Math.imul(hash ^ source[index]!, 0x01000193);
  return hash >>> 0;
}
