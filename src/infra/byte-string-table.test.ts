import { describe, expect, it } from 'vitest';
import { ByteStringTable } from './byte-string-table.js';

describe('ByteStringTable', () => {
  const words = ['pet', 'ferret', 'café', 'naïve', '東京', '😀', 'a', 'pets', 'pe', ''];
  const table = ByteStringTable.fromStrings(words);

  it('finds every entry by its string and gives it back, in any script', () => {
    expect(table.size).toBe(words.length);
    for (const [index, word] of words.entries()) {
      expect(table.indexOfString(word), word).toBe(index);
      expect(table.stringOf(index)).toBe(word);
    }
    expect(table.strings()).toEqual(words);
  });

  it('answers -1 for strings that are not entries: prefixes, extensions, other cases', () => {
    for (const missing of ['p', 'pett', 'Pet', 'ferrets', 'cafe', '東', 'b']) expect(table.indexOfString(missing), missing).toBe(-1);
  });

  it('looks a byte range up in place, and copies an entry out', () => {
    const source = new TextEncoder().encode('my ferret!');
    expect(table.indexOf(source, 3, 9)).toBe(1);
    expect(table.indexOf(source, 3, 8)).toBe(-1);
    expect(new TextDecoder().decode(table.bytesOf(2))).toBe('café');
  });

  it('holds 50,000 entries with every one found (collisions probed past)', () => {
    const many = Array.from({ length: 50_000 }, (_, index) => `w${index.toString(36)}`);
    const big = ByteStringTable.fromStrings(many);
    for (let index = 0; index < many.length; index += 1) if (big.indexOfString(many[index]!) !== index) expect(big.indexOfString(many[index]!)).toBe(index);
    expect(big.indexOfString('w-1')).toBe(-1);
    // A string longer than the reusable lookup buffer.
    expect(big.indexOfString('x'.repeat(5_000))).toBe(-1);
  });
});
