import type { Database } from '../../infra/db/database.js';
import { ConflictError, NotFoundError } from '../../infra/http/errors.js';
import type { Character, CharactersService } from '../characters/index.js';
import * as store from './store.js';
import type { BindingFreeWill, BindingTriggers } from './tables.js';

export type BindingScope = 'channel' | 'category' | 'server';

export interface ChannelBinding {
  id: string;
  platform: 'discord';
  guildId: string;
  channelId: string | null;
  categoryId: string | null;
  scope: BindingScope;
  character: { id: string; slug: string; name: string; avatar_url: string | null };
  triggers: BindingTriggers;
  freeWill: BindingFreeWill;
  voiceReplies: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export interface BindingInput {
  platform: 'discord';
  guildId: string;
  channelId?: string | null | undefined;
  categoryId?: string | null | undefined;
  /** Character id or slug. */
  character: string;
  triggers?: Partial<BindingTriggers> | undefined;
  freeWill?: Partial<BindingFreeWill> | undefined;
  voiceReplies?: boolean | undefined;
}

export interface BindingPatch {
  triggers?: Partial<BindingTriggers> | undefined;
  freeWill?: Partial<BindingFreeWill> | undefined;
  voiceReplies?: boolean | undefined;
}

export const DEFAULT_BINDING_TRIGGERS: BindingTriggers = { mention: true, reply: true, name: true, words: [], everyMessage: false };
export const DEFAULT_BINDING_FREE_WILL: BindingFreeWill = { enabled: false, probability: 0.05, cooldownSeconds: 300 };

export interface ChannelBindingsDependencies {
  db: Database;
  characters: CharactersService;
}

/**
 * Which characters answer where on a chat platform. A place resolves to its channel's own bindings,
 * else its category's, else the server default: the most specific level that has any wins whole,
 * so a channel bound to one character is not also answered by the server default.
 */
export class ChannelBindingsService {
  constructor(private readonly dependencies: ChannelBindingsDependencies) {}

  async list(filter: { platform: 'discord'; guildId?: string | undefined; channelId?: string | undefined; categoryId?: string | undefined; character?: string | undefined }): Promise<ChannelBinding[]> {
    const characterId = filter.character === undefined ? undefined : (await this.dependencies.characters.get(filter.character)).id;
    const rows = await store.listBindings(this.dependencies.db, { ...filter, characterId });
    return this.present(rows);
  }

  async resolve(place: { platform: 'discord'; guildId: string; channelId?: string | undefined; categoryId?: string | undefined }): Promise<{ scope: BindingScope | null; bindings: ChannelBinding[] }> {
    const rows = await store.bindingsOfGuild(this.dependencies.db, place.platform, place.guildId);
    const levels: Array<[BindingScope, (row: store.BindingRow) => boolean]> = [
      ['channel', (row) => place.channelId !== undefined && row.channelId === place.channelId],
      ['category', (row) => place.categoryId !== undefined && row.categoryId === place.categoryId],
      ['server', (row) => row.channelId === null && row.categoryId === null],
    ];
    for (const [scope, matches] of levels) {
      const found = rows.filter(matches);
      if (found.length > 0) {
        const bindings = await this.present(found);
        if (bindings.length > 0) return { scope, bindings };
      }
    }
    return { scope: null, bindings: [] };
  }

  async get(id: string): Promise<ChannelBinding> {
    const row = UUID_PATTERN.test(id) ? await store.findBinding(this.dependencies.db, id) : undefined;
    const [binding] = row ? await this.present([row]) : [];
    if (!binding) throw new NotFoundError('Channel binding');
    return binding;
  }

  async create(input: BindingInput, actor: { userId: string | null }): Promise<ChannelBinding> {
    const character = await this.dependencies.characters.get(input.character);
    const values = {
      platform: input.platform,
      guildId: input.guildId,
      channelId: input.channelId ?? null,
      categoryId: input.categoryId ?? null,
      characterId: character.id,
    };
    const inserted = await store.insertBinding(this.dependencies.db, {
      ...values,
      triggers: { ...DEFAULT_BINDING_TRIGGERS, ...definedOnly(input.triggers) },
      freeWill: { ...DEFAULT_BINDING_FREE_WILL, ...definedOnly(input.freeWill) },
      voiceReplies: input.voiceReplies ?? false,
      createdByUserId: actor.userId,
    });
    if (!inserted) {
      const existing = await store.findSamePlace(this.dependencies.db, values);
      throw new ConflictError(`"${character.name}" is already bound here${existing ? ` (binding ${existing.id})` : ''}: PATCH it instead.`, {
        extra: existing ? { binding_id: existing.id } : {},
      });
    }
    return this.toBinding(inserted, character);
  }

  async update(id: string, patch: BindingPatch): Promise<ChannelBinding> {
    const current = UUID_PATTERN.test(id) ? await store.findBinding(this.dependencies.db, id) : undefined;
    if (!current) throw new NotFoundError('Channel binding');
    const row = await store.updateBinding(this.dependencies.db, id, {
      ...(patch.triggers ? { triggers: { ...current.triggers, ...definedOnly(patch.triggers) } } : {}),
      ...(patch.freeWill ? { freeWill: { ...current.freeWill, ...definedOnly(patch.freeWill) } } : {}),
      ...(patch.voiceReplies !== undefined ? { voiceReplies: patch.voiceReplies } : {}),
    });
    if (!row) throw new NotFoundError('Channel binding');
    const [binding] = await this.present([row]);
    if (!binding) throw new NotFoundError('Channel binding');
    return binding;
  }

  async remove(id: string): Promise<void> {
    const deleted = UUID_PATTERN.test(id) && (await store.deleteBinding(this.dependencies.db, id));
    if (!deleted) throw new NotFoundError('Channel binding');
  }

  /** Rows with their characters; a binding whose character is gone (or unreadable) is left out. */
  private async present(rows: store.BindingRow[]): Promise<ChannelBinding[]> {
    const characters = new Map<string, Character | undefined>();
    for (const id of new Set(rows.map((row) => row.characterId))) {
      characters.set(id, await this.dependencies.characters.get(id).catch(() => undefined));
    }
    return rows.flatMap((row) => {
      const character = characters.get(row.characterId);
      return character ? [this.toBinding(row, character)] : [];
    });
  }

  private toBinding(row: store.BindingRow, character: Character): ChannelBinding {
    return {
      id: row.id,
      platform: row.platform as 'discord',
      guildId: row.guildId,
      channelId: row.channelId,
      categoryId: row.categoryId,
      scope: row.channelId ? 'channel' : row.categoryId ? 'category' : 'server',
      character: {
        id: character.id,
        slug: character.slug,
        name: character.name,
        // Discord shows an avatar only from a public link; stored (data URL) avatars are not one.
        avatar_url: character.avatar && /^https?:\/\//.test(character.avatar) ? character.avatar : null,
      },
      triggers: { ...DEFAULT_BINDING_TRIGGERS, ...row.triggers },
      freeWill: { ...DEFAULT_BINDING_FREE_WILL, ...row.freeWill },
      voiceReplies: row.voiceReplies,
      createdAt: row.createdAt,
      updatedAt: row.updatedAt,
    };
  }
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function definedOnly<T extends object>(value: T | undefined): Partial<T> {
  if (!value) return {};
  return Object.fromEntries(Object.entries(value).filter(([, item]) => item !== undefined)) as Partial<T>;
}
