import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import o200kBase from 'js-tiktoken/ranks/o200k_base';
import { projectFile } from '../../infra/project-files.js';
import { countTokens, encoderTokenCount, pieceTokenCount } from './token-counter.js';

const PIECE_PATTERN = o200kBase.pat_str;

/** Texts with every kind of piece the pre-tokenizer makes: words, contractions, numbers, punctuation runs, line breaks, whitespace runs, other scripts, emoji, special-token text. */
const CRAFTED = [
  'Hello world',
  "I'm sure you'll see it's the CAT's toy, isn't it? WE'VE GOT IT.",
  'Order 1234567 cost $12.50 on 2026-11-30 at 10:45:07 (UTC+01:00) — 3.14159, 1e-9, 0xFF.',
  'line one\nline two\r\n\r\nline   three\t\ttabbed\n\n\n   indented\n',
  'trailing spaces    ',
  '    leading spaces',
  'a  b   c    d     e      f',
  'Привет, как дела? Ça va très bien, merci! Grüße aus Köln. 東京は今日も晴れです。 مرحبا بالعالم',
  'emoji 😀😃🎉 👩‍👩‍👧 and ⭐️ flags 🇫🇷🇯🇵',
  'special tokens as text: <|endoftext|> <|fim_prefix|> <|endofprompt|> stay text',
  '```ts\nconst url = "https://example.com/api?q=1&r=2";\nconst x = await fetch(url);\nif (!x.ok) throw new Error(`bad ${x.status}`);\n```',
  '!!! ??? ... --- *** ((( ))) [[[ ]]] {{{ }}} /// \\\\\\ ||| ~~~',
  'CamelCaseWords andALLCAPSWords mixedCASE iPhone McDonald',
  "'s 't 're 've 'm 'll 'd 'S 'T 'RE",
  '   \n   \nx',
  ' x',
  '\nx',
];

describe('countTokens', () => {
  it('counts ordinary text exactly', () => {
    expect(countTokens('')).toBe(0);
    expect(countTokens('Hello world')).toBe(2);
    expect(countTokens('hello world lorem ipsum'.repeat(1))).toBe(4);
  });

  it('counts exactly what the encoder counts, piece by piece (crafted texts, the memory evaluation set, twice each)', () => {
    const evaluation = ['memories.tsv', 'questions.tsv'].flatMap((file) =>
      readFileSync(projectFile('bench', 'memory-eval', file), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => line.split('\t').slice(1).join('\t')),
    );
    const texts = [...CRAFTED, ...evaluation, evaluation.join('\n'), CRAFTED.join('')];
    expect(texts.length).toBeGreaterThan(250);
    // Runs of 41+ like characters are estimated on purpose (next test): none here.
    expect(texts.filter((text) => /\S{41,}|\s{41,}/.test(text))).toEqual([]);
    // Twice: the first pass fills the per-piece memo, the second is answered from it.
    for (let pass = 0; pass < 2; pass += 1) {
      for (const text of texts) expect(countTokens(text), JSON.stringify(text.slice(0, 80))).toBe(encoderTokenCount(text));
    }
  });

  it('merges pieces the vocabulary does not hold as js-tiktoken does (random words of mixed scripts, seeded)', () => {
    // Letters and marks from several scripts, digits, punctuation and emoji: most random words are
    // not single tokens, so the byte-pair merge decides their counts.
    const alphabet = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789éüßçñøåœЖжЯяשלוםأبتثج中文字東京한국어ไทยΩλφ😀🎉👩‍👧⭐️.,;:!?\'"-_/()[]{}@#$%^&*+=<>|~`'];
    let seed = 20261130;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const word = (length: number) => Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
    let differing = 0;
    for (let sample = 0; sample < 3000; sample += 1) {
      const piece = word(1 + Math.floor(random() * 12));
      const text = Array.from({ length: 1 + Math.floor(random() * 5) }, () => word(1 + Math.floor(random() * 10))).join(random() < 0.5 ? ' ' : '\n');
      expect(countTokens(text), JSON.stringify(text)).toBe(encoderTokenCount(text));
      // One pre-tokenized piece or several: the merge alone equals the encoder whenever the text is one piece.
      const pieces = [...piece.matchAll(new RegExp(PIECE_PATTERN, 'gu'))];
      if (pieces.length === 1) expect(pieceTokenCount(piece), JSON.stringify(piece)).toBe(encoderTokenCount(piece));
      if (encoderTokenCount(piece) > 1) differing += 1;
    }
    // The samples did exercise merges of several parts.
    expect(differing).toBeGreaterThan(1000);
  });

  it('estimates pathological runs (no spaces, long whitespace) instead of byte-pair merging them', () => {
    // Exact counting of these took seconds to minutes of event loop (quadratic merges); estimates are immediate.
    expect(countTokens('a'.repeat(32_000))).toBe(Math.ceil(32_000 / 3));
    expect(countTokens(' '.repeat(50_000))).toBe(Math.ceil(50_000 / 3));
    expect(countTokens(`hi ${'x'.repeat(300)} there`) - 100).toBeLessThanOrEqual(4);
    expect(countTokens('b'.repeat(200_000))).toBe(Math.ceil(200_000 / 3));
  });
});
