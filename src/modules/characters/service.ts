import type { Logger } from 'pino';
import type { Cache, Events } from '../../infra/cache/index.js';
import type { Database } from '../../infra/db/database.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../../infra/http/errors.js';
import { authorization } from '../identity/authorization.js';
import * as store from './store.js';
import type { CharacterRecord } from './store.js';
import {
  CHAT_PROVIDERS,
  INTERACTION_STYLES,
  VISIBILITIES,
  type Character,
  type CharacterBook,
  type CharacterInput,
  type CharacterPatch,
  type CharacterViewer,
  type InteractionStyle,
} from './types.js';

export const SLUG_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const AVATAR_DATA_URL = /^data:(image\/(?:png|jpeg|webp|gif));base64,([A-Za-z0-9+/]+={0,2})$/;

/** Cross-replica channel: every process drops its in-memory copy of the character named in a message. */
export const CHARACTER_CHANGED_CHANNEL = 'characters:changed';
const SHARED_TTL_SECONDS = 300;
/** In-process copies are short-lived too, so a lost invalidation message heals on its own. */
const LOCAL_TTL_MS = 60_000;
const LOCAL_MAX_ENTRIES = 1_000;

export interface CharactersServiceDependencies {
  db: Database;
  cache: Cache;
  events: Events;
  logger: Logger;
}

export interface CharacterList {
  data: Character[];
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

interface ChangeMessage {
  id: string;
  slugs: string[];
}

/** Lower-case, dash-separated, at most 63 characters; "character" when nothing usable is left. */
export function slugify(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/g, '');
  return slug || 'character';
}

export class CharactersService {
  private readonly local = new Map<string, { character: Character; expiresAt: number }>();
  private readonly localSlugs = new Map<string, string>();
  private unsubscribe: (() => Promise<void>) | undefined;

  constructor(private readonly dependencies: CharactersServiceDependencies) {}

  /** Listens for changes made by other replicas (and this one). */
  async start(): Promise<void> {
    this.unsubscribe = await this.dependencies.events.subscribe(CHARACTER_CHANGED_CHANNEL, (message) => this.dropLocal(message));
  }

