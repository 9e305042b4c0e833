import { describe, expect, it } from 'vitest';
import { activateLorebook, KeySearch } from './lorebook.js';
import { countTokens } from './token-counter.js';
import type { CharacterBook, CharacterBookEntry } from './types.js';

function entry(overrides: Partial<CharacterBookEntry>): CharacterBookEntry {
  return { keys: [], content: 'content', extensions: {}, enabled: true, insertion_order: 100, ...overrides };
}

function book(entries: CharacterBookEntry[], extra: Partial<CharacterBook> = {}): CharacterBook {
  return { extensions: {}, entries, ...extra };
}

const messages = (...contents: string[]) => contents.map((content) => ({ content }));
const words = (text: string) => text.split(/\s+/).filter(Boolean).length;
const roomy = { tokenBudget: 10_000, countTokens: words };

describe('activateLorebook', () => {
  it('returns nothing for a missing or empty book', () => {
    expect(activateLorebook(null, messages('hello'), roomy).entries).toEqual([]);
    expect(activateLorebook(undefined, messages('hello'), roomy).text).toBe('');
    expect(activateLorebook(book([]), messages('hello'), roomy).entries).toEqual([]);
  });

  it('fires an entry when any key appears, case-insensitively by default', () => {
    const lore = book([entry({ keys: ['dragon', 'wyrm'], content: 'Dragons hoard gold.' }), entry({ keys: ['castle'], content: 'The castle is old.' })]);
    const result = activateLorebook(lore, messages('I saw a WYRM yesterday'), roomy);
    expect(result.entries.map((activated) => activated.content)).toEqual(['Dragons hoard gold.']);
    expect(result.entries[0]?.matchedKey).toBe('wyrm');
    expect(result.text).toBe('Dragons hoard gold.');
  });

  it('honours case_sensitive', () => {
    const lore = book([entry({ keys: ['Rose'], case_sensitive: true, content: 'Rose is the queen.' })]);
    expect(activateLorebook(lore, messages('a rose by any other name'), roomy).entries).toHaveLength(0);
    expect(activateLorebook(lore, messages('Rose arrives'), roomy).entries).toHaveLength(1);
  });

  it('needs a secondary key too when selective, and ignores secondary keys when not', () => {
    const selective = entry({ keys: ['sword'], secondary_keys: ['fire', 'flame'], selective: true, content: 'The flaming sword.' });
    const plain = entry({ keys: ['sword'], secondary_keys: ['fire'], selective: false, content: 'A sword.' });
    expect(activateLorebook(book([selective]), messages('draw your sword'), roomy).entries).toHaveLength(0);
    expect(activateLorebook(book([selective]), messages('draw your sword', 'it bursts into FLAME'), roomy).entries).toHaveLength(1);
    expect(activateLorebook(book([plain]), messages('draw your sword'), roomy).entries).toHaveLength(1);
    // Selective with no secondary keys behaves as a plain entry (SillyTavern does the same).
    expect(activateLorebook(book([entry({ keys: ['sword'], selective: true, secondary_keys: [] })]), messages('sword'), roomy).entries).toHaveLength(1);
  });

  it('always includes constant entries and never disabled ones', () => {
    const lore = book([
      entry({ keys: [], constant: true, content: 'The world is flat.' }),
      entry({ keys: ['moon'], enabled: false, content: 'The moon is cheese.' }),
      entry({ keys: ['moon'], constant: true, enabled: false, content: 'Disabled constant.' }),
    ]);
    const result = activateLorebook(lore, messages('look at the moon'), roomy);
    expect(result.entries.map((activated) => activated.content)).toEqual(['The world is flat.']);
    expect(result.entries[0]?.constant).toBe(true);
    expect(result.entries[0]?.matchedKey).toBeUndefined();
  });

  it('scans only the last scan_depth messages (default 4; 0 leaves only constants)', () => {
    const lore = (depth?: number) =>
      book([entry({ keys: ['ghost'], content: 'Ghosts haunt the hall.' }), entry({ constant: true, content: 'Always.' })], depth === undefined ? {} : { scan_depth: depth });
    const history = messages('a ghost appeared', 'two', 'three', 'four', 'five');
    expect(activateLorebook(lore(), history, roomy).entries.map((activated) => activated.content)).toEqual(['Always.']);
    expect(activateLorebook(lore(5), history, roomy).entries).toHaveLength(2);
    expect(activateLorebook(lore(1), messages('ghost', 'nothing'), roomy).entries).toHaveLength(1);
    expect(activateLorebook(lore(2), messages('ghost', 'nothing'), roomy).entries).toHaveLength(2);
    expect(activateLorebook(lore(0), messages('ghost'), roomy).entries.map((activated) => activated.content)).toEqual(['Always.']);
  });

  it('orders the text by insertion_order, lower first, and keeps each position', () => {
    const lore = book([
      entry({ keys: ['a'], insertion_order: 30, content: 'third', position: 'after_char' }),
      entry({ keys: ['a'], insertion_order: 10, content: 'first' }),
      entry({ keys: ['a'], insertion_order: 20, content: 'second', position: 'before_char' }),
    ]);
    const result = activateLorebook(lore, messages('a'), roomy);
    expect(result.text).toBe('first\nsecond\nthird');
    expect(result.entries.map((activated) => activated.position)).toEqual(['before_char', 'before_char', 'after_char']);
    expect(result.beforeCharText).toBe('first\nsecond');
    expect(result.afterCharText).toBe('third');
  });

  it('drops the lowest priority first when over budget, but still fills with what fits', () => {
    const lore = book([
      entry({ keys: ['x'], priority: 1, insertion_order: 1, content: 'low low low low' }),
      entry({ keys: ['x'], priority: 10, insertion_order: 2, content: 'high high high' }),
      entry({ keys: ['x'], priority: 5, insertion_order: 3, content: 'mid mid mid' }),
      entry({ keys: ['x'], priority: 0, insertion_order: 4, content: 'tiny' }),
    ]);
    const result = activateLorebook(lore, messages('x'), { tokenBudget: 7, countTokens: words });
    // high (3) + mid (3) = 6; low (4) no longer fits; tiny (1) does.
    expect(result.entries.map((activated) => activated.content)).toEqual(['high high high', 'mid mid mid', 'tiny']);
    expect(result.droppedForBudget).toBe(1);
  });

  it('uses the smaller of the book token_budget and the caller budget', () => {
    const lore = (budget: number) => book([entry({ keys: ['x'], content: 'one two three' }), entry({ keys: ['x'], content: 'four five' })], { token_budget: budget });
    expect(activateLorebook(lore(2), messages('x'), roomy).entries.map((activated) => activated.content)).toEqual(['four five']);
    expect(activateLorebook(lore(1000), messages('x'), { tokenBudget: 3, countTokens: words }).tokenBudget).toBe(3);
  });

  it('accepts /pattern/flags keys as regular expressions, and V3 use_regex', () => {
    const lore = book([
      entry({ keys: ['/\\bcats?\\b/i'], content: 'About cats.' }),
      entry({ keys: ['/^hello$/'], content: 'Strict hello.' }),
      entry({ keys: ['colou?r'], use_regex: true, content: 'About colour.' }),
      entry({ keys: ['/[unclosed/'], content: 'Bad regex falls back to text.' }),
    ]);
    expect(activateLorebook(lore, messages('My CAT sleeps'), roomy).entries.map((activated) => activated.content)).toEqual(['About cats.']);
    expect(activateLorebook(lore, messages('concatenate'), roomy).entries).toHaveLength(0);
    expect(activateLorebook(lore, messages('hello'), roomy).entries.map((activated) => activated.content)).toEqual(['Strict hello.']);
    expect(activateLorebook(lore, messages('HELLO'), roomy).entries).toHaveLength(0);
    expect(activateLorebook(lore, messages('What COLOR is it'), roomy).entries.map((activated) => activated.content)).toEqual(['About colour.']);
    expect(activateLorebook(lore, messages('text /[unclosed/ here'), roomy).entries.map((activated) => activated.content)).toEqual([
      'Bad regex falls back to text.',
    ]);
  });

  it('scans activated content again only with recursive_scanning', () => {
    const entries = [entry({ keys: ['king'], content: 'The king has a crown.' }), entry({ keys: ['crown'], content: 'The crown is cursed.' })];
    expect(activateLorebook(book(entries), messages('the king'), roomy).entries).toHaveLength(1);
    expect(activateLorebook(book(entries, { recursive_scanning: true }), messages('the king'), roomy).entries).toHaveLength(2);
  });

  it('ignores empty keys and empty content', () => {
    const lore = book([entry({ keys: [''], content: 'never' }), entry({ keys: ['x'], content: '   ' })]);
    expect(activateLorebook(lore, messages('x anything'), roomy).entries).toHaveLength(0);
  });

  it('works with the real token counter', () => {
    const lore = book([entry({ keys: ['x'], content: 'The quick brown fox jumps over the lazy dog.' })]);
    const result = activateLorebook(lore, messages('x'), { tokenBudget: 100, countTokens });
    expect(result.entries[0]?.tokens).toBeGreaterThan(5);
    expect(result.entries[0]?.tokens).toBeLessThan(15);
  });
});

describe('countTokens', () => {
  it('counts nothing for an empty string, and special-token text as plain text', () => {
    expect(countTokens('')).toBe(0);
    expect(countTokens('hello world')).toBe(2);
    expect(countTokens('<|endoftext|>')).toBeGreaterThan(1);
  });
});

describe('KeySearch (every key of a book in one pass)', () => {
  it('finds exactly the keys text.includes finds, over seeded keys and texts (overlaps, prefixes, suffixes, repeats, accents, emoji)', () => {
    let seed = 3;
    const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648);
    const alphabet = ['a', 'b', 'ab', 'ba', 'é', 'e', ' ', 'ß', '🐉', 'x'];
    const word = (length: number) => Array.from({ length }, () => alphabet[next() % alphabet.length]!).join('');
    for (let round = 0; round < 200; round += 1) {
      const keys = Array.from({ length: 1 + (next() % 30) }, () => word(1 + (next() % 4)));
      const text = word(next() % 120);
      const search = new KeySearch(keys);
      expect([...search.keysIn(text)].sort()).toEqual([...new Set(keys.filter((key) => text.includes(key)))].sort());
    }
    expect([...new KeySearch([]).keysIn('anything')]).toEqual([]);
  });
});
