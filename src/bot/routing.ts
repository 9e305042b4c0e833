import type { BindingView } from './anima-client.js';
import { mentionsWord } from './text.js';

/** What the bot knows about one incoming message, for choosing who answers. */
export interface MessageFacts {
  content: string;
  /** The bot's user was @mentioned. */
  mentionsBot: boolean;
  /** The character whose message this one replies to, if any. */
  repliedToCharacterId: string | undefined;
  isDirectMessage: boolean;
  /** A `!command` for the characters (!reset, !wack…): the channel's first character takes it. */
  isCharacterCommand: boolean;
}

export interface RoutingState {
  /** The character that last spoke in this channel, preferred when nobody is named. */
  lastSpeakerId: string | undefined;
  /** When the last unprompted (free will) reply was sent in this channel, ms since epoch. */
  lastFreeWillAt: number | undefined;
  now: number;
  /** A number in [0, 1); injectable for tests. */
  random: () => number;
}

export interface Responder {
  binding: BindingView;
  reason: 'named' | 'reply' | 'word' | 'mention' | 'every_message' | 'direct_message' | 'command' | 'free_will';
}

/**
 * Who answers a message. Characters the user addressed specifically (by name, by replying to them,
 * by one of their trigger words) all answer; otherwise one character answers a general trigger
 * (an @mention of the bot, a DM, "every message"), preferring the one that spoke last; otherwise
 * at most one may speak up unprompted (free will: probability and cooldown).
 */
export function chooseResponders(bindings: BindingView[], facts: MessageFacts, state: RoutingState): Responder[] {
  if (bindings.length === 0) return [];
  if (facts.isCharacterCommand) return [{ binding: bindings[0]!, reason: 'command' }];

  const addressed: Responder[] = [];
  for (const binding of bindings) {
    const { triggers, character } = binding;
    if (triggers.reply && facts.repliedToCharacterId === character.id) addressed.push({ binding, reason: 'reply' });
    else if (triggers.name && (mentionsWord(facts.content, character.name) || mentionsWord(facts.content, character.slug))) addressed.push({ binding, reason: 'named' });
    else if (triggers.words.some((word) => mentionsWord(facts.content, word))) addressed.push({ binding, reason: 'word' });
  }
  if (addressed.length > 0) return addressed;

  const general: Responder[] = [];
  for (const binding of bindings) {
    if (facts.isDirectMessage) general.push({ binding, reason: 'direct_message' });
    else if (binding.triggers.mention && facts.mentionsBot) general.push({ binding, reason: 'mention' });
    else if (binding.triggers.every_message) general.push({ binding, reason: 'every_message' });
  }
  if (general.length > 0) {
    const previous = general.find((responder) => responder.binding.character.id === state.lastSpeakerId);
    return [previous ?? general[0]!];
  }

  for (const binding of bindings) {
    const freeWill = binding.free_will;
    if (!freeWill.enabled || freeWill.probability <= 0) continue;
    if (state.lastFreeWillAt !== undefined && state.now - state.lastFreeWillAt < freeWill.cooldown_seconds * 1000) continue;
    if (state.random() < freeWill.probability) return [{ binding, reason: 'free_will' }];
  }
  return [];
}
