import { z } from 'zod';
import type { AppInstance } from '../../app-types.js';
import { ForbiddenError, NotFoundError, ValidationError } from '../../infra/http/errors.js';
import { problemResponses } from '../../infra/http/schemas.js';
import { optionalActingUser, requirePrincipal } from './auth.js';
import type { IdentityService } from './service.js';
import * as store from './store.js';

const apiKeySchema = z.object({
  id: z.string(),
  name: z.string(),
  role: z.enum(['admin', 'service', 'user']),
  prefix: z.string(),
  user_id: z.string().nullable(),
  created_at: z.string(),
  expires_at: z.string().nullable(),
  last_used_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
});

function presentApiKey(row: store.ApiKeyRow): z.infer<typeof apiKeySchema> {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    prefix: row.prefix,
    user_id: row.userId,
    created_at: row.createdAt.toISOString(),
    expires_at: row.expiresAt?.toISOString() ?? null,
    last_used_at: row.lastUsedAt?.toISOString() ?? null,
    revoked_at: row.revokedAt?.toISOString() ?? null,
  };
}

export function registerIdentityRoutes(app: AppInstance, deps: { identity: IdentityService }): void {
  const { identity } = deps;

  app.post(
    '/v1/keys',
    {
      schema: {
        tags: ['identity'],
        summary: 'Create a platform API key (shown once)',
        body: z.object({
          name: z.string().trim().min(1).max(100),
          role: z.enum(['admin', 'service', 'user']).default('user'),
          expires_at: z.iso.datetime({ offset: true }).optional(),
        }).meta({ examples: [{ name: 'discord bot', role: 'service' }, { name: 'my phone', role: 'user', expires_at: '2027-01-01T00:00:00Z' }] }),
        response: { 201: apiKeySchema.extend({ key: z.string() }), ...problemResponses },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const { name, role, expires_at } = request.body;
      if (principal.role !== 'admin' && role !== 'user') throw new ForbiddenError('Only an admin may create admin or service keys.');
      const expiresAt = expires_at ? new Date(expires_at) : null;
      if (expiresAt && expiresAt.getTime() <= Date.now()) throw new ValidationError('expires_at', 'expires_at must be in the future.');
      let userId: string | null = null;
      if (role === 'user') {
        const user = await optionalActingUser(identity, request);
        if (!user) throw new ValidationError('X-User-Id', 'A user key belongs to a user: send X-User-Id to name the user this key is for.');
        const active = (await store.listApiKeys(identity.database, { userId: user.id })).filter((key) => !key.revokedAt && !(key.expiresAt && key.expiresAt.getTime() <= Date.now()));
        await identity.assertUnderLimit(user, 'apiKeys', active.length);
        userId = user.id;
      }
      const created = await identity.createApiKey({ role, name, userId, expiresAt });
      return reply.status(201).send({ ...presentApiKey(created.row), key: created.key });
    },
  );

  app.get(
    '/v1/keys',
    {
      schema: {
        tags: ['identity'],
        summary: 'List platform API keys (a user sees their own; an admin sees all)',
        response: { 200: z.object({ data: z.array(apiKeySchema) }), ...problemResponses },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      if (principal.role === 'admin') return { data: (await store.listApiKeys(identity.database, {})).map(presentApiKey) };
      const user = await optionalActingUser(identity, request);
      if (!user) return { data: [] };
      return { data: (await store.listApiKeys(identity.database, { userId: user.id })).map(presentApiKey) };
    },
  );

  app.delete(
    '/v1/keys/:id',
    {
      schema: {
        tags: ['identity'],
        summary: 'Revoke a platform API key',
        params: z.object({ id: z.uuid() }),
        response: { 204: z.null(), ...problemResponses },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      let revoked: boolean;
      if (principal.role === 'admin') {
        revoked = await store.revokeApiKey(identity.database, request.params.id, undefined);
      } else {
        const user = await optionalActingUser(identity, request);
        revoked = user ? await store.revokeApiKey(identity.database, request.params.id, user.id) : false;
      }
      if (!revoked) throw new NotFoundError('API key');
      await identity.forgetApiKey(request.params.id);
      return reply.status(204).send(null);
    },
  );
}
