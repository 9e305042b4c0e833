import { z } from 'zod';
import { ValidationError } from '../../infra/http/errors.js';
import { IMAGE_PROVIDERS, IMAGE_STYLES } from '../../providers/images/image-model.js';
import { modelSettingsFromWire } from './schemas.js';
import { INTERACTION_STYLES, type Character, type CharacterBook, type CharacterInput } from './types.js';

/**
 * Character Card V2 (`chara_card_v2`) and V3 (`chara_card_v3`) ↔ characters.
 *
 * Card fields with a column map to it (first_mes → greeting, system_prompt → override…);
 * `mes_example` is parsed into example dialogues and also kept raw; every other data field —
 * creator_notes, tags, creator, character_version, extensions, the V3 additions and fields this
 * code does not know — is kept in `card` and written back on export, so a round trip loses nothing.
 * Anima's own fields without a card equivalent travel in `extensions.anima`, written only when
 * they differ from the defaults, so a card that came from elsewhere exports exactly as it came.
 */

/**
 * SillyTavern writes the V1 fields again at the top level of a V2/V3 card (beside `spec` and
 * `data`), plus its own extras (`create_date`, `talkativeness`, `fav`, `creatorcomment`, `avatar`,
 * `chat`, `tags`…). Export writes the V1 copies from the character; the extras are kept, under
 * this key of the card bag, and written back as they came.
 */
const TOP_LEVEL_BAG_KEY = 'anima_top_level';
const V1_COPY_FIELDS = ['name', 'description', 'personality', 'scenario', 'first_mes', 'mes_example'] as const;
const ENVELOPE_FIELDS = new Set<string>(['spec', 'spec_version', 'data', ...V1_COPY_FIELDS]);

const V3_ONLY_FIELDS = ['nickname', 'creator_notes_multilingual', 'source', 'group_only_greetings', 'creation_date', 'modification_date', 'assets'] as const;

/** Data fields that map to columns (or to `personality`); everything else stays in the card bag. */
const MAPPED_FIELDS = new Set([
  'name',
  'description',
  'personality',
  'scenario',
  'first_mes',
  'alternate_greetings',
  'system_prompt',
  'post_history_instructions',
  'character_book',
]);

const text = (field: string) => z.string({ error: `${field} must be text` });

const bookEntrySchema = z.looseObject({
  keys: z.array(z.string()),
  content: z.string(),
  secondary_keys: z.array(z.string()).optional(),
  insertion_order: z.number().optional(),
  priority: z.number().optional(),
  enabled: z.boolean().optional(),
  constant: z.boolean().optional(),
  selective: z.boolean().optional(),
  case_sensitive: z.boolean().optional(),
  position: z.string().optional(),
  extensions: z.record(z.string(), z.unknown()).optional(),
});

const bookSchema = z.looseObject({
  entries: z.array(bookEntrySchema),
  scan_depth: z.number().optional(),
  token_budget: z.number().optional(),
  recursive_scanning: z.boolean().optional(),
  extensions: z.record(z.string(), z.unknown()).optional(),
});

const cardDataSchema = z.looseObject({
  name: text('name').trim().min(1, 'a card needs a name').max(200),
  description: text('description').optional(),
  personality: text('personality').optional(),
  scenario: text('scenario').optional(),
  first_mes: text('first_mes').optional(),
  mes_example: text('mes_example').optional(),
  creator_notes: text('creator_notes').optional(),
  system_prompt: text('system_prompt').optional(),
  post_history_instructions: text('post_history_instructions').optional(),
  alternate_greetings: z.array(z.string()).optional(),
  character_book: bookSchema.nullable().optional(),
  tags: z.array(z.string()).optional(),
  creator: text('creator').optional(),
  character_version: text('character_version').optional(),
  extensions: z.record(z.string(), z.unknown()).optional(),
});

