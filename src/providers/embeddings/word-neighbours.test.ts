import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { projectFile } from '../../infra/project-files.js';
import { hasNeighbours, loadWordVectors, neighbourPool, WordVectorEmbedder } from './word-vectors.js';

/**
 * The shipped neighbour pools (assets/word-vectors/neighbours.u16.bin, scripts/build-word-neighbours.ts)
 * answer exactly what a scan of the table answers; they only make it cheap.
 */
describe('precomputed word neighbours', () => {
  const table = loadWordVectors();
  const scanned = new WordVectorEmbedder({ table: { ...table, neighbourPools: undefined } });
  const read = new WordVectorEmbedder({ table });

  it('are shipped for the shipped vectors, and loaded', () => {
    const about = JSON.parse(readFileSync(projectFile('assets', 'word-vectors', 'neighbours.json'), 'utf8')) as { vectors: string; sha256: string };
    expect(about.vectors).toBe(createHash('sha256').update(readFileSync(projectFile('assets', 'word-vectors', 'vectors.i8.bin'))).digest('hex'));
    expect(about.sha256).toBe(createHash('sha256').update(readFileSync(projectFile('assets', 'word-vectors', 'neighbours.u16.bin'))).digest('hex'));
    expect(table.neighbourPools).toBeDefined();
  });

  it('give the same neighbours as the scan, in order, at any threshold, over seeded words of every frequency', () => {
    let seed = 11;
    const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648);
    const rows = Array.from({ length: 120 }, () => next() % table.words.size);
    rows.push(table.words.indexOfString('pet'), table.words.indexOfString('moon'), table.words.indexOfString('cat'));
    expect(rows.slice(-3).every((row) => row >= 0)).toBe(true);
    for (const row of rows) {
      const word = table.words.stringOf(row);
      expect(read.neighbours(word, 16, -1), word).toEqual(scanned.neighbours(word, 16, -1));
      expect(read.neighbours(word, 5), word).toEqual(scanned.neighbours(word, 5));
      if (hasNeighbours(table, row)) expect(read.neighbours(word, 16, -1).length, word).toBe(neighbourPool(table, row).length);
    }
  });

  it('widen a query exactly as before', () => {
    for (const text of ['What is my pet called?', 'Tell me about the stars and the moon tonight', 'She plays violin in an orchestra']) {
      expect(read.expandQuery(text, 3)).toEqual(scanned.expandQuery(text, 3));
    }
    expect(read.expandQuery('What is my pet called?', 3).length).toBeGreaterThan(0);
  });
});
