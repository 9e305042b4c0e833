import { describe, expect, it } from 'vitest';
import { vectorLiteral } from './store.js';

describe('vectorLiteral', () => {
  it('writes each value so that it reads back as the float4 pgvector stores', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648) * 2 - 1;
    const vectors = Array.from({ length: 200 }, (_, row) => Array.from({ length: 256 }, () => random() * 10 ** -(row % 12)));
    vectors.push([0, -0, 1, -1, 3.4e38, 1.2e-38, 1e-45, 0.1, 1 / 3, 123456789.123]);
    for (const vector of vectors) {
      const literal = vectorLiteral(vector);
      expect(literal.startsWith('[') && literal.endsWith(']')).toBe(true);
      const read = literal.slice(1, -1).split(',').map(Number);
      // `+ 0`: -0 is written as 0 (the same point for every distance pgvector computes).
      expect(read.map((value) => Math.fround(value) + 0)).toEqual(vector.map((value) => Math.fround(value) + 0));
    }
  });

  it('writes what is not a finite number as 0', () => {
    expect(vectorLiteral([Number.NaN, Number.POSITIVE_INFINITY, 0.5])).toBe('[0,0,0.500000000]');
  });
});
