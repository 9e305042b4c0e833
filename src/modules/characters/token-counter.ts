import { getEncoding, type Tiktoken } from 'js-tiktoken';

/**
 * Token counts for prompt budgets. o200k_base is the encoding of the GPT-4o family, the default
 * chat model; other vendors' tokenizers differ by a few percent, which budgets absorb. The ranks
 * ship inside js-tiktoken, so nothing is downloaded; the encoder is built once (it takes ~100 ms).
 */
let encoder: Tiktoken | undefined;

export function countTokens(text: string): number {
  if (text.length === 0) return 0;
  encoder ??= getEncoding('o200k_base');
  // Special-token text (`<|endoftext|>`) in user input is counted as ordinary text, never refused.
  return encoder.encode(text, [], []).length;
}
