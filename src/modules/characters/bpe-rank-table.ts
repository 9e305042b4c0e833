import { ByteStringTable } from '../../infra/byte-string-table.js';

/**
 * A byte-pair encoding's merge ranks: its tokens' bytes in a `ByteStringTable` (flat typed arrays,
 * not a 200,000-string `Map` on the JavaScript heap — ≈ 14 MB that every major garbage collection
 * marked again; see that class), and each token's rank beside it.
 */
export class BpeRankTable {
  private constructor(
    private readonly tokens: ByteStringTable,
    private readonly ranks: Int32Array,
  ) {}

  /** Number of tokens in the table. */
  get size(): number {
    return this.tokens.size;
  }

  /**
   * From tiktoken's rank file format (js-tiktoken's `bpe_ranks`): lines of
   * `! <first rank> <token> <token> …`, each token base64, ranks consecutive from the first.
   */
  static fromTiktokenRanks(bpeRanks: string): BpeRankTable {
    const encoded: string[] = [];
    const rankList: number[] = [];
    for (const line of bpeRanks.split('\n')) {
      if (!line) continue;
      const fields = line.split(' ');
      const first = Number.parseInt(fields[1]!, 10);
      for (let index = 2; index < fields.length; index += 1) {
        encoded.push(fields[index]!);
        rankList.push(first + index - 2);
      }
    }
    // Base64 decodes to at most three bytes a four characters: the file's length bounds the bytes.
    const tokens = ByteStringTable.build(encoded.length, Math.ceil((bpeRanks.length * 3) / 4), (index, target, at) => decodeBase64Into(encoded[index]!, target, at));
    return new BpeRankTable(tokens, Int32Array.from(rankList));
  }

  /** The rank of the token whose bytes are source[start … end), or -1 when no token has them. */
  rank(source: Uint8Array, start: number, end: number): number {
    const index = this.tokens.indexOf(source, start, end);
    return index < 0 ? -1 : this.ranks[index]!;
  }

  /** Token `index`'s bytes (a copy), for tests. */
  tokenBytes(index: number): Uint8Array {
    return this.tokens.bytesOf(index);
  }
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