const animaExtensionSchema = z
  .object({
    personality_traits: z.record(z.string(), z.number().min(0).max(1)).optional(),
    interaction_style: z.enum(INTERACTION_STYLES).optional(),
    voice_characteristics: z.record(z.string(), z.unknown()).optional(),
    knowledge_domains: z.array(z.string()).optional(),
    backstory: z.string().optional(),
    voice_id: z.string().nullable().optional(),
    model_settings: z
      .object({
        provider: z.enum(['openrouter', 'openai', 'xai', 'gemini']).optional(),
        model: z.string().optional(),
        temperature: z.number().min(0).max(2).optional(),
        max_tokens: z.number().int().min(1).optional(),
        fallback_models: z.array(z.string()).optional(),
        vision: z.boolean().optional(),
        image: z.object({ provider: z.enum(IMAGE_PROVIDERS).optional(), style: z.enum(IMAGE_STYLES).optional(), model: z.string().optional() }).optional(),
      })
      .optional(),
  })
  .catch({});

export type CardVersion = 'v1' | 'v2' | 'v3';

export interface ParsedCard {
  version: CardVersion;
  input: CharacterInput;
}

function issueField(path: PropertyKey[], prefix: string): string {
  return [prefix, ...path.map(String)].filter(Boolean).join('.');
}

/** Validates a card (V3, V2, or a flat V1 object) and maps it to character input. */
export function parseCard(value: unknown): ParsedCard {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError('body', 'A character card is a JSON object.');
  }
  const envelope = value as Record<string, unknown>;
  let version: CardVersion;
  let data: unknown;
  let prefix: string;
  if (envelope.spec === 'chara_card_v3') {
    version = 'v3';
    data = envelope.data;
    prefix = 'data';
  } else if (envelope.spec === 'chara_card_v2') {
    version = 'v2';
    data = envelope.data;
    prefix = 'data';
  } else if (envelope.spec === undefined && typeof envelope.name === 'string') {
    // V1: the fields at the top level, no envelope.
    version = 'v1';
    data = envelope;
    prefix = '';
  } else {
    throw new ValidationError('spec', 'Unknown card format: expected spec "chara_card_v2" or "chara_card_v3".');
  }
  const parsed = cardDataSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issueField(issue.path, prefix) || 'data';
    throw new ValidationError(field, `Invalid card field ${field}: ${issue.message}`);
  }
  const topLevel: Record<string, unknown> = {};
  if (version !== 'v1') for (const [field, fieldValue] of Object.entries(envelope)) if (!ENVELOPE_FIELDS.has(field)) topLevel[field] = fieldValue;
  return { version, input: cardDataToInput(parsed.data, topLevel) };
}

function cardDataToInput(data: Record<string, unknown>, topLevel: Record<string, unknown>): CharacterInput {
  const card: Record<string, unknown> = {};
  for (const [field, fieldValue] of Object.entries(data)) if (!MAPPED_FIELDS.has(field) && field !== TOP_LEVEL_BAG_KEY) card[field] = fieldValue;
  if (Object.keys(topLevel).length > 0) card[TOP_LEVEL_BAG_KEY] = topLevel;

  // Anima's own fields come back out of extensions.anima; the rest of extensions is kept verbatim.
  let anima: z.infer<typeof animaExtensionSchema> = {};
  if (card.extensions && typeof card.extensions === 'object') {
    const { anima: animaExtension, ...otherExtensions } = card.extensions as Record<string, unknown>;
    if (animaExtension !== undefined) {
      anima = animaExtensionSchema.parse(animaExtension);
      card.extensions = otherExtensions;
    }
  }
  const mesExample = typeof data.mes_example === 'string' ? data.mes_example : '';
  const settings = anima.model_settings;
  const nonEmpty = (candidate: unknown) => (typeof candidate === 'string' && candidate !== '' ? candidate : null);
  return {
    name: String(data.name).trim(),
    description: typeof data.description === 'string' ? data.description : '',
    personality: typeof data.personality === 'string' ? data.personality : '',
    scenario: typeof data.scenario === 'string' ? data.scenario : '',
    greeting: nonEmpty(data.first_mes),
    alternateGreetings: Array.isArray(data.alternate_greetings) ? (data.alternate_greetings as string[]) : [],
    systemPromptOverride: nonEmpty(data.system_prompt),
    postHistoryInstructions: nonEmpty(data.post_history_instructions),
    characterBook: (data.character_book as CharacterBook | null | undefined) ?? null,
    exampleDialogues: parseExampleMessages(mesExample),
    card,
    personalityTraits: anima.personality_traits,
    interactionStyle: anima.interaction_style,
    voiceCharacteristics: anima.voice_characteristics,
    knowledgeDomains: anima.knowledge_domains,
    backstory: anima.backstory,
    voiceId: anima.voice_id,
    modelSettings: settings ? modelSettingsFromWire(settings) : undefined,
  };
}

