import { describe, expect, it } from 'vitest';
import { vectorParam } from './store.js';

/** What pgvector's vector_recv reads from the bytes: dimensions, the reserved zero, then big-endian float4s. */
function received(bytes: Buffer): { dimensions: number; reserved: number; values: number[] } {
  const dimensions = bytes.readInt16BE(0);
  expect(bytes.length).toBe(4 + 4 * dimensions);
  return { dimensions, reserved: bytes.readInt16BE(2), values: Array.from({ length: dimensions }, (_, index) => bytes.readFloatBE(4 + 4 * index)) };
}

describe('vectorParam', () => {
  it('writes the vector as pgvector’s binary input: every value the float4 pgvector stores', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648) * 2 - 1;
    const vectors = Array.from({ length: 200 }, (_, row) => Array.from({ length: 256 }, () => random() * 10 ** -(row % 12)));
    vectors.push([0, -0, 1, -1, 3.4e38, 1.2e-38, 1e-45, 0.1, 1 / 3, 123456789.123]);
    for (const vector of vectors) {
      const read = received(vectorParam(vector));
      expect(read.dimensions).toBe(vector.length);
      expect(read.reserved).toBe(0);
      expect(read.values).toEqual(vector.map((value) => Math.fround(value)));
    }
  });

  it('writes what is not a finite number as 0 (pgvector refuses NaN and infinities)', () => {
    expect(received(vectorParam([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0.5])).values).toEqual([0, 0, 0, 0.5]);
  });
});

describe('vectorParam’s memory', () => {
  it('owns its bytes (a view of a shared pool would be copied whole to the database thread)', () => {
    const bytes = vectorParam(Array.from({ length: 300 }, (_, index) => index / 300));
    expect(bytes.buffer.byteLength).toBe(bytes.length);
    expect(structuredClone(bytes).buffer.byteLength).toBe(4 + 4 * 300);
  });
});
