import { describe, expect, it } from 'vitest';
import o200kBase from 'js-tiktoken/ranks/o200k_base';
import { BpeRankTable } from './bpe-rank-table.js';

describe('BpeRankTable', () => {
  it("finds every o200k_base token at its rank, from the rank file's own base64", () => {
    const table = BpeRankTable.fromTiktokenRanks(o200kBase.bpe_ranks);
    let checked = 0;
    for (const line of o200kBase.bpe_ranks.split('\n')) {
      if (!line) continue;
      const fields = line.split(' ');
      const first = Number.parseInt(fields[1]!, 10);
      for (let index = 2; index < fields.length; index += 1) {
        const bytes = new Uint8Array(Buffer.from(fields[index]!, 'base64'));
        // Looked up inside a larger buffer, at an offset: a lookup reads only its range.
        const padded = new Uint8Array(bytes.length + 6).fill(0x41);
        padded.set(bytes, 3);
        const rank = table.rank(padded, 3, 3 + bytes.length);
        if (rank !== first + index - 2) expect(rank, `${fields[index]} at ${first + index - 2}`).toBe(first + index - 2);
        checked += 1;
      }
    }
    expect(checked).toBe(table.size);
    expect(table.size).toBeGreaterThan(199_000);
    expect(Buffer.from(table.tokenBytes(0)).toString('latin1')).toBe('!');
  });

  it('answers -1 for bytes that are no token, including prefixes and extensions of tokens', () => {
    const table = BpeRankTable.fromTiktokenRanks(o200kBase.bpe_ranks);
    const bytes = (text: string) => new Uint8Array(Buffer.from(text, 'utf8'));
    const hello = bytes('hello');
    expect(table.rank(hello, 0, hello.length)).toBeGreaterThanOrEqual(0);
    const nonsense = bytes('qxzjvqxzjv');
    expect(table.rank(nonsense, 0, nonsense.length)).toBe(-1);
    expect(table.rank(hello, 0, 0)).toBe(-1);
    const helloThere = bytes('hellozzzzqqqq');
    expect(table.rank(helloThere, 0, helloThere.length)).toBe(-1);
    expect(table.rank(helloThere, 0, 5)).toBe(table.rank(hello, 0, 5));
  });

  it('reads a small hand-made rank file, padded and unpadded base64 alike', () => {
    // "a" "b" "ab" "abc" (YWJj, no padding) and the bytes 0xff 0x00 (/wA=).
    const table = BpeRankTable.fromTiktokenRanks('! 0 YQ== Yg==\n! 2 YWI= YWJj /wA=\n');
    const source = new Uint8Array([0x61, 0x62, 0x63, 0xff, 0x00]);
    expect([table.rank(source, 0, 1), table.rank(source, 1, 2), table.rank(source, 0, 2), table.rank(source, 0, 3), table.rank(source, 3, 5)]).toEqual([0, 1, 2, 3, 4]);
    expect(table.rank(source, 1, 3)).toBe(-1);
    expect(() => BpeRankTable.fromTiktokenRanks('! 0 a*b=\n')).toThrow(/not base64/);
  });
});
