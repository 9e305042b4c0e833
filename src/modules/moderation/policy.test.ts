import { describe, expect, it } from 'vitest';
import { ModerationPolicy } from './policy.js';

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

  it('leaves anchored patterns and longer matches to a check of the whole text', () => {
    const filler = ' and so on'.repeat(60);
    expect(custom.checkGrown(`forbidden opening${filler} more`, 17 + filler.length, 'output')).toMatchObject({ category: 'anchored' });
    // A match longer than the look-back is missed while growing; the whole check (the stream's end) finds it.
    const long = `secret alpha${' x'.repeat(200)} secret omega`;
    expect(custom.checkGrown(long, long.length - 6, 'output')).toBeUndefined();
    expect(custom.check(long, 'output')).toMatchObject({ category: 'long' });
  });
});
