import { z } from 'zod';
import type { AppInstance } from '../../app-types.js';
import { NotFoundError } from '../../infra/http/errors.js';
import { problemResponses } from '../../infra/http/schemas.js';
import { optionalActingUser, requirePrincipal } from './auth.js';
import type { ProviderKeyVault } from './provider-keys.js';
import { adminUserListSchema, adminUserSchema, externalIdInput, presentProviderKey, presentUser, userSchema } from './schemas.js';
import type { IdentityService } from './service.js';
import * as store from './store.js';

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function registerUserRoutes(app: AppInstance, deps: { identity: IdentityService; vault: ProviderKeyVault }): void {
  const { identity, vault } = deps;

  app.post(
    '/v1/users',
    {
      config: { auth: 'service' },
      schema: {
        tags: ['users'],
        summary: 'Register an end user by external id (201 created, 200 already known)',
        body: z.object({ external_id: externalIdInput, username: z.string().trim().min(1).max(100).optional() }),
        response: { 200: userSchema, 201: userSchema, ...problemResponses },
      },
    },
    async (request, reply) => {
      const { user, created } = await identity.registerUser(request.body.external_id, request.body.username);
      return reply.status(created ? 201 : 200).send(presentUser(await identity.describeUser(user)));
    },
  );

  app.get(
    '/v1/me',
    {
      schema: {
        tags: ['users'],
        summary: 'The acting user: plan with its limits, identities, activity',
        response: { 200: userSchema, ...problemResponses },
      },
    },
    async (request) => {
      // An admin key without X-User-Id is answered with the admin's own user (a service key's own user likewise).
      const user = (await optionalActingUser(identity, request)) ?? (await identity.credentialUser(requirePrincipal(request)));
      return presentUser(await identity.describeUser(user));
    },
  );

  // `{id}` is the internal id or an external id (e.g. a Discord user id), for operators' convenience.
  const findByIdOrExternalId = async (id: string) =>
    (UUID_PATTERN.test(id) ? await identity.findUser(id) : undefined) ?? (await store.findUserByExternalId(identity.database, id));

  app.get(
    '/v1/admin/users',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['users'],
        summary: 'Users, newest first, with plan and identities; `q` searches external ids and usernames (admin)',
        description:
          '`q` matches users whose external id or username contains it (case-insensitive, `%` and `_` taken literally) or whose id it is; ' +
          'an empty `q` lists everyone. Pages by `cursor`: pass the previous answer\'s `next_cursor` (null on the last page).',
        querystring: z.object({
          q: z.string().trim().max(200).optional(),
          limit: z.coerce.number().int().min(1).max(100).default(50),
          cursor: z.string().max(200).optional(),
        }),
        response: { 200: adminUserListSchema, ...problemResponses },
      },
    },
    async (request) => {
      const { q, limit, cursor } = request.query;
      const page = await identity.listUsers({ search: q === '' ? undefined : q, limit, cursor });
      return { data: page.data.map(presentUser), next_cursor: page.nextCursor };
    },
  );

  app.get(
    '/v1/admin/users/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['users'],
        summary: 'A user with plan, identities, quotas and masked provider keys (admin)',
        params: z.object({ id: z.string().min(1).max(200) }),
        response: { 200: adminUserSchema, ...problemResponses },
      },
    },
    async (request) => {
      const user = await findByIdOrExternalId(request.params.id);
      if (!user) throw new NotFoundError('User');
      const keys = await vault.list(user);
      return { ...presentUser(await identity.describeUser(user)), provider_keys: keys.map(presentProviderKey) };
    },
  );

  app.patch(
    '/v1/admin/users/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['users'],
        summary: 'Change a user: plan (an existing plan id), active, quotas, username (admin)',
        params: z.object({ id: z.string().min(1).max(200) }),
        body: z.object({
          plan: z.string().trim().min(1).max(100).optional(),
          active: z.boolean().optional(),
          quotas: z.record(z.string().regex(/^[a-z0-9_]{1,60}$/, 'quota names are lower-case words'), z.number().int().min(0)).optional(),
          username: z.string().trim().min(1).max(100).optional(),
        }),
        response: { 200: adminUserSchema, ...problemResponses },
      },
    },
    async (request) => {
      const found = await findByIdOrExternalId(request.params.id);
      if (!found) throw new NotFoundError('User');
      const user = await identity.updateUser(found.id, request.body);
      if (!user) throw new NotFoundError('User');
      const keys = await vault.list(user);
      return { ...presentUser(await identity.describeUser(user)), provider_keys: keys.map(presentProviderKey) };
    },
  );
}
