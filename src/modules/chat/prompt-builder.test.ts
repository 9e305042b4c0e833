import { describe, expect, it } from 'vitest';
import type { Character } from '../characters/index.js';
import { countTokens } from '../characters/token-counter.js';
import { sampleCharacter } from '../../../test/helpers/character-fixture.js';
import { buildPrompt, draftPrompt, type HistoryMessage, type PromptInput } from './prompt-builder.js';

const character = (overrides: Partial<Character> = {}) => sampleCharacter({ description: 'A Victorian mathematician.', ...overrides });

function input(overrides: Partial<PromptInput> = {}): PromptInput {
  return {
    character: character(),
    userName: 'Grace',
    speakerName: 'Grace',
    history: [],
    group: false,
    memorySection: '',
    clientSystemMessages: [],
    clientHistory: [],
    newMessage: { text: 'Hello', imageParts: [], imageDescriptions: [] },
    historyTokenBudget: 1000,
    lorebookTokenBudget: 500,
    countTokens,
    ...overrides,
  };
}

const turn = (role: 'user' | 'assistant', content: string, speakerName: string | null = null): HistoryMessage => ({ role, content, speakerName, tokenCount: countTokens(content) });

describe('buildPrompt', () => {
  it('puts the system prompt first and the new message last', () => {
    const built = buildPrompt(input());
    expect(built.messages[0]).toMatchObject({ role: 'system' });
    expect(built.messages[0]!.content).toContain('You are Ada.');
    expect(built.messages.at(-1)).toEqual({ role: 'user', content: 'Hello' });
  });

  it('drops the oldest history first when over the token budget', () => {
    const history = Array.from({ length: 30 }, (_, index) => turn(index % 2 === 0 ? 'user' : 'assistant', `message number ${index} with some padding words`));
    const perMessage = countTokens('message number 10 with some padding words');
    const built = buildPrompt(input({ history, historyTokenBudget: perMessage * 5 + 1 }));
    const contents = built.messages.slice(1, -1).map((message) => message.content);
    expect(contents).toHaveLength(5);
    expect(contents.at(-1)).toBe('message number 29 with some padding words');
    expect(contents[0]).toBe('message number 25 with some padding words');
    expect(built.historyMessages).toBe(5);
  });

  it('prefixes speaker names in a group channel, for history and the new message', () => {
    const built = buildPrompt(input({ group: true, history: [turn('user', 'hi all', 'Bob'), turn('assistant', 'Hello Bob')] }));
    expect(built.messages.slice(1).map((message) => message.content)).toEqual(['Bob: hi all', 'Hello Bob', 'Grace: Hello']);
    expect(built.messages[0]!.content).toContain('group conversation');
  });

  it('never prefixes a speaker without a name (no "User: "), and prefixes nobody outside a group', () => {
    const unnamed = buildPrompt(input({ group: true, userName: 'User', speakerName: null, history: [turn('user', 'earlier', null), turn('user', 'hi all', 'Bob')] }));
    expect(unnamed.messages.slice(1).map((message) => message.content)).toEqual(['earlier', 'Bob: hi all', 'Hello']);
    const alone = buildPrompt(input({ group: false, history: [turn('user', 'hi', 'Grace')] }));
    expect(alone.messages.slice(1).map((message) => message.content)).toEqual(['hi', 'Hello']);
  });

  it('uses client-sent history instead of stored history, and appends client system messages', () => {
    const built = buildPrompt(
      input({
        history: [turn('user', 'stored question')],
        clientHistory: [{ role: 'user', content: 'client question' }],
        clientSystemMessages: ['Reply in French.'],
      }),
    );
    expect(JSON.stringify(built.messages)).not.toContain('stored question');
    expect(built.messages[1]).toEqual({ role: 'user', content: 'client question' });
    expect(built.messages[0]!.content).toMatch(/Reply in French\.$/);
  });

  it('places lorebook entries around the character definition and substitutes macros', () => {
    const built = buildPrompt(
      input({
        character: character({
          postHistoryInstructions: 'Remember {{user}} is tired.',
          characterBook: {
            extensions: {},
            entries: [
              { keys: ['engine'], content: '{{char}} built a model engine.', enabled: true, insertion_order: 1, extensions: {}, position: 'after_char' },
              { keys: ['engine'], content: 'World: steam age.', enabled: true, insertion_order: 0, extensions: {}, position: 'before_char' },
              { keys: ['poetry'], content: 'Never shown.', enabled: true, insertion_order: 2, extensions: {} },
            ],
          },
        }),
        memorySection: 'Memories:\n- {{user}} likes tea',
        newMessage: { text: 'Tell me about the engine', imageParts: [], imageDescriptions: [] },
      }),
    );
    const system = built.messages[0]!.content as string;
    expect(system.indexOf('World: steam age.')).toBeLessThan(system.indexOf('You are Ada.'));
    expect(system.indexOf('Ada built a model engine.')).toBeGreaterThan(system.indexOf('You are Ada.'));
    expect(system).toContain('- Grace likes tea');
    expect(system).not.toContain('Never shown.');
    expect(built.lorebook.entries).toHaveLength(2);
    expect(built.messages.at(-2)).toEqual({ role: 'system', content: 'Remember Grace is tired.' });
  });

  it('sends images as parts to vision models and descriptions as text otherwise', () => {
    const withParts = buildPrompt(input({ newMessage: { text: 'What is this?', imageParts: [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }], imageDescriptions: [] } }));
    expect(withParts.messages.at(-1)!.content).toEqual([
      { type: 'text', text: 'What is this?' },
      { type: 'image_url', image_url: { url: 'https://x/y.png' } },
    ]);
    const described = buildPrompt(input({ newMessage: { text: 'What is this?', imageParts: [], imageDescriptions: ['A red bicycle.'] } }));
    expect(described.messages.at(-1)!.content).toBe('What is this?\n\n[The user shared an image. It shows: A red bicycle.]');
  });

  it('drafts the prompt before its memories: the same prompt once completed, its estimate within a few tokens of counting the whole', () => {
    const long = sampleCharacter({ description: Array.from({ length: 60 }, (_, index) => `Ada keeps notebook ${index} of engine designs and poems.`).join(' ') });
    const memorySection = 'Things you remember from earlier conversations:\n- (about Grace) Grace likes tea\n- (about Grace) Grace has a cat named Byron';
    const whole = input({ character: long, memorySection, clientSystemMessages: ['Answer in English.'], history: [turn('user', 'Hello'), turn('assistant', 'Good day.')] });
    const { memorySection: _memory, ...rest } = whole;
    void _memory;
    const draft = draftPrompt(rest);
    const completed = draft.complete({ text: memorySection });
    expect(completed.messages).toEqual(buildPrompt(whole).messages);
    expect(completed.estimatedTokens).toBeGreaterThan(draft.estimateWithMemory(0));
    // The estimate counts section by section; the joined system message, counted whole, differs by a token a separator at most.
    const system = completed.messages[0]!.content as string;
    const counted = countTokens(system) + countTokens('Hello') + countTokens('Good day.') + countTokens('Hello');
    expect(Math.abs(completed.estimatedTokens - counted)).toBeLessThanOrEqual(4);
    expect(draft.complete({ text: '' }).estimatedTokens).toBe(draft.estimateWithMemory(0));
  });

  it('never counts the memory section when its count is given, nor the joined system message: the character card is counted as the same text every turn', () => {
    const long = sampleCharacter({ description: Array.from({ length: 60 }, (_, index) => `Ada keeps notebook ${index} of engine designs.`).join(' ') });
    const counted: string[] = [];
    const counting = (text: string) => (counted.push(text), countTokens(text));
    const build = (memory: string) => buildPrompt({ ...input({ character: long, countTokens: counting, memorySection: memory }), memorySectionTokens: 17 });
    const first = build('Memories:\n- Grace likes tea');
    const firstCounted = [...counted];
    counted.length = 0;
    const second = build('Memories:\n- Grace has a cat');
    // Both turns count exactly the same texts (a memo answers them after the first turn); no memory text, no whole system message.
    expect(counted).toEqual(firstCounted);
    expect(counted.some((text) => text.includes('Grace likes tea') || text.includes('Grace has a cat'))).toBe(false);
    expect(counted).not.toContain(first.messages[0]!.content);
    expect(second.estimatedTokens).toBe(first.estimatedTokens);
  });
});
