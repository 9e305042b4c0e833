import { getEncoding, type Tiktoken } from 'js-tiktoken';

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

const LONG_RUN = /\S{41,}|\s{41,}/g;
const EXACT_TEXT_MAX = 100_000;
const CHARS_PER_ESTIMATED_TOKEN = 3;

export function countTokens(text: string): number {
  if (text.length === 0) return 0;
  if (text.length > EXACT_TEXT_MAX) return Math.ceil(text.length / CHARS_PER_ESTIMATED_TOKEN);
  encoder ??= getEncoding('o200k_base');
  let estimated = 0;
  const rest = text.replace(LONG_RUN, (run) => {
    estimated += Math.ceil(run.length / CHARS_PER_ESTIMATED_TOKEN);
    return ' ';
  });
  // Special-token text (`<|endoftext|>`) in user input is counted as ordinary text, never refused.
  return (rest.trim() === '' ? 0 : encoder.encode(rest, [], []).length) + estimated;
}
