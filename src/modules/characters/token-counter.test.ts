import { describe, expect, it } from 'vitest';
import { countTokens } from './token-counter.js';

describe('countTokens', () => {
  it('counts ordinary text exactly', () => {
    expect(countTokens('')).toBe(0);
    expect(countTokens('Hello world')).toBe(2);
    expect(countTokens('hello world lorem ipsum'.repeat(1))).toBe(4);
  });

  it('estimates pathological runs (no spaces, long whitespace) instead of byte-pair merging them', () => {
    // Exact counting of these took seconds to minutes of event loop (quadratic merges); estimates are immediate.
    expect(countTokens('a'.repeat(32_000))).toBe(Math.ceil(32_000 / 3));
    expect(countTokens(' '.repeat(50_000))).toBe(Math.ceil(50_000 / 3));
    expect(countTokens(`hi ${'x'.repeat(300)} there`) - 100).toBeLessThanOrEqual(4);
    expect(countTokens('b'.repeat(200_000))).toBe(Math.ceil(200_000 / 3));
  });
});
