import { z } from 'zod';
import type { ModelSettings } from '../../infra/db/schema.js';
import { IMAGE_PROVIDERS, IMAGE_STYLES } from '../../providers/images/image-model.js';
import { buildSystemPrompt } from './system-prompt.js';
import { CHAT_PROVIDERS, INTERACTION_STYLES, VISIBILITIES, type Character, type CharacterVoiceSettings, type CharacterBook, type CharacterPatch } from './types.js';

/** The HTTP shapes of characters (snake_case) and their mapping to the domain objects. */

const slugSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lower-case letters, digits and dashes, 1-63 characters, starting with a letter or digit');

const modelSettingsSchema = z.object({
  provider: z.enum(CHAT_PROVIDERS).optional(),
  model: z.string().trim().min(1).max(200).optional(),
  temperature: z.number().min(0).max(2).optional(),
  max_tokens: z.number().int().min(1).max(128_000).optional(),
  fallback_models: z.array(z.string().trim().min(1).max(200)).max(10).optional(),
  vision: z.boolean().optional(),
  image: z
    .object({
      provider: z.enum(IMAGE_PROVIDERS).optional(),
      style: z.enum(IMAGE_STYLES).optional(),
      model: z.string().trim().min(1).max(200).optional(),
    })
    .strict()
    .optional()
    .describe('How the character draws for !imagine (provider, style, model); unset = the user’s usable provider'),
});

const voiceSettingsSchema = z
  .object({
    provider: z.enum(['elevenlabs', 'minimax']).optional(),
    model: z.string().trim().min(1).max(200).optional(),
    speed: z.number().min(0.5).max(2).optional(),
    stability: z.number().min(0).max(1).optional(),
    similarity_boost: z.number().min(0).max(1).optional(),
    style: z.number().min(0).max(1).optional(),
    emotion: z.string().trim().min(1).max(40).optional(),
  })
  .describe('How the character speaks aloud; voice_id names the voice (a GET /v1/voices name or a vendor id)');

const dialogueSchema = z.object({ user: z.string().max(10_000), assistant: z.string().max(10_000) });

const characterBookSchema = z
  .looseObject({ entries: z.array(z.looseObject({ keys: z.array(z.string()), content: z.string() })) })
  .describe('A Character Card V2 character_book (lorebook)');

export const characterBodySchema = z.object({
  slug: slugSchema.optional(),
  name: z.string().trim().min(1).max(200),
  description: z.string().max(50_000).optional(),
  personality: z.string().max(20_000).optional(),
  personality_traits: z.record(z.string().min(1).max(64), z.number().min(0).max(1)).optional(),
  interaction_style: z.enum(INTERACTION_STYLES).optional(),
  voice_characteristics: z.record(z.string(), z.unknown()).optional(),
  knowledge_domains: z.array(z.string().trim().min(1).max(200)).max(100).optional(),
  example_dialogues: z.array(dialogueSchema).max(100).optional(),
  backstory: z.string().max(50_000).optional(),
  scenario: z.string().max(20_000).optional(),
  voice_id: z.string().max(200).nullable().optional(),
  greeting: z.string().max(20_000).nullable().optional(),
  alternate_greetings: z.array(z.string().max(20_000)).max(50).optional(),
  model_settings: modelSettingsSchema.optional(),
  voice_settings: voiceSettingsSchema.optional(),
  system_prompt: z.string().max(50_000).nullable().optional().describe('Overrides the generated system prompt'),
  post_history_instructions: z.string().max(20_000).nullable().optional(),
  character_book: characterBookSchema.nullable().optional(),
  card: z.record(z.string(), z.unknown()).optional().describe('Character Card fields without a column (tags, creator, extensions…); a PATCH replaces them whole'),
  avatar: z.string().max(15_000_000).nullable().optional().describe('An http(s) URL or a base64 data URL'),
  visibility: z.enum(VISIBILITIES).optional(),
});

export const characterPatchSchema = characterBodySchema.partial();

export const characterSchema = z.object({
  id: z.string(),
  slug: z.string(),
  name: z.string(),
  description: z.string(),
  personality: z.string(),
  personality_traits: z.record(z.string(), z.number()),
  interaction_style: z.enum(INTERACTION_STYLES),
  voice_characteristics: z.record(z.string(), z.unknown()),
  knowledge_domains: z.array(z.string()),
  example_dialogues: z.array(dialogueSchema),
  backstory: z.string(),
  scenario: z.string(),
  voice_id: z.string().nullable(),
  greeting: z.string().nullable(),
  alternate_greetings: z.array(z.string()),
  model_settings: modelSettingsSchema,
  voice_settings: voiceSettingsSchema,
  system_prompt: z.string().nullable(),
  system_prompt_preview: z.string().describe('The system prompt chats use ({{user}} left in place)'),
  post_history_instructions: z.string().nullable(),
  character_book: z.record(z.string(), z.unknown()).nullable(),
  card: z.record(z.string(), z.unknown()),
  avatar: z.string().nullable(),
  owner_user_id: z.string().nullable(),
  visibility: z.enum(VISIBILITIES),
  created_at: z.string(),
  updated_at: z.string(),
});

