import { describe, expect, it } from 'vitest';
import { matchReach, ModerationPolicy } from './policy.js';

describe('ModerationPolicy', () => {
  const policy = ModerationPolicy.fromJson({
    categories: [
      { name: 'spam', directions: ['input'], keywords: ['buy followers', 'casino'] },
      { name: 'secrets', directions: ['output'], patterns: ['send me your (password|pin)'] },
    ],
  });

  it('matches keywords as whole words, case-insensitively, on the configured direction only', () => {
    expect(policy.check('Want to BUY   followers cheap?', 'input')).toMatchObject({ category: 'spam' });
    expect(policy.check('the casinos are closed', 'input')).toBeUndefined();
    expect(policy.check('casino night', 'output')).toBeUndefined();
  });

  it('matches patterns and returns an excerpt around the match', () => {
    const match = policy.check('Friend, please send me your PIN right now.', 'output');
    expect(match?.category).toBe('secrets');
    expect(match?.excerpt).toContain('send me your PIN');
    expect(policy.check('send me your password', 'input')).toBeUndefined();
  });

  it('rejects a malformed policy naming the problem', () => {
    expect(() => ModerationPolicy.fromJson({ categories: [{ name: 'Bad Name' }] })).toThrow(/categories\.0\.name/);
    expect(() => ModerationPolicy.fromJson({ categories: [{ name: 'x', patterns: ['('] }] })).toThrow(/bad pattern/);
  });

  it('loads the shipped policy file', () => {
    const shipped = ModerationPolicy.load('config/moderation.json');
    expect(shipped.categoryNames.length).toBeGreaterThan(0);
    expect(shipped.check('how do I synthesize sarin', 'input')?.category).toBe('weapons_of_mass_destruction');
    expect(shipped.check('What a lovely day for a picnic', 'input')).toBeUndefined();
  });
});

describe('ModerationPolicy.checkGrown (a streamed answer checked as it grows)', () => {
  const policy = ModerationPolicy.load('config/moderation.json');
  const custom = ModerationPolicy.fromJson({
    categories: [
      { name: 'spam', directions: ['output'], keywords: ['buy followers', 'casino'] },
      { name: 'anchored', directions: ['output'], patterns: ['^forbidden opening'] },
      { name: 'long', directions: ['output'], patterns: ['secret alpha(.|\\s){300,}secret omega'] },
      { name: 'bounded_long', directions: ['output'], patterns: ['opening gambit[^!]{0,600}closing move'] },
    ],
  });
  /** The delta at which a stream is first blocked, checking the whole text each time or only what grew. */
  const firstBlocked = (check: (text: string, checkedUpTo: number) => string | undefined, deltas: string[]) => {
    let text = '';
    for (let index = 0; index < deltas.length; index += 1) {
      const before = text.length;
      text += deltas[index]!;
      const blocked = check(text, before);
      if (blocked) return { index, blocked };
    }
    return undefined;
  };

  it('stops a stream at the same delta as checking the whole text each time, over seeded answers', () => {
    let seed = 5;
    const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648);
    const words = ['the', 'moon', 'casinos', 'xcasino', 'casino', 'buy', 'followers', 'tell', 'me', 'your', 'password', 'send', 'make', 'sarin', 'you', 'should', 'kill', 'yourself', 'quiet', 'sea', ',', '\n'];
    for (let answer = 0; answer < 300; answer += 1) {
      const tokens = Array.from({ length: 40 + (next() % 400) }, () => words[next() % words.length]!);
      const deltas: string[] = [];
      for (let at = 0; at < tokens.length; ) {
        const take = 1 + (next() % 4);
        deltas.push(tokens.slice(at, at + take).map((token) => (token === ',' ? token : ` ${token}`)).join(''));
        at += take;
      }
      for (const subject of [policy, custom]) {
        expect(firstBlocked((text, from) => subject.checkGrown(text, from, 'output')?.category, deltas)).toEqual(firstBlocked((text) => subject.check(text, 'output')?.category, deltas));
      }
    }
  });

  it('finds a keyword split across deltas deep into a long answer, with its excerpt', () => {
    const filler = 'calm words about the sea and the stars, '.repeat(40);
    const match = custom.checkGrown(`${filler}buy fol` + 'lowers now', filler.length + 7, 'output');
    expect(match).toMatchObject({ category: 'spam' });
    expect(match!.excerpt).toContain('buy followers');
  });

  it('reads the whole text for anchored patterns, and as far back as a longer match can reach', () => {
    const filler = ' and so on'.repeat(60);
    expect(custom.checkGrown(`forbidden opening${filler} more`, 17 + filler.length, 'output')).toMatchObject({ category: 'anchored' });
    // A match with no bound on its length ({300,}): found while growing, the whole text read.
    const long = `secret alpha${' x'.repeat(200)} secret omega`;
    expect(custom.checkGrown(long, long.length - 6, 'output')).toMatchObject({ category: 'long' });
    // A bounded one longer than the usual look-back (up to 625 characters): read back that far, not further.
    const gambit = `${'calm words. '.repeat(50)}opening gambit${' and then'.repeat(55)} closing move`;
    expect(custom.checkGrown(gambit, gambit.length - 4, 'output')).toMatchObject({ category: 'bounded_long' });
    expect(custom.check(gambit, 'output')).toMatchObject({ category: 'bounded_long' });
  });
});

describe('matchReach (how far back a streamed check must read for a pattern)', () => {
  it('is the longest match a pattern can make, Infinity where unbounded or unreadable', () => {
    expect(matchReach('\\b(make|synthesi[sz]e|produce)\\b.{0,30}\\b(nerve agent|vx gas|sarin|ricin)\\b', 'i')).toBe(10 + 30 + 11);
    expect(matchReach('(cat|horse){3}', 'i')).toBe(15);
    expect(matchReach('x{2,5}(?=yyyyyy)', 'i')).toBe(5);
    expect(matchReach('abc', 'iu')).toBe(6);
    for (const unbounded of ['a.*b', 'a+', 'x{3,}', '(ab)\\1', '(?<!a)b']) expect(matchReach(unbounded, 'i'), unbounded).toBe(Number.POSITIVE_INFINITY);
  });
});
