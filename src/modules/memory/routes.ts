import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AppInstance } from '../../app-types.js';
import type { Config } from '../../config.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../../infra/http/errors.js';
import { problemResponses } from '../../infra/http/schemas.js';
import type { CharactersService } from '../characters/service.js';
import type { Character } from '../characters/types.js';
import { resolveModelSettings } from '../characters/index.js';
import { actingActor, endUserContext, requireActingUser, requirePrincipal } from '../identity/auth.js';
import { authorization, type Actor } from '../identity/authorization.js';
import type { IdentityService } from '../identity/service.js';
import * as identityStore from '../identity/store.js';
import type { UserRow } from '../identity/store.js';
import type { MemoryFormation } from './formation.js';
import {
  consolidateBodySchema,
  createBodySchema,
  decodeCursor,
  encodeCursor,
  importBodySchema,
  importResultSchema,
  listQuerySchema,
  memoryListSchema,
  memorySchema,
  patchBodySchema,
  presentMemory,
  presentSearchResult,
  searchBodySchema,
  searchResultSchema,
} from './schemas.js';
import type { MemoryService } from './service.js';
import * as store from './store.js';
import type { MemoryRow, ScopeFilter } from './store.js';

export interface MemoryRouteDependencies {
  memory: MemoryService;
  formation: MemoryFormation;
  characters: CharactersService;
  identity: IdentityService;
  config: Readonly<Config>;
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const characterParams = z.object({ id: z.string().min(1).max(100).describe('The character id or slug') });
const memoryParams = z.object({ id: z.string().min(1).max(100) });

/**
 * The memory API. Users see the character's core memories and their own; only service and admin
 * keys (the bot, operators) may name another user or a guild, since a user key cannot prove it
 * belongs to a server. Someone else's memory answers 404, as if it did not exist.
 */
export function registerMemoryRoutes(app: AppInstance, dependencies: MemoryRouteDependencies): void {
  const { memory, formation, characters, identity, config } = dependencies;

  const visibleCharacter = async (request: FastifyRequest, idOrSlug: string): Promise<{ character: Character; actingUser: UserRow | undefined; actor: Actor }> => {
    const { actor, user: actingUser } = await actingActor(identity, request);
    const character = await characters.get(idOrSlug, actor);
    return { character, actingUser, actor };
  };

  /** An external id (e.g. a Discord id) or an internal user id; undefined when unknown. */
  const findUser = async (id: string): Promise<UserRow | undefined> =>
    (UUID_PATTERN.test(id) ? await identity.findUser(id) : undefined) ?? (await identityStore.findUserByExternalId(identity.database, id));

  const refuseForUsers = (request: FastifyRequest, field: string, value: string | undefined) => {
    if (value !== undefined && requirePrincipal(request).role === 'user') {
      throw new ForbiddenError(`Only service and admin keys may pass ${field}.`);
    }
  };

  /** The memory if the caller may change it: a user their own user-scope memories and core memories of characters they own. */
  const changeableMemory = async (request: FastifyRequest, id: string): Promise<MemoryRow> => {
    const row = UUID_PATTERN.test(id) ? await memory.find(id) : undefined;
    if (!row) throw new NotFoundError('Memory');
    const { actor } = await actingActor(identity, request);
    const character = row.scope === 'core' ? await characters.get(row.characterId).catch(() => undefined) : undefined;
    if (!authorization.memory.canChange(row, character?.ownerUserId, actor)) throw new NotFoundError('Memory');
    return row;
  };

  app.get(
    '/v1/characters/:id/memories',
    {
      schema: {
        tags: ['memories'],
        summary: 'List memories of a character: users see core and their own; service/admin may filter by user_id, guild_id, scope',
        params: characterParams,
        querystring: listQuerySchema,
        response: { 200: memoryListSchema, ...problemResponses },
      },
    },
    async (request) => {
      const { query } = request;
      refuseForUsers(request, 'user_id', query.user_id);
      refuseForUsers(request, 'guild_id', query.guild_id);
      const { character, actingUser } = await visibleCharacter(request, request.params.id);
      const before = query.cursor !== undefined ? decodeCursor(query.cursor) : undefined;
      if (query.cursor !== undefined && !before) throw new ValidationError('query.cursor', 'The cursor is not one this API gave out.');
      const filter: store.ListFilter = { characterId: character.id, scope: query.scope, before, limit: query.limit + 1 };
      const principal = requirePrincipal(request);
      // A service key naming an end user (X-User-Id) sees what that user sees; only explicit
      // user_id / guild_id filters use the service's wider view.
      if (principal.role === 'user' || (!query.user_id && !query.guild_id && actingUser)) {
        if (!actingUser) throw new ValidationError('X-User-Id', 'Send X-User-Id with a service key.');
        filter.visibleToUserId = actingUser.id;
      } else {
        if (query.user_id) {
          const user = await findUser(query.user_id);
          if (!user) return { data: [], next_cursor: null };
          filter.userId = user.id;
        }
        filter.guildId = query.guild_id;
      }
      const rows = await memory.list(filter);
      const page = rows.slice(0, query.limit);
      const last = page.at(-1);
      return { data: page.map(presentMemory), next_cursor: rows.length > query.limit && last ? encodeCursor(last) : null };
    },
  );

  app.post(
    '/v1/characters/:id/memories',
    {
      // Reads X-Guild-Id (group scope): declared so /docs shows it.
      config: { contextHeaders: 'place' },
      schema: {
        tags: ['memories'],
        summary: 'Add a memory: user scope for the acting user; core by the character\'s owner or a service/admin; group by a service/admin',
        params: characterParams,
        body: createBodySchema,
        response: { 201: memorySchema, ...problemResponses },
      },
    },
    async (request, reply) => {
      const { body } = request;
      const principal = requirePrincipal(request);
      refuseForUsers(request, 'guild_id', body.guild_id);
      const { character, actor } = await visibleCharacter(request, request.params.id);
      let userId: string | null = null;
      let guildId: string | null = null;
      if (body.scope === 'user') {
        const owner = await requireActingUser(identity, request, { user_id: body.user_id });
        await identity.assertUnderLimit(owner, 'memories', await store.countUserMemories(memory.database, owner.id));
        userId = owner.id;
      } else if (body.scope === 'group') {
        if (principal.role === 'user') throw new ForbiddenError('Only service and admin keys may add group memories.');
        guildId = body.guild_id ?? endUserContext(request).guildId ?? null;
        if (!guildId) throw new ValidationError('guild_id', 'A group memory needs guild_id (or X-Guild-Id).');
      } else if (!authorization.character.canChange(character, actor)) {
        throw new ForbiddenError('Only the owner of this character or an admin may add core memories.');
      }
      let created: MemoryRow;
      try {
        created = await memory.create({
          characterId: character.id,
          scope: body.scope,
          userId,
          guildId,
          content: body.content,
          importance: body.importance,
          expiresAt: body.expires_at ? new Date(body.expires_at) : null,
          metadata: body.metadata,
          externalId: body.external_id,
        });
      } catch (error) {
        if (isUniqueViolation(error)) throw new ConflictError('A memory with this external_id already exists in this scope; change it with PATCH, or use …/memories/import to upsert.');
        throw error;
      }
      return reply.status(201).send(presentMemory(created));
    },
  );

  app.post(
    '/v1/characters/:id/memories/search',
    {
      // Reads X-Guild-Id (group scope): declared so /docs shows it.
      config: { contextHeaders: 'place' },
      schema: {
        tags: ['memories'],
        summary: 'Hybrid search over the memories that apply: core, the user\'s own, and (service/admin) a guild\'s',
        params: characterParams,
        body: searchBodySchema,
        response: { 200: z.object({ data: z.array(searchResultSchema) }), ...problemResponses },
      },
    },
    async (request) => {
      const { body } = request;
      const principal = requirePrincipal(request);
      refuseForUsers(request, 'user_id', body.user_id);
      refuseForUsers(request, 'guild_id', body.guild_id);
      const { character, actingUser } = await visibleCharacter(request, request.params.id);
      const filter: ScopeFilter = { characterId: character.id, includeCore: true };
      if (principal.role === 'user') {
        filter.userId = actingUser?.id;
      } else {
        const user = body.user_id ? await findUser(body.user_id) : actingUser;
        // An unknown user has no memories; searching must not fall back to everyone's.
        filter.userId = user?.id ?? (body.user_id ? '00000000-0000-0000-0000-000000000000' : undefined);
        filter.guildId = body.guild_id ?? endUserContext(request).guildId;
      }
      const results = await memory.search({ filter, query: body.query, limit: body.limit, minRelevance: body.min_relevance });
      return { data: results.map(presentSearchResult) };
    },
  );

  app.post(
    '/v1/characters/:id/memories/import',
    {
      // Reads X-Guild-Id (group scope): declared so /docs shows it.
      config: { contextHeaders: 'place' },
      schema: {
        tags: ['memories'],
        summary: 'Import up to 1,000 memories at once (chat history, a knowledge file); idempotent by external_id',
        params: characterParams,
        body: importBodySchema,
        response: { 200: importResultSchema, ...problemResponses },
      },
      bodyLimit: 4 * 1024 * 1024,
    },
    async (request) => {
      const { body } = request;
      const principal = requirePrincipal(request);
      refuseForUsers(request, 'user_id', body.user_id);
      refuseForUsers(request, 'guild_id', body.guild_id);
      const { character } = await visibleCharacter(request, request.params.id);
      const scopes = new Set(body.memories.map((item) => item.scope));
      let userId: string | null = null;
      let guildId: string | null = null;
      if (scopes.has('user')) userId = (await requireActingUser(identity, request, { user_id: body.user_id })).id;
      if (scopes.has('group')) {
        if (principal.role === 'user') throw new ForbiddenError('Only service and admin keys may add group memories.');
        guildId = body.guild_id ?? endUserContext(request).guildId ?? null;
        if (!guildId) throw new ValidationError('guild_id', 'Group memories need guild_id (or X-Guild-Id).');
      }
      if (scopes.has('core') && principal.role === 'user') {
        const user = await requireActingUser(identity, request);
        if (character.ownerUserId !== user.id) throw new ForbiddenError('Only the owner of this character, a service or an admin may add core memories.');
      }
      const seen = new Map<string, number>();
      for (const [index, item] of body.memories.entries()) {
        if (!item.external_id) continue;
        const key = `${item.scope}\u0000${item.external_id}`;
        const first = seen.get(key);
        if (first !== undefined) throw new ValidationError(`memories[${index}].external_id`, `The external_id is also used by memories[${first}] of the same scope.`);
        seen.set(key, index);
      }
      const results = await memory.importMany(
        body.memories.map((item) => ({
          characterId: character.id,
          scope: item.scope,
          userId: item.scope === 'user' ? userId : null,
          guildId: item.scope === 'group' ? guildId : null,
          content: item.content,
          importance: item.importance ?? 0.5,
          sourceMessageIds: [],
          expiresAt: item.expires_at ? new Date(item.expires_at) : null,
          metadata: item.metadata ?? null,
          externalId: item.external_id ?? null,
        })),
      );
      const count = (status: string) => results.filter((result) => result.status === status).length;
      return {
        data: results.map((result, index) => ({ id: result.id, external_id: body.memories[index]!.external_id ?? null, status: result.status })),
        created: count('created'),
        updated: count('updated'),
        unchanged: count('unchanged'),
      };
    },
  );

  app.patch(
    '/v1/memories/:id',
    {
      schema: {
        tags: ['memories'],
        summary: 'Change a memory\'s content, importance or expiry (your own, or core memories of your characters)',
        params: memoryParams,
        body: patchBodySchema,
        response: { 200: memorySchema, ...problemResponses },
      },
    },
    async (request) => {
      const row = await changeableMemory(request, request.params.id);
      const { body } = request;
      const updated = await memory.update(row.id, {
        content: body.content,
        importance: body.importance,
        expiresAt: body.expires_at === undefined ? undefined : body.expires_at === null ? null : new Date(body.expires_at),
        metadata: body.metadata,
      });
      if (!updated) throw new NotFoundError('Memory');
      return presentMemory(updated);
    },
  );

  app.delete(
    '/v1/memories/:id',
    {
      schema: {
        tags: ['memories'],
        summary: 'Delete a memory (your own, or core memories of your characters)',
        params: memoryParams,
        response: { 204: z.null().describe('Deleted'), ...problemResponses },
      },
    },
    async (request, reply) => {
      const row = await changeableMemory(request, request.params.id);
      await memory.remove([row.id]);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/v1/characters/:id/memories/consolidate',
    {
      schema: {
        tags: ['memories'],
        summary: 'Form memories now from the acting user\'s recent conversations with this character (what `!sleep` does)',
        params: characterParams,
        body: consolidateBodySchema,
        response: { 200: z.object({ changed: z.number().int(), conversations: z.number().int() }), ...problemResponses },
      },
    },
    async (request) => {
      const { character } = await visibleCharacter(request, request.params.id);
      const user = await requireActingUser(identity, request);
      const mine = await store.conversationsOfUser(memory.database, character.id, user.id, 5);
      const wanted = request.body?.conversation_id;
      if (wanted && !mine.includes(wanted)) throw new NotFoundError('Conversation');
      // The character's own provider and model, resolved as chat turns resolve them.
      const { provider, model: chatModel } = resolveModelSettings(character, config);
      let changed = 0;
      const targets = wanted ? [wanted] : mine;
      for (const conversationId of targets) {
        changed += await formation.formFromConversation({ characterId: character.id, userId: user.id, guildId: null, conversationId, provider, chatModel });
      }
      return { changed, conversations: targets.length };
    },
  );
}

/** PostgreSQL's unique_violation (23505), however the driver wraps it. */
function isUniqueViolation(error: unknown): boolean {
  for (let current: unknown = error; current && typeof current === 'object'; current = (current as { cause?: unknown }).cause) {
    if ((current as { code?: unknown }).code === '23505') return true;
  }
  return false;
}
