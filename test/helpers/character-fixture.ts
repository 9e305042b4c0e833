import type { Character } from '../../src/modules/characters/types.js';

/** A complete Character with neutral defaults, for unit tests of prompt building. */
export function sampleCharacter(overrides: Partial<Character> = {}): Character {
  return {
    id: '00000000-0000-4000-8000-000000000001',
    slug: 'ada',
    name: 'Ada',
    description: 'A Victorian mathematician who loves engines.',
    personality: '',
    personalityTraits: {},
    interactionStyle: 'scholarly',
    voiceCharacteristics: {},
    knowledgeDomains: [],
    exampleDialogues: [],
    backstory: '',
    scenario: '',
    voiceId: null,
    greeting: null,
    alternateGreetings: [],
    modelSettings: {},
    voiceSettings: {},
    systemPromptOverride: null,
    postHistoryInstructions: null,
    card: {},
    characterBook: null,
    avatar: null,
    ownerUserId: null,
    visibility: 'public',
    createdAt: '2024-01-01T00:00:00.000Z',
    updatedAt: '2024-01-01T00:00:00.000Z',
    ...overrides,
  };
}
