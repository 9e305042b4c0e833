import type { Config } from '../../config.js';
import type { Character, InteractionStyle } from './types.js';

/**
 * The system prompt generated from a character's fields, its default sampling temperature and
 * the model settings a chat request uses. Pure functions: the chat engine calls them per turn.
 */

const STYLE_DESCRIPTIONS: Record<InteractionStyle, string> = {
  formal: 'Speak formally and courteously: complete sentences, precise wording, no slang.',
  casual: 'Speak casually and naturally, like a friend chatting: relaxed wording, contractions, short replies when they fit.',
  playful: 'Be playful and light-hearted: tease gently, joke, use wordplay and enthusiasm.',
  scholarly: 'Speak like a thoughtful scholar: explain carefully, cite what you know, distinguish fact from conjecture.',
  supportive: 'Be warm and supportive: listen closely, acknowledge feelings, encourage, never lecture.',
  sarcastic: 'Be dry and sarcastic: deadpan wit and irony, but never cruel, and still answer the question.',
};

/**
 * Temperature by style when the character sets none. Analytic styles run cooler for consistency,
 * humorous ones warmer for variety: scholarly 0.4, formal 0.5, supportive 0.7, casual 0.8,
 * sarcastic 0.9, playful 0.95.
 */
const STYLE_TEMPERATURES: Record<InteractionStyle, number> = {
  scholarly: 0.4,
  formal: 0.5,
  supportive: 0.7,
  casual: 0.8,
  sarcastic: 0.9,
  playful: 0.95,
};

export const DEFAULT_MAX_TOKENS = 1024;

export function defaultTemperature(style: InteractionStyle): number {
  return STYLE_TEMPERATURES[style];
}

export function describeStyle(style: InteractionStyle): string {
  return STYLE_DESCRIPTIONS[style];
}

/** "strongly" (≥ 0.7), "moderately" (≥ 0.4) or "slightly". */
export function traitStrength(value: number): 'strongly' | 'moderately' | 'slightly' {
  if (value >= 0.7) return 'strongly';
  if (value >= 0.4) return 'moderately';
  return 'slightly';
}

/**
 * Replaces `{{char}}` / `{{user}}` (any case, inner spaces allowed) and SillyTavern's older
 * `<BOT>` / `<CHAR>` / `<USER>` with the names. Callers use it for greetings and lorebook text too.
 */
export function substituteMacros(text: string, names: { char: string; user: string }): string {
  return text
    .replace(/\{\{\s*char\s*\}\}|<(?:bot|char)>/gi, () => names.char)
    .replace(/\{\{\s*user\s*\}\}|<user>/gi, () => names.user);
}

function humanList(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}

function describeTraits(traits: Record<string, number>): string | undefined {
  const entries = Object.entries(traits)
    .filter(([, value]) => Number.isFinite(value) && value > 0)
    .sort(([leftName, left], [rightName, right]) => right - left || leftName.localeCompare(rightName));
  if (entries.length === 0) return undefined;
  return humanList(entries.map(([trait, value]) => `${traitStrength(value)} ${trait.replaceAll('_', ' ').trim()}`));
}

function describeVoice(voice: Record<string, unknown>): string | undefined {
  const parts: string[] = [];
  for (const [aspect, value] of Object.entries(voice)) {
    if (value === null || value === undefined || value === '') continue;
    const rendered = Array.isArray(value)
      ? value.map((item) => (typeof item === 'string' ? item : JSON.stringify(item))).join(', ')
      : typeof value === 'string'
        ? value
        : JSON.stringify(value);
    parts.push(`${aspect.replaceAll('_', ' ')}: ${rendered}`);
  }
  return parts.length > 0 ? parts.join('; ') : undefined;
}

/** The generated prompt, or the override when one is set; macros substituted either way. */
export function buildSystemPrompt(character: Character, names: { user: string }): string {
  const macroNames = { char: character.name, user: names.user };
  if (character.systemPromptOverride?.trim()) return substituteMacros(character.systemPromptOverride, macroNames);

  const sections: string[] = [];
  const introduction = [`You are ${character.name}.`];
  if (character.description.trim()) introduction.push(character.description.trim());
  sections.push(introduction.join(' '));

  if (character.personality.trim()) sections.push(`Personality: ${character.personality.trim()}`);
  const traits = describeTraits(character.personalityTraits);
  if (traits) sections.push(`You are ${traits}.`);
  sections.push(`Style: ${describeStyle(character.interactionStyle)}`);
  if (character.backstory.trim()) sections.push(`Backstory: ${character.backstory.trim()}`);
  if (character.scenario.trim()) sections.push(`Scenario: ${character.scenario.trim()}`);
  const domains = character.knowledgeDomains.map((domain) => domain.trim()).filter(Boolean);
  if (domains.length > 0) sections.push(`You are especially knowledgeable about ${humanList(domains)}.`);
  const voice = describeVoice(character.voiceCharacteristics);
  if (voice) sections.push(`Your voice and manner of speaking: ${voice}.`);
  if (character.exampleDialogues.length > 0) {
    const examples = character.exampleDialogues
      .map((dialogue) => `{{user}}: ${dialogue.user}\n{{char}}: ${dialogue.assistant}`)
      .join('\n\n');
    sections.push(`Examples of how you talk (match the manner, not the words):\n${examples}`);
  }
  sections.push(
    `Stay in character as ${character.name} at all times. You are talking with {{user}}. Never say you are an AI language model unless the character would.`,
  );
  return substituteMacros(sections.join('\n\n'), macroNames);
}

export interface ResolvedModelSettings {
  provider: 'openrouter' | 'openai' | 'xai' | 'gemini';
  model: string;
  temperature: number;
  maxTokens: number;
  fallbackModels: string[];
  vision: boolean;
}

/** xAI has no equivalent of the OpenRouter default, so a Grok character without a model gets this one. */
const DEFAULT_XAI_MODEL = 'grok-3-mini';
const DEFAULT_GEMINI_MODEL = 'gemini-2.5-flash';

function defaultModelFor(provider: ResolvedModelSettings['provider'], defaultChatModel: string): string {
  switch (provider) {
    case 'openrouter':
      return defaultChatModel;
    case 'openai':
      // DEFAULT_CHAT_MODEL is an OpenRouter id ("openai/gpt-4o-mini"); OpenAI itself wants the bare name.
      return defaultChatModel.startsWith('openai/') ? defaultChatModel.slice('openai/'.length) : 'gpt-4o-mini';
    case 'xai':
      return DEFAULT_XAI_MODEL;
    case 'gemini':
      return DEFAULT_GEMINI_MODEL;
  }
}

/** The provider, model and sampling settings for a chat with this character (OpenRouter by default). */
export function resolveModelSettings(character: Character, config: Pick<Config, 'defaultChatModel'>): ResolvedModelSettings {
  const settings = character.modelSettings;
  const provider = settings.provider ?? 'openrouter';
  return {
    provider,
    model: settings.model?.trim() || defaultModelFor(provider, config.defaultChatModel),
    temperature: settings.temperature ?? defaultTemperature(character.interactionStyle),
    maxTokens: settings.maxTokens ?? DEFAULT_MAX_TOKENS,
    fallbackModels: settings.fallbackModels ?? [],
    vision: settings.vision ?? false,
  };
}
