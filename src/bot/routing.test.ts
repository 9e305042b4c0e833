import { describe, expect, it } from 'vitest';
import type { BindingView } from './anima-client.js';
import { chooseResponders, type MessageFacts, type RoutingState } from './routing.js';

function binding(name: string, overrides: Partial<BindingView> = {}): BindingView {
  return {
    id: `b-${name}`,
    platform: 'discord',
    guild_id: 'g',
    channel_id: 'c',
    category_id: null,
    scope: 'channel',
    character: { id: `id-${name}`, slug: name.toLowerCase(), name, avatar_url: null },
    triggers: { mention: true, reply: true, name: true, words: [], every_message: false },
    free_will: { enabled: false, probability: 0, cooldown_seconds: 300 },
    voice_replies: false,
    ...overrides,
  };
}

const facts = (overrides: Partial<MessageFacts>): MessageFacts => ({
  content: '',
  mentionsBot: false,
  repliedToCharacterId: undefined,
  isDirectMessage: false,
  isCharacterCommand: false,
  ...overrides,
});
const state = (overrides: Partial<RoutingState> = {}): RoutingState => ({ lastSpeakerId: undefined, lastFreeWillAt: undefined, now: 1_000_000, random: () => 0.5, ...overrides });
const names = (responders: ReturnType<typeof chooseResponders>) => responders.map((responder) => `${responder.binding.character.name}:${responder.reason}`);

describe('chooseResponders', () => {
  const mira = binding('Mira');
  const orin = binding('Orin', { triggers: { mention: true, reply: true, name: true, words: ['ship'], every_message: false } });

  it('one character answers an @mention, the one that spoke last when there is one', () => {
    expect(names(chooseResponders([mira, orin], facts({ content: 'hello', mentionsBot: true }), state()))).toEqual(['Mira:mention']);
    expect(names(chooseResponders([mira, orin], facts({ content: 'hello', mentionsBot: true }), state({ lastSpeakerId: 'id-Orin' })))).toEqual(['Orin:mention']);
  });

  it('every character the user names, replies to or calls by a trigger word answers', () => {
    expect(names(chooseResponders([mira, orin], facts({ content: 'Mira and Orin, hi!', mentionsBot: true }), state()))).toEqual(['Mira:named', 'Orin:named']);
    expect(names(chooseResponders([mira, orin], facts({ content: 'what a ship', repliedToCharacterId: 'id-Mira' }), state()))).toEqual(['Mira:reply', 'Orin:word']);
  });

  it('nobody answers an unaddressed message unless a binding answers every message or free will fires', () => {
    expect(chooseResponders([mira, orin], facts({ content: 'just chatting' }), state())).toEqual([]);
    const chatty = binding('Sage', { triggers: { mention: false, reply: true, name: true, words: [], every_message: true } });
    expect(names(chooseResponders([mira, chatty], facts({ content: 'just chatting' }), state()))).toEqual(['Sage:every_message']);
  });

  it('free will respects its probability and its cooldown', () => {
    const whimsical = binding('Pip', { free_will: { enabled: true, probability: 0.3, cooldown_seconds: 60 } });
    expect(names(chooseResponders([whimsical], facts({ content: 'hm' }), state({ random: () => 0.1 })))).toEqual(['Pip:free_will']);
    expect(chooseResponders([whimsical], facts({ content: 'hm' }), state({ random: () => 0.9 }))).toEqual([]);
    expect(chooseResponders([whimsical], facts({ content: 'hm' }), state({ random: () => 0.1, lastFreeWillAt: 1_000_000 - 30_000 }))).toEqual([]);
    expect(names(chooseResponders([whimsical], facts({ content: 'hm' }), state({ random: () => 0.1, lastFreeWillAt: 1_000_000 - 61_000 })))).toEqual(['Pip:free_will']);
  });

  it('a DM is always answered by one character, and a !command goes to the first', () => {
    expect(names(chooseResponders([mira, orin], facts({ content: 'hi', isDirectMessage: true }), state()))).toEqual(['Mira:direct_message']);
    expect(names(chooseResponders([mira, orin], facts({ content: '!reset', isCharacterCommand: true }), state()))).toEqual(['Mira:command']);
  });
});
