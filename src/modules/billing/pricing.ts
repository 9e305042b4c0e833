import type { CostEstimate, MeteredService, MeteredUsage } from '../gateway/billing-port.js';
import type { PlanRow } from './store.js';

export const MICRO_PER_CREDIT = 1_000_000;

/** Speech is sold by the second of audio; before the call only the text is known (about 15 characters a second). */
export const CHARACTERS_PER_AUDIO_SECOND = 15;

/** Tokens reserved per image to describe when the caller gives no token estimate (image + prompt + a short answer). */
export const VISION_TOKENS_PER_IMAGE = 1_500;

export type PlanPrices = Pick<PlanRow, 'creditsPer1kTokensMicro' | 'creditsPerImageMicro' | 'creditsPerAudioSecondMicro'>;

export interface Quantities {
  tokens: number;
  images: number;
  seconds: number;
}

function whole(value: number | undefined): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : 0;
}

/** What a call may use at most, in the units plans price: tokens, images, seconds of audio. */
export function estimatedQuantities(service: MeteredService, estimate: CostEstimate): Quantities {
  let tokens = whole(estimate.promptTokens) + whole(estimate.maxCompletionTokens);
  // Describing an image is sold by its tokens; a caller that only knows the image count gets a generous guess.
  if (service === 'vision' && tokens === 0) tokens = Math.max(1, Math.ceil(whole(estimate.images))) * VISION_TOKENS_PER_IMAGE;
  const images = service === 'image' ? Math.max(1, Math.ceil(whole(estimate.images))) : 0;
  const seconds = audioSeconds(service, estimate.seconds, estimate.characters);
  return { tokens, images, seconds };
}

/** What a call really used, in the same units. */
export function usedQuantities(service: MeteredService, usage: MeteredUsage): Quantities {
  return {
    tokens: whole(usage.promptTokens) + whole(usage.completionTokens),
    images: service === 'image' ? Math.ceil(whole(usage.images)) : 0,
    seconds: audioSeconds(service, usage.seconds, usage.characters),
  };
}

function audioSeconds(service: MeteredService, seconds: number | undefined, characters: number | undefined): number {
  if (service !== 'speech' && service !== 'transcription') return 0;
  if (whole(seconds) > 0) return Math.ceil(whole(seconds));
  return service === 'speech' ? Math.ceil(whole(characters) / CHARACTERS_PER_AUDIO_SECOND) : 0;
}

/**
 * Micro-credits of some quantities at a plan's prices, rounded up to a whole micro-credit.
 * `imageWeight`: the image model's weight from the price table (a pro model costs more than a fast one).
 */
export function priceMicro(plan: PlanPrices, quantities: Quantities, imageWeight = 1): number {
  return (
    Math.ceil((quantities.tokens * plan.creditsPer1kTokensMicro) / 1000) +
    quantities.images * Math.ceil(plan.creditsPerImageMicro * imageWeight) +
    quantities.seconds * plan.creditsPerAudioSecondMicro
  );
}

export function creditsFromMicro(micro: number): number {
  return micro / MICRO_PER_CREDIT;
}

/** Whole micro-credits from a credit amount given as a decimal (at most 6 places). */
export function microFromCredits(credits: number): number {
  return Math.round(credits * MICRO_PER_CREDIT);
}
