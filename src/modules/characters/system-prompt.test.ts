import { describe, expect, it } from 'vitest';
import { buildSystemPrompt, defaultTemperature, resolveModelSettings, substituteMacros, traitStrength } from './system-prompt.js';
import { sampleCharacter } from '../../../test/helpers/character-fixture.js';
import type { Character } from './types.js';

const character = (overrides: Partial<Character> = {}) => sampleCharacter(overrides);

describe('traitStrength', () => {
  it('maps 0.7 and above to strongly, 0.4 and above to moderately, the rest to slightly', () => {
    expect(traitStrength(1)).toBe('strongly');
    expect(traitStrength(0.7)).toBe('strongly');
    expect(traitStrength(0.69)).toBe('moderately');
    expect(traitStrength(0.4)).toBe('moderately');
    expect(traitStrength(0.39)).toBe('slightly');
  });
});

describe('buildSystemPrompt', () => {
  it('describes traits by strength, strongest first, with the style, backstory, scenario, domains, voice and examples', () => {
    const prompt = buildSystemPrompt(
      character({
        personality: 'Brilliant and restless.',
        personalityTraits: { curious: 0.9, shy: 0.2, witty: 0.5, zero: 0 },
        backstory: 'Daughter of a poet.',
        scenario: 'A salon in London, 1843.',
        knowledgeDomains: ['mathematics', 'analytical engines', 'poetry'],
        voiceCharacteristics: { tone: 'warm', pace: 'measured' },
        exampleDialogues: [{ user: 'What is an engine?', assistant: 'A loom for numbers, {{user}}.' }],
      }),
      { user: 'Sam' },
    );
    expect(prompt).toContain('You are Ada. A Victorian mathematician who loves engines.');
    expect(prompt).toContain('Personality: Brilliant and restless.');
    expect(prompt).toContain('You are strongly curious, moderately witty and slightly shy.');
    expect(prompt).not.toContain('zero');
    expect(prompt).toContain('Style: Speak like a thoughtful scholar');
    expect(prompt).toContain('Backstory: Daughter of a poet.');
    expect(prompt).toContain('Scenario: A salon in London, 1843.');
    expect(prompt).toContain('especially knowledgeable about mathematics, analytical engines and poetry.');
    expect(prompt).toContain('tone: warm; pace: measured');
    expect(prompt).toContain('Sam: What is an engine?\nAda: A loom for numbers, Sam.');
    expect(prompt).not.toMatch(/\{\{|\}\}/);
  });

  it('leaves out empty sections', () => {
    const prompt = buildSystemPrompt(character({ description: '' }), { user: 'Sam' });
    expect(prompt).not.toContain('Backstory');
    expect(prompt).not.toContain('Scenario');
    expect(prompt).not.toContain('Examples');
    expect(prompt.startsWith('You are Ada.\n\n')).toBe(true);
  });

  it('uses the override when set, with macros substituted in any case and the SillyTavern forms', () => {
    const prompt = buildSystemPrompt(character({ systemPromptOverride: 'You are {{Char}}; talk to {{ USER }}. <BOT> greets <user>.' }), { user: 'Sam' });
    expect(prompt).toBe('You are Ada; talk to Sam. Ada greets Sam.');
  });

  it('does not treat replacement text as a pattern', () => {
    expect(substituteMacros('{{user}}', { char: 'A', user: '$& and $1' })).toBe('$& and $1');
  });
});

describe('model settings', () => {
  it('defaults temperature from the style', () => {
    expect(defaultTemperature('scholarly')).toBe(0.4);
    expect(defaultTemperature('formal')).toBe(0.5);
    expect(defaultTemperature('supportive')).toBe(0.7);
    expect(defaultTemperature('casual')).toBe(0.8);
    expect(defaultTemperature('sarcastic')).toBe(0.9);
    expect(defaultTemperature('playful')).toBe(0.95);
  });

  it('resolves OpenRouter with the configured default model when the character sets nothing', () => {
    expect(resolveModelSettings(character({ interactionStyle: 'playful' }), { defaultChatModel: 'openai/gpt-4o-mini' })).toEqual({
      provider: 'openrouter',
      model: 'openai/gpt-4o-mini',
      temperature: 0.95,
      maxTokens: 1024,
      fallbackModels: [],
      vision: false,
    });
  });

  it('keeps what the character sets, and gives OpenAI a bare model name', () => {
    const settings = { provider: 'xai' as const, model: 'grok-4', temperature: 0.3, maxTokens: 200, fallbackModels: ['grok-3'], vision: true };
    expect(resolveModelSettings(character({ modelSettings: settings }), { defaultChatModel: 'x/y' })).toEqual(settings);
    expect(resolveModelSettings(character({ modelSettings: { provider: 'openai' } }), { defaultChatModel: 'openai/gpt-4o-mini' }).model).toBe('gpt-4o-mini');
  });
});
