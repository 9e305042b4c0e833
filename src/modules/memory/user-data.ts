import { eq } from 'drizzle-orm';
import { z } from 'zod';
import type { AppInstance } from '../../app-types.js';
import type { Database } from '../../infra/db/database.js';
import { apiKeys, providerKeys, userIdentities, usageEvents, users } from '../../infra/db/schema.js';
import { problemResponses } from '../../infra/http/schemas.js';
import { requireActingUser } from '../identity/auth.js';
import type { IdentityService } from '../identity/service.js';
import { presentMemory } from './schemas.js';
import * as store from './store.js';

/**
 * A user's own data (contract: `GET /v1/me/export`, `DELETE /v1/me`). Each module contributes a
 * section through a small hook, so a module added later (images, wallet) registers its own part
 * instead of this file learning its tables. The account part (identities, keys without secrets,
 * usage) and memories are built in; conversations and messages are the chat module's section.
 */
export interface UserDataHook {
  /** A JSON-serialisable section of the export. */
  exportUserData(userId: string): Promise<unknown>;
  /** Deletes what the user row's cascade does not reach (runs before the user row is deleted). */
  deleteUserData?(userId: string): Promise<void>;
}

export class UserDataRegistry {
  private readonly hooks = new Map<string, UserDataHook>();

  register(section: string, hook: UserDataHook): void {
    if (this.hooks.has(section)) throw new Error(`user data section ${section} is registered twice`);
    this.hooks.set(section, hook);
  }

  async exportAll(userId: string): Promise<Record<string, unknown>> {
    const sections: Record<string, unknown> = {};
    for (const [section, hook] of this.hooks) sections[section] = await hook.exportUserData(userId);
    return sections;
  }

  async deleteAll(db: Database, userId: string): Promise<void> {
    for (const hook of this.hooks.values()) await hook.deleteUserData?.(userId);
    // The cascade of the user row removes identities, API keys, provider keys, DM conversations
    // (with their messages), user-scope memories and usage rows.
    await db.delete(users).where(eq(users.id, userId));
  }
}

export function builtInUserData(db: Database): Record<string, UserDataHook> {
  return {
    account: {
      async exportUserData(userId) {
        const [user] = await db.select().from(users).where(eq(users.id, userId));
        const identities = await db.select({ externalId: userIdentities.externalId, createdAt: userIdentities.createdAt }).from(userIdentities).where(eq(userIdentities.userId, userId));
        const keys = await db
          .select({ id: apiKeys.id, name: apiKeys.name, role: apiKeys.role, prefix: apiKeys.prefix, createdAt: apiKeys.createdAt, revokedAt: apiKeys.revokedAt })
          .from(apiKeys)
          .where(eq(apiKeys.userId, userId));
        const vault = await db
          .select({ id: providerKeys.id, provider: providerKeys.provider, name: providerKeys.name, masked: providerKeys.masked, status: providerKeys.status, createdAt: providerKeys.createdAt })
          .from(providerKeys)
          .where(eq(providerKeys.userId, userId));
        return { user: user ?? null, identities, api_keys: keys, provider_keys: vault };
      },
    },
    usage: {
      async exportUserData(userId) {
        return db.select().from(usageEvents).where(eq(usageEvents.userId, userId));
      },
    },
    memories: {
      async exportUserData(userId) {
        return (await store.memoriesOfUser(db, userId)).map(presentMemory);
      },
      async deleteUserData(userId) {
        await store.deleteUserMemories(db, undefined, userId);
      },
    },
  };
}

export function registerUserDataRoutes(app: AppInstance, dependencies: { registry: UserDataRegistry; identity: IdentityService; db: Database }): void {
  const { registry, identity, db } = dependencies;
  app.get(
    '/v1/me/export',
    {
      schema: {
        tags: ['users'],
        summary: 'Everything stored about the acting user, as JSON (secrets are never included)',
        response: { 200: z.object({ exported_at: z.string(), user_id: z.string() }).catchall(z.unknown()), ...problemResponses },
      },
    },
    async (request) => {
      const user = await requireActingUser(identity, request);
      return { exported_at: new Date().toISOString(), user_id: user.id, ...(await registry.exportAll(user.id)) };
    },
  );
  app.delete(
    '/v1/me',
    {
      schema: {
        tags: ['users'],
        summary: 'Forget the acting user: identities, keys, conversations, messages, memories, usage',
        response: { 204: z.null(), ...problemResponses },
      },
    },
    async (request, reply) => {
      const user = await requireActingUser(identity, request);
      await registry.deleteAll(db, user.id);
      // Cached copies of the user and of its (now deleted) API keys go in every replica.
      await identity.forgetUser(user.id, { apiKeys: true });
      return reply.status(204).send(null);
    },
  );
}
