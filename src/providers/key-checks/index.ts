import type { ProviderName } from '../../config.js';
import { elevenLabsKeyCheck } from './elevenlabs.js';
import { falKeyCheck } from './fal.js';
import { geminiKeyCheck } from './gemini.js';
import { runKeyCheck, type KeyCheck, type KeyCheckOptions, type KeyCheckOutcome } from './key-check.js';
import { kieKeyCheck } from './kie.js';
import { miniMaxKeyCheck } from './minimax.js';
import { openAiKeyCheck } from './openai.js';
import { openRouterKeyCheck } from './openrouter.js';
import { stabilityKeyCheck } from './stability.js';
import { xaiKeyCheck } from './xai.js';

export type { KeyCheck, KeyCheckOptions, KeyCheckOutcome, KeyCheckStatus } from './key-check.js';

export const KEY_CHECKS: Record<ProviderName, KeyCheck> = {
  openrouter: openRouterKeyCheck,
  openai: openAiKeyCheck,
  xai: xaiKeyCheck,
  gemini: geminiKeyCheck,
  elevenlabs: elevenLabsKeyCheck,
  minimax: miniMaxKeyCheck,
  fal: falKeyCheck,
  stability: stabilityKeyCheck,
  kie: kieKeyCheck,
};

/** Asks the provider whether `key` is valid. Never throws; never puts the key in the outcome. */
export function checkProviderKey(provider: ProviderName, key: string, options: KeyCheckOptions): Promise<KeyCheckOutcome> {
  return runKeyCheck(KEY_CHECKS[provider], key, options);
}