const SPEAKER_LINE = /^\s*(\{\{\s*user\s*\}\}|<user>|\{\{\s*char\s*\}\}|<bot>|<char>)\s*:\s?(.*)$/i;

/**
 * `mes_example` → dialogues: blocks start with `<START>`; `{{user}}:` / `{{char}}:` lines open a
 * turn, other lines continue it. Consecutive user-then-character turns make one example; a
 * character line with no user line before it pairs with an empty user turn.
 */
export function parseExampleMessages(raw: string): Array<{ user: string; assistant: string }> {
  const dialogues: Array<{ user: string; assistant: string }> = [];
  for (const block of raw.split(/<start>/i)) {
    const turns: Array<{ speaker: 'user' | 'char'; lines: string[] }> = [];
    for (const line of block.split(/\r?\n/)) {
      const match = SPEAKER_LINE.exec(line);
      if (match) {
        turns.push({ speaker: /user/i.test(match[1]!) ? 'user' : 'char', lines: [match[2]!] });
      } else if (turns.length > 0) {
        turns.at(-1)!.lines.push(line);
      }
    }
    let pendingUser: string | undefined;
    for (const turn of turns) {
      const content = turn.lines.join('\n').trim();
      if (turn.speaker === 'user') {
        pendingUser = pendingUser === undefined ? content : `${pendingUser}\n${content}`;
      } else {
        dialogues.push({ user: pendingUser ?? '', assistant: content });
        pendingUser = undefined;
      }
    }
  }
  return dialogues;
}

export function formatExampleMessages(dialogues: Array<{ user: string; assistant: string }>): string {
  return dialogues
    .map((dialogue) => ['<START>', ...(dialogue.user ? [`{{user}}: ${dialogue.user}`] : []), `{{char}}: ${dialogue.assistant}`].join('\n'))
    .join('\n');
}

function sameDialogues(left: Array<{ user: string; assistant: string }>, right: Array<{ user: string; assistant: string }>): boolean {
  return left.length === right.length && left.every((dialogue, index) => dialogue.user === right[index]?.user && dialogue.assistant === right[index]?.assistant);
}

function animaExtension(character: Character): Record<string, unknown> | undefined {
  const settings = character.modelSettings;
  const modelSettings = {
    ...(settings.provider !== undefined && { provider: settings.provider }),
    ...(settings.model !== undefined && { model: settings.model }),
    ...(settings.temperature !== undefined && { temperature: settings.temperature }),
    ...(settings.maxTokens !== undefined && { max_tokens: settings.maxTokens }),
    ...(settings.fallbackModels !== undefined && { fallback_models: settings.fallbackModels }),
    ...(settings.vision !== undefined && { vision: settings.vision }),
    ...(settings.image !== undefined && Object.keys(settings.image).length > 0 && { image: settings.image }),
  };
  const extension = {
    ...(Object.keys(character.personalityTraits).length > 0 && { personality_traits: character.personalityTraits }),
    ...(character.interactionStyle !== 'casual' && { interaction_style: character.interactionStyle }),
    ...(Object.keys(character.voiceCharacteristics).length > 0 && { voice_characteristics: character.voiceCharacteristics }),
    ...(character.knowledgeDomains.length > 0 && { knowledge_domains: character.knowledgeDomains }),
    ...(character.backstory !== '' && { backstory: character.backstory }),
    ...(character.voiceId !== null && { voice_id: character.voiceId }),
    ...(Object.keys(modelSettings).length > 0 && { model_settings: modelSettings }),
  };
  return Object.keys(extension).length > 0 ? extension : undefined;
}

