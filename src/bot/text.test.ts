import { describe, expect, it } from 'vitest';
import { looksLikeApiKey, mentionsWord, splitMessage } from './text.js';

describe('splitMessage', () => {
  it('keeps short answers whole', () => {
    expect(splitMessage('  Hello there.  ')).toEqual(['Hello there.']);
  });

  it('splits at sentence boundaries, every part within the limit, nothing lost', () => {
    const sentence = 'The engine hums softly in the night. ';
    const text = sentence.repeat(150).trim();
    const parts = splitMessage(text);
    expect(parts.length).toBeGreaterThan(2);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(2000);
      expect(part.endsWith('.')).toBe(true);
    }
    expect(parts.join(' ')).toBe(text);
  });

  it('prefers line breaks over sentences', () => {
    const line = `${'word '.repeat(30).trim()}. And more.`;
    const text = Array.from({ length: 40 }, () => line).join('\n');
    const parts = splitMessage(text, 500);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(500);
      expect(part.endsWith('And more.')).toBe(true);
    }
    expect(parts.join('\n')).toBe(text);
  });

  it('cuts one enormous word hard, and closes and reopens a code block across the cut', () => {
    const long = 'x'.repeat(4500);
    expect(splitMessage(long).map((part) => part.length)).toEqual([1996, 1996, 508]);
    const code = `Here:\n\`\`\`ts\n${'const a = 1;\n'.repeat(300)}\`\`\``;
    const parts = splitMessage(code);
    expect(parts.length).toBeGreaterThan(1);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(2000);
      expect((part.match(/```/g) ?? []).length % 2).toBe(0);
    }
    expect(parts[1]!.startsWith('```ts\n')).toBe(true);
  });
});

describe('looksLikeApiKey', () => {
  it.each([
    'my key is sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    'sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789',
    'AIzaSyA1234567890abcdefghijklmnopqrstuv',
    'use sk_0123456789abcdef0123456789abcdef0123456789abcdef please',
    'xai-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV',
    '12345678-1234-1234-1234-123456789abc:0123456789abcdef0123456789abcdef',
  ])('spots %s', (text) => {
    expect(looksLikeApiKey(text)).toBe(true);
  });

  it.each(['hello there', 'ask me about sk-ills', 'my id is 123456789012345678', 'task-force meeting at 5', 'https://example.com/sk-page'])(
    'leaves ordinary text alone: %s',
    (text) => {
      expect(looksLikeApiKey(text)).toBe(false);
    },
  );
});

describe('mentionsWord', () => {
  it('matches whole words in any case, including non-Latin names', () => {
    expect(mentionsWord('hey MIRA, you there?', 'Mira')).toBe(true);
    expect(mentionsWord('the admiral', 'Mira')).toBe(false);
    expect(mentionsWord('привет, Ёжик!', 'ёжик')).toBe(true);
    expect(mentionsWord('talk to Captain Mira now', 'Captain Mira')).toBe(true);
  });
});
