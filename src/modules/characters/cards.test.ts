import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../infra/http/errors.js';
import { placeholderPng, readCardFromPng, stripCardFromPng, writeCardsToPng } from './card-png.js';
import { formatExampleMessages, parseCard, parseExampleMessages } from './cards.js';

function fieldOf(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    if (error instanceof ValidationError) return error.field;
    throw error;
  }
  return undefined;
}

describe('parseExampleMessages', () => {
  it('splits <START> blocks into user/character pairs, keeping multi-line turns', () => {
    const raw = '<START>\n{{user}}: Hi there\n{{char}}: Hello!\nHow are you?\n{{user}}: Fine.\n{{char}}: Good.\n<START>\n<USER>: Old style\n<BOT>: Still works';
    expect(parseExampleMessages(raw)).toEqual([
      { user: 'Hi there', assistant: 'Hello!\nHow are you?' },
      { user: 'Fine.', assistant: 'Good.' },
      { user: 'Old style', assistant: 'Still works' },
    ]);
  });

  it('pairs a character line without a user line with an empty user turn, and ignores text outside turns', () => {
    expect(parseExampleMessages('<START>\nsome narration\n{{char}}: *waves*')).toEqual([{ user: '', assistant: '*waves*' }]);
    expect(parseExampleMessages('')).toEqual([]);
  });

  it('formats dialogues back into the card text, which parses to the same dialogues', () => {
    const dialogues = [
      { user: 'A', assistant: 'B' },
      { user: '', assistant: 'C' },
    ];
    const text = formatExampleMessages(dialogues);
    expect(text).toBe('<START>\n{{user}}: A\n{{char}}: B\n<START>\n{{char}}: C');
    expect(parseExampleMessages(text)).toEqual(dialogues);
  });
});

describe('parseCard', () => {
  it('maps V2 fields to the character and keeps the rest in the card bag', () => {
    const { version, input } = parseCard({
      spec: 'chara_card_v2',
      spec_version: '2.0',
      data: { name: ' Nova ', first_mes: 'Hi', system_prompt: '', personality: 'bright', tags: ['a'], mystery: 1, mes_example: '<START>\n{{user}}: q\n{{char}}: a' },
    });
    expect(version).toBe('v2');
    expect(input).toMatchObject({
      name: 'Nova',
      greeting: 'Hi',
      systemPromptOverride: null,
      personality: 'bright',
      exampleDialogues: [{ user: 'q', assistant: 'a' }],
      card: { tags: ['a'], mystery: 1, mes_example: '<START>\n{{user}}: q\n{{char}}: a' },
    });
    expect(input.card).not.toHaveProperty('personality');
    expect(input.card).not.toHaveProperty('first_mes');
  });

  it('names the offending field', () => {
    expect(fieldOf(() => parseCard('text'))).toBe('body');
    expect(fieldOf(() => parseCard({ spec: 'chara_card_v9', data: {} }))).toBe('spec');
    expect(fieldOf(() => parseCard({ spec: 'chara_card_v2', data: { name: 5 } }))).toBe('data.name');
    expect(fieldOf(() => parseCard({ spec: 'chara_card_v2', data: { name: 'x', alternate_greetings: 'hi' } }))).toBe('data.alternate_greetings');
    expect(fieldOf(() => parseCard({ spec: 'chara_card_v3', data: { name: 'x', character_book: { entries: [{ keys: [], content: 3 }] } } }))).toBe(
      'data.character_book.entries.0.content',
    );
  });

  it('ignores an unusable extensions.anima rather than failing the import', () => {
    const { input } = parseCard({ spec: 'chara_card_v2', data: { name: 'x', extensions: { anima: { interaction_style: 'grumpy' }, other: 1 } } });
    expect(input.interactionStyle).toBeUndefined();
    expect(input.card?.extensions).toEqual({ other: 1 });
  });
});

describe('card PNG chunks', () => {
  it('writes both cards into a PNG, reads ccv3 first, and strips them again', () => {
    const v2 = { spec: 'chara_card_v2', spec_version: '2.0', data: { name: 'Pixel' } };
    const v3 = { spec: 'chara_card_v3', spec_version: '3.0', data: { name: 'Pixel V3' } };
    const png = writeCardsToPng(placeholderPng('Pixel'), { v2, v3 });
    expect(readCardFromPng(png)).toEqual(v3);
    const stripped = stripCardFromPng(png);
    expect(fieldOf(() => readCardFromPng(stripped))).toBe('body');
    // Writing again replaces the cards instead of adding a second pair.
    const rewritten = writeCardsToPng(png, { v2, v3: { ...v3, data: { name: 'Replaced' } } });
    expect(readCardFromPng(rewritten)).toMatchObject({ data: { name: 'Replaced' } });
    expect(rewritten.length).toBeLessThan(png.length + 20);
  });

  it('refuses bytes that are not a PNG', () => {
    expect(fieldOf(() => readCardFromPng(Buffer.from('GIF89a....')))).toBe('body');
  });
});
