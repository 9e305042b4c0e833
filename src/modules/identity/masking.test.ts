import { describe, expect, it } from 'vitest';
import { maskSecret } from './masking.js';

describe('maskSecret', () => {
  it('keeps the vendor prefix and the last four characters of a long key', () => {
    expect(maskSecret('sk-or-v1-0123456789abcdef0123456789a1b2')).toBe('sk-or-…a1b2');
    expect(maskSecret('xai-0123456789abcdefghijklmnop9z8y')).toBe('xai-…9z8y');
    expect(maskSecret('AIzaSyD0123456789abcdefghijklmn')).toBe('…klmn');
  });

  it('never shows more than a third of the key', () => {
    for (const secret of ['abc', 'test-key', 'sk-0123456', 'k'.repeat(12), 'sk-or-v1-x']) {
      const visible = maskSecret(secret).replace('…', '');
      expect(visible.length).toBeLessThanOrEqual(Math.floor(secret.length / 3));
    }
    expect(maskSecret('short')).toBe('…t');
    expect(maskSecret('ab')).toBe('…');
  });
});
