import { Tiktoken } from 'js-tiktoken/lite';
import o200kBase from 'js-tiktoken/ranks/o200k_base';
import { BoundedMap } from '../../infra/bounded-map.js';
import { utf8Bytes } from '../../infra/byte-string-table.js';
import { BpeRankTable } from './bpe-rank-table.js';

/**
 * Token counts for prompt budgets. o200k_base is the encoding of the GPT-4o family, the default
 * chat model; other vendors' tokenizers differ by a few percent, which budgets absorb. The ranks
 * ship inside js-tiktoken, so nothing is downloaded.
 *
 * Counting needs only the merge ranks, not js-tiktoken's encoder: building that encoder (a second
 * map from rank to bytes, keys as comma-joined byte lists, a 200,000-key object on the way) took
 * ≈ 600 ms of event loop on the first turn after every start. The ranks here are a flat table of
 * the tokens' bytes (`BpeRankTable`: typed arrays, nothing for the garbage collector to walk), built
 * once (`warmTokenCounter` at start-up); the merge below is tiktoken's own (`_byte_pair_merge`), and
 * `token-counter.test.ts` holds every count equal to js-tiktoken's.
 *
 * A byte-pair merge is quadratic in the length of one pre-tokenized piece, and a piece never spans
 * a change between whitespace and non-whitespace: 2,000 letters without a space took seconds of
 * event loop. So runs longer than LONG_RUN characters (and whole texts over EXACT_TEXT_MAX) are
 * estimated (3 characters a token, an over-estimate for budgets), and everything else is counted
 * exactly, in time linear in the text.
 */
let ranks: BpeRankTable | undefined;
/** The encoding's pre-tokenizer (its `pat_str`), compiled once. */
let splitter: RegExp | undefined;
/** js-tiktoken's encoder, built only for tests that compare with it. */
let referenceEncoder: Tiktoken | undefined;

/** Builds the rank table and the pre-tokenizer now rather than on the first turn. */
export function warmTokenCounter(): void {
  countTokens('warm');
}

/**
 * Tokens of one piece (its UTF-8 bytes, bytes[0 … length)) by byte-pair merging: start from single
 * bytes and merge, lowest rank first, the adjacent pair whose joined bytes are a token, until no
 * pair is — tiktoken's `_byte_pair_merge`. The number of parts left is the count.
 */
function mergedCount(bytes: Uint8Array, length: number, table: BpeRankTable): number {
  if (length < 2) return length;
  // boundaries[i] starts part i; rankAt[i] is the rank of parts i and i + 1 joined (Infinity: not a token).
  const boundaries: number[] = [];
  for (let index = 0; index <= length; index += 1) boundaries.push(index);
  const rankOf = (part: number): number => {
    if (part + 2 >= boundaries.length) return Infinity;
    const rank = table.rank(bytes, boundaries[part]!, boundaries[part + 2]!);
    return rank < 0 ? Infinity : rank;
  };
  const rankAt: number[] = [];
  for (let part = 0; part < boundaries.length - 1; part += 1) rankAt.push(rankOf(part));
  for (;;) {
    let lowest = Infinity;
    let at = -1;
    for (let part = 0; part < rankAt.length; part += 1) {
      if (rankAt[part]! < lowest) {
        lowest = rankAt[part]!;
        at = part;
      }
    }
    if (at < 0) break;
    boundaries.splice(at + 1, 1);
    rankAt.splice(at + 1, 1);
    rankAt[at] = rankOf(at);
    if (at > 0) rankAt[at - 1] = rankOf(at - 1);
  }
  return boundaries.length - 1;
}

/**
 * Tokens per pre-tokenized piece. The byte-pair merge works on one piece at a time and never across
 * pieces, so a text's count is the sum of its pieces' counts, and words recur: a chat turn's text is
 * mostly pieces seen before (issue 14: counting the turn's new texts was ≈ 6 % of a turn's CPU,
 * nearly all of it js-tiktoken's per-call set-up and per-piece byte copies). Bounded, so a flood of
 * distinct pieces only costs misses.
 */
const PIECE_MEMO_ENTRIES = 50_000;
const pieceCounts = new BoundedMap<string, number>(PIECE_MEMO_ENTRIES);

const LONG_RUN = /\S{41,}|\s{41,}/g;
const EXACT_TEXT_MAX = 100_000;
const CHARS_PER_ESTIMATED_TOKEN = 3;

export function countTokens(text: string): number {
  if (text.length === 0) return 0;
  if (text.length > EXACT_TEXT_MAX) return Math.ceil(text.length / CHARS_PER_ESTIMATED_TOKEN);
  let estimated = 0;
  const rest = text.replace(LONG_RUN, (run) => {
    estimated += Math.ceil(run.length / CHARS_PER_ESTIMATED_TOKEN);
    return ' ';
  });
  return (rest.trim() === '' ? 0 : countPieces(rest)) + estimated;
}

/**
 * Exactly `encode(text, [], []).length` (special-token text counted as ordinary text, never
 * refused): the text split as the encoder splits it, each piece's count remembered. A piece
 * encoded alone splits into itself — the pattern's only context-dependent part is the trailing
 * `(?!\S)`, which holds at the end of a string — so its count alone is its count in the text.
 * `token-counter.test.ts` holds the two equal on real texts.
 */
function countPieces(text: string): number {
  splitter ??= new RegExp(o200kBase.pat_str, 'gu');
  splitter.lastIndex = 0;
  let total = 0;
  for (let match = splitter.exec(text); match !== null; match = splitter.exec(text)) {
    const piece = match[0];
    let count = pieceCounts.get(piece);
    if (count === undefined) {
      count = pieceTokenCount(piece);
      pieceCounts.set(piece, count);
    }
    total += count;
  }
  return total;
}

/** js-tiktoken's own count, for tests that hold countTokens to it. */
export function encoderTokenCount(text: string): number {
  referenceEncoder ??= new Tiktoken(o200kBase);
  return referenceEncoder.encode(text, [], []).length;
}

/** The count of one pre-tokenized piece (no memo): one token, or what the merge leaves. Exported for tests. */
export function pieceTokenCount(piece: string): number {
  const table = (ranks ??= BpeRankTable.fromTiktokenRanks(o200kBase.bpe_ranks));
  const bytes = utf8Bytes(piece);
  return table.rank(bytes, 0, bytes.length) >= 0 ? 1 : mergedCount(bytes, bytes.length, table);
}
