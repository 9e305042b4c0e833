import { describe, expect, it } from 'vitest';
import { imageCreditWeight } from '../usage/price-table.js';
import { estimatedQuantities, microFromCredits, priceMicro, usedQuantities } from './pricing.js';

const free = { creditsPer1kTokensMicro: 100_000, creditsPerImageMicro: 1_000_000, creditsPerAudioSecondMicro: 10_000 };

describe('pricing', () => {
  it('prices prompt plus the answer cap at the plan rate per 1,000 tokens, rounded up to a micro-credit', () => {
    expect(priceMicro(free, estimatedQuantities('chat', { promptTokens: 500, maxCompletionTokens: 1024 }))).toBe(152_400);
    expect(priceMicro(free, estimatedQuantities('chat', { promptTokens: 1 }))).toBe(100);
    expect(priceMicro({ ...free, creditsPer1kTokensMicro: 70_000 }, { tokens: 3, images: 0, seconds: 0 })).toBe(210);
    expect(priceMicro({ ...free, creditsPer1kTokensMicro: 1 }, { tokens: 1, images: 0, seconds: 0 })).toBe(1);
  });

  it('prices images per image and audio per second; speech without seconds is estimated from its text', () => {
    expect(priceMicro(free, estimatedQuantities('image', {}))).toBe(1_000_000);
    expect(priceMicro(free, estimatedQuantities('image', { images: 3 }))).toBe(3_000_000);
    expect(estimatedQuantities('speech', { characters: 151 }).seconds).toBe(11);
    expect(priceMicro(free, usedQuantities('transcription', { seconds: 12.2 }))).toBe(130_000);
    expect(usedQuantities('chat', { promptTokens: -5, completionTokens: Number.NaN }).tokens).toBe(0);
    // Vision is sold by tokens, never per image.
    expect(estimatedQuantities('vision', { images: 2 })).toEqual({ tokens: 3000, images: 0, seconds: 0 });
    expect(usedQuantities('vision', { images: 1, promptTokens: 300, completionTokens: 40 })).toEqual({ tokens: 340, images: 0, seconds: 0 });
  });

  it('weighs an image by its model: the price table makes a pro model cost a multiple of the plan price', () => {
    expect(priceMicro(free, estimatedQuantities('image', { images: 2 }), 3)).toBe(6_000_000);
    expect(priceMicro({ ...free, creditsPerImageMicro: 750_000 }, { tokens: 0, images: 1, seconds: 0 }, 2)).toBe(1_500_000);
    expect(imageCreditWeight('fal', 'fal-ai/flux/schnell')).toBe(0.5);
    expect(imageCreditWeight('fal', 'fal-ai/flux/dev')).toBe(1);
    expect(imageCreditWeight('stability', 'ultra')).toBe(3);
    // Unknown models and providers cost the plan price.
    expect(imageCreditWeight('fal', 'fal-ai/some-new-model')).toBe(1);
    expect(imageCreditWeight('nobody', undefined)).toBe(1);
  });

  it('converts decimal credits to whole micro-credits', () => {
    expect(microFromCredits(0.1)).toBe(100_000);
    expect(microFromCredits(12.345678)).toBe(12_345_678);
  });
});