export type CharacterBody = z.infer<typeof characterBodySchema>;
export type CharacterPatchBody = z.infer<typeof characterPatchSchema>;

export function bodyToInput(body: CharacterPatchBody): CharacterPatch {
  const settings = body.model_settings;
  return {
    slug: body.slug,
    name: body.name,
    description: body.description,
    personality: body.personality,
    personalityTraits: body.personality_traits,
    interactionStyle: body.interaction_style,
    voiceCharacteristics: body.voice_characteristics,
    knowledgeDomains: body.knowledge_domains,
    exampleDialogues: body.example_dialogues,
    backstory: body.backstory,
    scenario: body.scenario,
    voiceId: body.voice_id,
    greeting: body.greeting,
    alternateGreetings: body.alternate_greetings,
    modelSettings: settings && modelSettingsFromWire(settings),
    voiceSettings: body.voice_settings && voiceSettingsFromWire(body.voice_settings),
    systemPromptOverride: body.system_prompt,
    postHistoryInstructions: body.post_history_instructions,
    characterBook: body.character_book as CharacterBook | null | undefined,
    card: body.card,
    avatar: body.avatar,
    visibility: body.visibility,
  };
}

export function presentCharacter(character: Character): z.infer<typeof characterSchema> {
  const settings = character.modelSettings;
  return {
    id: character.id,
    slug: character.slug,
    name: character.name,
    description: character.description,
    personality: character.personality,
    personality_traits: character.personalityTraits,
    interaction_style: character.interactionStyle,
    voice_characteristics: character.voiceCharacteristics,
    knowledge_domains: character.knowledgeDomains,
    example_dialogues: character.exampleDialogues,
    backstory: character.backstory,
    scenario: character.scenario,
    voice_id: character.voiceId,
    greeting: character.greeting,
    alternate_greetings: character.alternateGreetings,
    model_settings: {
      ...(settings.provider !== undefined && { provider: settings.provider }),
      ...(settings.model !== undefined && { model: settings.model }),
      ...(settings.temperature !== undefined && { temperature: settings.temperature }),
      ...(settings.maxTokens !== undefined && { max_tokens: settings.maxTokens }),
      ...(settings.fallbackModels !== undefined && { fallback_models: settings.fallbackModels }),
      ...(settings.vision !== undefined && { vision: settings.vision }),
      ...(settings.image !== undefined && { image: settings.image }),
    },
    voice_settings: voiceSettingsToWire(character.voiceSettings ?? {}),
    system_prompt: character.systemPromptOverride,
    system_prompt_preview: buildSystemPrompt(character, { user: '{{user}}' }),
    post_history_instructions: character.postHistoryInstructions,
    character_book: character.characterBook,
    card: character.card,
    avatar: character.avatar,
    owner_user_id: character.ownerUserId,
    visibility: character.visibility,
    created_at: character.createdAt,
    updated_at: character.updatedAt,
  };
}

/** `model_settings` as the API and cards spell it (snake_case) → the stored shape, keeping only what was given. */
export function modelSettingsFromWire(settings: {
  provider?: ModelSettings['provider'] | undefined;
  model?: string | undefined;
  temperature?: number | undefined;
  max_tokens?: number | undefined;
  fallback_models?: string[] | undefined;
  vision?: boolean | undefined;
  image?: { provider?: 'fal' | 'openai' | 'stability' | 'kie' | undefined; style?: 'fast' | 'quality' | 'pro' | undefined; model?: string | undefined } | undefined;
}): ModelSettings {
  return {
    ...(settings.provider !== undefined && { provider: settings.provider }),
    ...(settings.model !== undefined && { model: settings.model }),
    ...(settings.temperature !== undefined && { temperature: settings.temperature }),
    ...(settings.max_tokens !== undefined && { maxTokens: settings.max_tokens }),
    ...(settings.fallback_models !== undefined && { fallbackModels: settings.fallback_models }),
    ...(settings.vision !== undefined && { vision: settings.vision }),
    ...(settings.image !== undefined && { image: imageSettingsFromWire(settings.image) }),
  };
}

function imageSettingsFromWire(image: NonNullable<Parameters<typeof modelSettingsFromWire>[0]['image']>): NonNullable<ModelSettings['image']> {
  return {
    ...(image.provider !== undefined && { provider: image.provider }),
    ...(image.style !== undefined && { style: image.style }),
    ...(image.model !== undefined && { model: image.model }),
  };
}

export function voiceSettingsFromWire(settings: z.infer<typeof voiceSettingsSchema>): CharacterVoiceSettings {
  const { similarity_boost: similarityBoost, ...rest } = settings;
  return Object.fromEntries(Object.entries({ ...rest, similarityBoost }).filter(([, value]) => value !== undefined));
}

export function voiceSettingsToWire(settings: CharacterVoiceSettings): z.infer<typeof voiceSettingsSchema> {
  const { similarityBoost, ...rest } = settings;
  return Object.fromEntries(Object.entries({ ...rest, similarity_boost: similarityBoost }).filter(([, value]) => value !== undefined));
}
