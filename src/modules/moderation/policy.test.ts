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
