import { Tiktoken } from 'js-tiktoken/lite';
import o200kBase from 'js-tiktoken/ranks/o200k_base';
import { BoundedMap } from '../../infra/bounded-map.js';

/**
 * Token counts for prompt budgets. o200k_base is the encoding of the GPT-4o family, the default
 * chat model; other vendors' tokenizers differ by a few percent, which budgets absorb. The ranks
 * ship inside js-tiktoken, so nothing is downloaded; the encoder is built once (it takes ~100 ms).
 *
 * js-tiktoken's byte-pair merge is quadratic in the length of one pre-tokenized piece, and a piece
 * never spans a change between whitespace and non-whitespace: 2,000 letters without a space took
 * seconds of event loop. So runs longer than LONG_RUN characters (and whole texts over
 * EXACT_TEXT_MAX) are estimated (3 characters a token, an over-estimate for budgets), and
 * everything else is counted exactly, in time linear in the text.
 */
let encoder: Tiktoken | undefined;
/** The encoding's pre-tokenizer (its `pat_str`), compiled once: js-tiktoken compiles it again on every `encode`. */
let splitter: RegExp | undefined;

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
  encoder ??= new Tiktoken(o200kBase);
  splitter ??= new RegExp(o200kBase.pat_str, 'gu');
  splitter.lastIndex = 0;
  let total = 0;
  for (let match = splitter.exec(text); match !== null; match = splitter.exec(text)) {
    const piece = match[0];
    let count = pieceCounts.get(piece);
    if (count === undefined) {
      count = encoder.encode(piece, [], []).length;
      pieceCounts.set(piece, count);
    }
    total += count;
  }
  return total;
}

/** js-tiktoken's own count, for tests that hold countTokens to it. */
export function encoderTokenCount(text: string): number {
  encoder ??= new Tiktoken(o200kBase);
  return encoder.encode(text, [], []).length;
}