function cardData(character: Character, version: 'v2' | 'v3'): Record<string, unknown> {
  const { card } = character;
  const stored = (field: string) => card[field];
  const storedText = (field: string) => (typeof card[field] === 'string' ? card[field] : '');
  const rawExamples = storedText('mes_example');
  const mesExample = sameDialogues(parseExampleMessages(rawExamples), character.exampleDialogues)
    ? rawExamples
    : formatExampleMessages(character.exampleDialogues);
  const storedExtensions = card.extensions && typeof card.extensions === 'object' ? (card.extensions as Record<string, unknown>) : {};
  const anima = animaExtension(character);
  const extensions = anima ? { ...storedExtensions, anima } : storedExtensions;

  const data: Record<string, unknown> = {
    name: character.name,
    description: character.description,
    personality: character.personality,
    scenario: character.scenario,
    first_mes: character.greeting ?? '',
    mes_example: mesExample,
    creator_notes: storedText('creator_notes'),
    system_prompt: character.systemPromptOverride ?? '',
    post_history_instructions: character.postHistoryInstructions ?? '',
    alternate_greetings: character.alternateGreetings,
    ...(character.characterBook ? { character_book: character.characterBook } : {}),
    tags: Array.isArray(stored('tags')) ? stored('tags') : [],
    creator: storedText('creator'),
    character_version: storedText('character_version'),
    extensions,
  };
  if (version === 'v3') data.group_only_greetings = Array.isArray(stored('group_only_greetings')) ? stored('group_only_greetings') : [];
  // Fields this code does not map (V3 additions, other tools' fields) are written back as they came.
  for (const [field, fieldValue] of Object.entries(card)) {
    if (field in data || field === 'extensions' || field === TOP_LEVEL_BAG_KEY) continue;
    if (version === 'v2' && (V3_ONLY_FIELDS as readonly string[]).includes(field)) continue;
    data[field] = fieldValue;
  }
  return data;
}

/** The top level of an exported card: the V1 copies (as SillyTavern writes them), then the extras the card came with. */
function topLevelFields(character: Character, data: Record<string, unknown>): Record<string, unknown> {
  const stored = character.card[TOP_LEVEL_BAG_KEY];
  const extras = stored && typeof stored === 'object' && !Array.isArray(stored) ? (stored as Record<string, unknown>) : {};
  const fields: Record<string, unknown> = {};
  for (const field of V1_COPY_FIELDS) fields[field] = data[field];
  for (const [field, fieldValue] of Object.entries(extras)) if (!ENVELOPE_FIELDS.has(field)) fields[field] = fieldValue;
  return fields;
}

export type ExportedCard<Spec extends string, Version extends string> = { spec: Spec; spec_version: Version; data: Record<string, unknown> } & Record<string, unknown>;

export function characterToCardV2(character: Character): ExportedCard<'chara_card_v2', '2.0'> {
  const data = cardData(character, 'v2');
  return { ...topLevelFields(character, data), spec: 'chara_card_v2', spec_version: '2.0', data };
}

export function characterToCardV3(character: Character): ExportedCard<'chara_card_v3', '3.0'> {
  const data = cardData(character, 'v3');
  return { ...topLevelFields(character, data), spec: 'chara_card_v3', spec_version: '3.0', data };
}