  async close(): Promise<void> {
    await this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  /**
   * The character by id or slug. Without a viewer the caller is trusted (the chat engine after its
   * own checks) and sees every character; with one, a private character is visible to its owner,
   * admins and services only — anyone else gets the same 404 as for an unknown character.
   */
  async get(idOrSlug: string, viewer?: CharacterViewer): Promise<Character> {
    const character = await this.load(idOrSlug);
    if (!character || (viewer && !canView(character, viewer))) throw new NotFoundError('Character');
    return character;
  }

  /** Public characters plus the viewer's own; admins see every character. Newest first. */
  async list(options: { viewer: CharacterViewer; limit?: number; cursor?: string | undefined }): Promise<CharacterList> {
    const limit = Math.min(Math.max(options.limit ?? 50, 1), 200);
    let afterId: string | undefined;
    if (options.cursor !== undefined) {
      afterId = Buffer.from(options.cursor, 'base64url').toString('utf8');
      if (!UUID_PATTERN.test(afterId)) throw new ValidationError('query.cursor', 'The cursor is not one this API gave out.');
    }
    const { viewer } = options;
    const visibleTo = authorization.isAdmin(viewer) ? undefined : { userIds: [viewer.userId, viewer.role === 'service' ? viewer.keyUserId : undefined] };
    const rows = await store.listCharacters(this.dependencies.db, { visibleTo, limit: limit + 1, afterId });
    const page = rows.slice(0, limit).map(recordToCharacter);
    const last = page.at(-1);
    return { data: page, nextCursor: rows.length > limit && last ? Buffer.from(last.id, 'utf8').toString('base64url') : null };
  }

  /** Creates a character; the slug comes from the name when not given (409 when a given slug is taken). */
  async create(input: CharacterInput, owner: { userId: string | null }, actor?: CharacterViewer): Promise<Character> {
    validateInput(input, 'create');
    if (actor) {
      assertMayPublish(input.visibility, actor);
      // Public is the default for services and admins; a user's own character starts private.
      if (input.visibility === undefined && !authorization.mayPublish(actor)) input = { ...input, visibility: 'private' };
    }
    const explicitSlug = input.slug !== undefined;
    const base = input.slug ?? slugify(input.name);
    for (let attempt = 1; ; attempt += 1) {
      const slug = explicitSlug || attempt === 1 ? base : `${base.slice(0, 60 - String(attempt).length)}-${attempt}`;
      if (!explicitSlug && attempt <= 20 && (await store.slugExists(this.dependencies.db, slug))) continue;
      try {
        const characterId = await store.insertCharacter(this.dependencies.db, {
          ...toColumns(input),
          name: input.name.trim(),
          slug,
          ownerUserId: owner.userId,
        });
        const created = await store.findCharacterById(this.dependencies.db, characterId);
        return recordToCharacter(created!);
      } catch (error) {
        if (!store.isUniqueViolation(error)) throw error;
        if (explicitSlug || attempt > 20) throw new ConflictError(`The slug "${slug}" is taken.`, { extra: { field: 'slug' } });
      }
    }
  }

  /**
   * Drops a cached character that turned out not to exist in the database (a foreign-key failure
   * from a stale entry, e.g. after the database was restored behind a kept Redis), everywhere.
   */
  async forget(character: Pick<Character, 'id' | 'slug'>): Promise<void> {
    await this.invalidate(character.id, [character.slug]);
  }

  /** Changes the given fields; only the owner, admins and services may. */
  async update(idOrSlug: string, patch: CharacterPatch, actor: CharacterViewer): Promise<Character> {
    const current = await this.loadForChange(idOrSlug, actor);
    validateInput(patch, 'update');
    if (patch.visibility !== current.visibility) assertMayPublish(patch.visibility, actor);
    const values = toColumns(patch, current);
    if (patch.slug !== undefined) values.slug = patch.slug;
    if (patch.name !== undefined) values.name = patch.name.trim();
    try {
      await store.updateCharacter(this.dependencies.db, current.id, values);
    } catch (error) {
      if (store.isUniqueViolation(error)) throw new ConflictError(`The slug "${patch.slug}" is taken.`, { extra: { field: 'slug' } });
      throw error;
    }
    await this.invalidate(current.id, [current.slug, ...(patch.slug ? [patch.slug] : [])]);
    const updated = await store.findCharacterById(this.dependencies.db, current.id);
    if (!updated) throw new NotFoundError('Character');
    return recordToCharacter(updated);
  }

  async remove(idOrSlug: string, actor: CharacterViewer): Promise<void> {
    const current = await this.loadForChange(idOrSlug, actor);
    await store.deleteCharacter(this.dependencies.db, current.id);
    await this.invalidate(current.id, [current.slug]);
  }

  /** How many characters the user owns (for the per-user cap). */
  async countOwned(userId: string): Promise<number> {
    return store.countOwnedCharacters(this.dependencies.db, userId);
  }

  /** The stored avatar image (PNG card imports), or undefined when the avatar is a link or absent. */
  async readStoredAvatar(idOrSlug: string, viewer?: CharacterViewer): Promise<{ mimeType: string; bytes: Buffer } | undefined> {
    const character = await this.get(idOrSlug, viewer);
    const avatar = await store.readAvatar(this.dependencies.db, character.id);
    const match = avatar ? AVATAR_DATA_URL.exec(avatar) : null;
    if (!match) return undefined;
    return { mimeType: match[1]!, bytes: Buffer.from(match[2]!, 'base64') };
  }

  private async loadForChange(idOrSlug: string, actor: CharacterViewer): Promise<Character> {
    // Read the row itself, not a cached copy: the change must start from what is stored.
    const record = UUID_PATTERN.test(idOrSlug)
      ? await store.findCharacterById(this.dependencies.db, idOrSlug.toLowerCase())
      : await store.findCharacterBySlug(this.dependencies.db, idOrSlug);
    const character = record ? recordToCharacter(record) : undefined;
    if (!character || !canView(character, actor)) throw new NotFoundError('Character');
    if (!canChange(character, actor)) throw new ForbiddenError('Only the owner of this character or an admin may change it.');
    return character;
  }

  private async load(idOrSlug: string): Promise<Character | undefined> {
    const isId = UUID_PATTERN.test(idOrSlug);
    if (!isId && !SLUG_PATTERN.test(idOrSlug)) return undefined;
    const { cache, db } = this.dependencies;
    const characterId = isId ? idOrSlug.toLowerCase() : (this.localSlugs.get(idOrSlug) ?? (await cache.get<string>(slugKey(idOrSlug))));
    if (characterId) {
      const local = this.local.get(characterId);
      if (local && local.expiresAt > Date.now() && (isId || local.character.slug === idOrSlug)) return local.character;
      const shared = await cache.get<Character>(idKey(characterId));
      if (shared && (isId || shared.slug === idOrSlug)) {
        this.remember(shared);
        return shared;
      }
    }
    const record = isId ? await store.findCharacterById(db, characterId!) : await store.findCharacterBySlug(db, idOrSlug);
    if (!record) return undefined;
    const character = recordToCharacter(record);
    await cache.set(idKey(character.id), character, SHARED_TTL_SECONDS);
    await cache.set(slugKey(character.slug), character.id, SHARED_TTL_SECONDS);
    this.remember(character);
    return character;
  }

  private remember(character: Character): void {
    if (this.local.size >= LOCAL_MAX_ENTRIES) {
      const oldest = this.local.keys().next().value;
      if (oldest !== undefined) this.local.delete(oldest);
    }
    this.local.set(character.id, { character, expiresAt: Date.now() + LOCAL_TTL_MS });
    this.localSlugs.set(character.slug, character.id);
    if (this.localSlugs.size > LOCAL_MAX_ENTRIES * 2) this.localSlugs.clear();
  }

  /** Drops the shared copy, then tells every replica (this one included) to drop its own. */
  private async invalidate(characterId: string, slugs: string[]): Promise<void> {
    const { cache, events } = this.dependencies;
    await cache.delete(idKey(characterId));
    for (const slug of slugs) await cache.delete(slugKey(slug));
    this.dropLocal(JSON.stringify({ id: characterId, slugs } satisfies ChangeMessage));
    await events.publish(CHARACTER_CHANGED_CHANNEL, JSON.stringify({ id: characterId, slugs } satisfies ChangeMessage));
  }

  private dropLocal(message: string): void {
    try {
      const change = JSON.parse(message) as Partial<ChangeMessage>;
      if (typeof change.id === 'string') this.local.delete(change.id);
      for (const slug of Array.isArray(change.slugs) ? change.slugs : []) this.localSlugs.delete(String(slug));
    } catch {
      this.dependencies.logger.warn('ignoring a malformed character change message');
    }
  }
}

const idKey = (characterId: string) => `characters:id:${characterId}`;
const slugKey = (slug: string) => `characters:slug:${slug}`;

const canView = (character: Character, viewer: CharacterViewer) => authorization.character.canView(character, viewer);
const canChange = (character: Character, actor: CharacterViewer) => authorization.character.canChange(character, actor);

/** Public visibility (listed for everyone, in /v1/models) needs a service or admin key. */
function assertMayPublish(visibility: string | undefined, actor: CharacterViewer): void {
  if (visibility === 'public' && !authorization.mayPublish(actor)) {
    throw new ForbiddenError('Only service and admin keys may make a character public.', { extra: { field: 'visibility' } });
  }
}

export function recordToCharacter(record: CharacterRecord): Character {
  const { personality, ...card } = record.card;
  const style = (INTERACTION_STYLES as readonly string[]).includes(record.interactionStyle) ? (record.interactionStyle as InteractionStyle) : 'casual';
  return {
    id: record.id,
    slug: record.slug,
    name: record.name,
    description: record.description,
    personality: typeof personality === 'string' ? personality : '',
    personalityTraits: record.personalityTraits,
    interactionStyle: style,
    voiceCharacteristics: record.voiceCharacteristics,
    knowledgeDomains: record.knowledgeDomains,
    exampleDialogues: record.exampleDialogues,
    backstory: record.backstory,
    scenario: record.scenario,
    voiceId: record.voiceId,
    greeting: record.greeting,
    alternateGreetings: record.alternateGreetings,
    modelSettings: record.modelSettings,
    voiceSettings: record.voiceSettings ?? {},
    systemPromptOverride: record.systemPromptOverride,
    postHistoryInstructions: record.postHistoryInstructions,
    card,
    characterBook: (record.characterBook as CharacterBook | null) ?? null,
    avatar: record.avatarStored ? `/v1/characters/${record.id}/avatar` : record.avatarUrl,
    ownerUserId: record.ownerUserId,
    visibility: record.visibility,
    createdAt: record.createdAt.toISOString(),
    updatedAt: record.updatedAt.toISOString(),
  };
}

/** Input fields → column values; `current` supplies what a patch of `personality` or `card` merges with. */
function toColumns(input: CharacterPatch, current?: Character): Partial<store.CharacterInsert> {
  const values: Partial<store.CharacterInsert> = {};
  if (input.description !== undefined) values.description = input.description;
  if (input.personalityTraits !== undefined) values.personalityTraits = input.personalityTraits;
  if (input.interactionStyle !== undefined) values.interactionStyle = input.interactionStyle;
  if (input.voiceCharacteristics !== undefined) values.voiceCharacteristics = input.voiceCharacteristics;
  if (input.knowledgeDomains !== undefined) values.knowledgeDomains = input.knowledgeDomains;
  if (input.exampleDialogues !== undefined) values.exampleDialogues = input.exampleDialogues;
  if (input.backstory !== undefined) values.backstory = input.backstory;
  if (input.scenario !== undefined) values.scenario = input.scenario;
  if (input.voiceId !== undefined) values.voiceId = input.voiceId;
  if (input.greeting !== undefined) values.greeting = input.greeting;
  if (input.alternateGreetings !== undefined) values.alternateGreetings = input.alternateGreetings;
  if (input.modelSettings !== undefined) values.modelSettings = input.modelSettings;
  if (input.voiceSettings !== undefined) values.voiceSettings = input.voiceSettings;
  if (input.systemPromptOverride !== undefined) values.systemPromptOverride = input.systemPromptOverride;
  if (input.postHistoryInstructions !== undefined) values.postHistoryInstructions = input.postHistoryInstructions;
  if (input.characterBook !== undefined) values.characterBook = input.characterBook;
  if (input.avatar !== undefined) values.avatar = input.avatar;
  if (input.visibility !== undefined) values.visibility = input.visibility;
  if (input.card !== undefined || input.personality !== undefined) {
    // `personality` has no column: it lives in the card bag beside the other card-only fields.
    const card = { ...(input.card ?? current?.card ?? {}) };
    delete card.personality;
    const personality = input.personality ?? current?.personality ?? '';
    values.card = personality ? { ...card, personality } : card;
  }
  return values;
}

/**
 * Invariants for every caller (routes validate shapes with zod first; imports and the seed
 * come straight here). Field names are the API's snake_case ones.
 */
function validateInput(input: CharacterPatch, mode: 'create' | 'update'): void {
  if (mode === 'create' || input.name !== undefined) {
    if (typeof input.name !== 'string' || input.name.trim() === '') throw new ValidationError('name', 'A character needs a name.');
    if (input.name.length > 200) throw new ValidationError('name', 'The name is longer than 200 characters.');
  }
  if (input.slug !== undefined) {
    if (!SLUG_PATTERN.test(input.slug)) {
      throw new ValidationError('slug', 'A slug is 1-63 lower-case letters, digits and dashes, starting with a letter or digit.');
    }
    if (UUID_PATTERN.test(input.slug)) throw new ValidationError('slug', 'A slug may not look like an id.');
  }
  for (const [trait, value] of Object.entries(input.personalityTraits ?? {})) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
      throw new ValidationError(`personality_traits.${trait}`, `Trait "${trait}" must be a number from 0 to 1.`);
    }
  }
  if (input.interactionStyle !== undefined && !(INTERACTION_STYLES as readonly string[]).includes(input.interactionStyle)) {
    throw new ValidationError('interaction_style', `The interaction style must be one of ${INTERACTION_STYLES.join(', ')}.`);
  }
  if (input.visibility !== undefined && !(VISIBILITIES as readonly string[]).includes(input.visibility)) {
    throw new ValidationError('visibility', 'The visibility must be private or public.');
  }
  const settings = input.modelSettings;
  if (settings) {
    if (settings.provider !== undefined && !(CHAT_PROVIDERS as readonly string[]).includes(settings.provider)) {
      throw new ValidationError('model_settings.provider', `The provider must be one of ${CHAT_PROVIDERS.join(', ')}.`);
    }
    if (settings.temperature !== undefined && !(settings.temperature >= 0 && settings.temperature <= 2)) {
      throw new ValidationError('model_settings.temperature', 'The temperature must be from 0 to 2.');
    }
    if (settings.maxTokens !== undefined && !(Number.isInteger(settings.maxTokens) && settings.maxTokens >= 1 && settings.maxTokens <= 128_000)) {
      throw new ValidationError('model_settings.max_tokens', 'max_tokens must be a whole number from 1 to 128000.');
    }
  }
  if (input.avatar !== undefined && input.avatar !== null && !AVATAR_DATA_URL.test(input.avatar) && !/^https?:\/\/\S+$/.test(input.avatar)) {
    throw new ValidationError('avatar', 'The avatar must be an http(s) URL or a base64 data URL of a PNG, JPEG, WebP or GIF image.');
  }
  const book = input.characterBook;
  if (book !== undefined && book !== null && (typeof book !== 'object' || !Array.isArray(book.entries))) {
    throw new ValidationError('character_book.entries', 'A character book needs an entries array.');
  }
}
