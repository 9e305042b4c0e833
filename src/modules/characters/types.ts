import type { ModelSettings } from '../../infra/db/schema.js';
import type { Actor } from '../identity/authorization.js';

export type { ModelSettings };

export const INTERACTION_STYLES = ['formal', 'casual', 'playful', 'scholarly', 'supportive', 'sarcastic'] as const;
export type InteractionStyle = (typeof INTERACTION_STYLES)[number];

export const VISIBILITIES = ['private', 'public'] as const;
export type Visibility = (typeof VISIBILITIES)[number];

export const CHAT_PROVIDERS = ['openrouter', 'openai', 'xai', 'gemini'] as const;

/** Who is looking at or changing a character: the authorization actor (role, acting user, the service key's own user). */
export type CharacterViewer = Actor;

/**
 * One lorebook entry, in the Character Card V2 `character_book` shape (snake_case, as the spec
 * writes it) so that imported books round-trip unchanged. V3 adds `use_regex`; unknown members survive.
 */
export interface CharacterBookEntry {
  keys: string[];
  content: string;
  extensions: Record<string, unknown>;
  enabled: boolean;
  insertion_order: number;
  case_sensitive?: boolean;
  name?: string;
  priority?: number;
  id?: number | string;
  comment?: string;
  selective?: boolean;
  secondary_keys?: string[];
  constant?: boolean;
  position?: 'before_char' | 'after_char';
  use_regex?: boolean;
  [member: string]: unknown;
}

export interface CharacterBook {
  name?: string;
  description?: string;
  scan_depth?: number;
  token_budget?: number;
  recursive_scanning?: boolean;
  extensions: Record<string, unknown>;
  entries: CharacterBookEntry[];
  [member: string]: unknown;
}

/**
 * A character as the rest of the platform sees it (camelCase, from the `characters` row).
 * Timestamps are ISO strings so the object survives the JSON cache unchanged.
 */
export interface Character {
  id: string;
  slug: string;
  name: string;
  description: string;
  /** Free-text personality summary (Character Card `personality`); kept in `card`, shown in the prompt. */
  personality: string;
  personalityTraits: Record<string, number>;
  interactionStyle: InteractionStyle;
  voiceCharacteristics: Record<string, unknown>;
  knowledgeDomains: string[];
  exampleDialogues: Array<{ user: string; assistant: string }>;
  backstory: string;
  scenario: string;
  voiceId: string | null;
  greeting: string | null;
  alternateGreetings: string[];
  modelSettings: ModelSettings;
  systemPromptOverride: string | null;
  postHistoryInstructions: string | null;
  /** Character Card fields without a column of their own (tags, creator, extensions…), kept for round trips. */
  card: Record<string, unknown>;
  characterBook: CharacterBook | null;
  /**
   * An image URL, or — when the image bytes are stored with the character (PNG card imports) —
   * the API path that serves them (`/v1/characters/<id>/avatar`). Null when there is none.
   */
  avatar: string | null;
  ownerUserId: string | null;
  visibility: Visibility;
  createdAt: string;
  updatedAt: string;
}

/** What create/update accept; every field but `name` is optional on create. */
export interface CharacterInput {
  slug?: string | undefined;
  name: string;
  description?: string | undefined;
  personality?: string | undefined;
  personalityTraits?: Record<string, number> | undefined;
  interactionStyle?: InteractionStyle | undefined;
  voiceCharacteristics?: Record<string, unknown> | undefined;
  knowledgeDomains?: string[] | undefined;
  exampleDialogues?: Array<{ user: string; assistant: string }> | undefined;
  backstory?: string | undefined;
  scenario?: string | undefined;
  voiceId?: string | null | undefined;
  greeting?: string | null | undefined;
  alternateGreetings?: string[] | undefined;
  modelSettings?: ModelSettings | undefined;
  systemPromptOverride?: string | null | undefined;
  postHistoryInstructions?: string | null | undefined;
  card?: Record<string, unknown> | undefined;
  characterBook?: CharacterBook | null | undefined;
  /** A URL, or a `data:image/…;base64,` URL whose bytes are stored with the character. */
  avatar?: string | null | undefined;
  visibility?: Visibility | undefined;
}

export type CharacterPatch = Partial<CharacterInput>;
