import { z } from 'zod';
import type { AppInstance } from '../../app-types.js';
import { PROVIDERS } from '../../config.js';
import { problemResponses, problemSchema } from '../../infra/http/schemas.js';
import { requireActingUser } from './auth.js';
import type { ProviderKeyVault } from './provider-keys.js';
import { keyNameInput, presentProviderKey, providerKeyInput, providerKeySchema, providerKeyStatusSchema } from './schemas.js';
import type { IdentityService } from './service.js';

export function registerProviderKeyRoutes(app: AppInstance, deps: { identity: IdentityService; vault: ProviderKeyVault }): void {
  const { identity, vault } = deps;
  const idParams = z.object({ id: z.uuid() });

  app.get(
    '/v1/me/provider-keys',
    {
      schema: {
        tags: ['provider keys'],
        summary: 'Your provider keys (masked, with status)',
        response: { 200: z.object({ data: z.array(providerKeySchema) }), ...problemResponses },
      },
    },
    async (request) => {
      const user = await requireActingUser(identity, request);
      return { data: (await vault.list(user)).map(presentProviderKey) };
    },
  );

  app.get(
    '/v1/me/provider-keys/status',
    {
      schema: {
        tags: ['provider keys'],
        summary: 'Per provider: whether calls can go ahead (your usable key, or a platform key your plan allows)',
        response: { 200: providerKeyStatusSchema, ...problemResponses },
      },
    },
    async (request) => vault.status(await requireActingUser(identity, request)),
  );

  app.post(
    '/v1/me/provider-keys',
    {
      schema: {
        tags: ['provider keys'],
        summary: 'Add a provider key: checked with the provider, stored encrypted',
        description:
          'A key the provider rejects answers 422 validation_failed (field `key`, `reason: provider_key_invalid`) and is not stored. ' +
          'A provider that cannot be reached gives no verdict: the key is stored with status `unreachable`. kie.ai has no key check: `unchecked`.',
        body: z
          .object({ provider: z.enum(PROVIDERS), key: providerKeyInput, name: keyNameInput.optional() })
          .meta({ examples: [{ provider: 'openrouter', key: 'sk-or-v1-…', name: 'my OpenRouter key' }] }),
        response: { 201: providerKeySchema, ...problemResponses },
      },
    },
    async (request, reply) => {
      const user = await requireActingUser(identity, request);
      const row = await vault.add(user, request.body);
      return reply.status(201).send(presentProviderKey(row));
    },
  );

  app.get(
    '/v1/me/provider-keys/:id',
    {
      schema: {
        tags: ['provider keys'],
        summary: 'One of your provider keys (masked)',
        params: idParams,
        response: { 200: providerKeySchema, ...problemResponses },
      },
    },
    async (request) => {
      const user = await requireActingUser(identity, request);
      return presentProviderKey(await vault.get(user, request.params.id));
    },
  );

  app.patch(
    '/v1/me/provider-keys/:id',
    {
      schema: {
        tags: ['provider keys'],
        summary: 'Rename or (de)activate one of your provider keys',
        params: idParams,
        body: z.object({ active: z.boolean().optional(), name: keyNameInput.optional() }),
        response: { 200: providerKeySchema, ...problemResponses },
      },
    },
    async (request) => {
      const user = await requireActingUser(identity, request);
      return presentProviderKey(await vault.update(user, request.params.id, request.body));
    },
  );

  app.post(
    '/v1/me/provider-keys/:id/check',
    {
      schema: {
        tags: ['provider keys'],
        summary: 'Re-check one of your provider keys with the provider and store the new status',
        description:
          'Runs the same check as when the key was added and answers the key (masked) with its new `status`: `valid`, `invalid` ' +
          '(the provider rejected it: it is kept, but no longer used for calls), `unreachable` (no verdict: network error, timeout, 429, 5xx) ' +
          'or `unchecked` (kie.ai has no key check). Another user\'s key id is a 404; a key the server can no longer decrypt is a 409 `provider_key_unreadable`.',
        params: idParams,
        response: { 200: providerKeySchema, ...problemResponses, 409: problemSchema },
      },
    },
    async (request) => {
      const user = await requireActingUser(identity, request);
      return presentProviderKey(await vault.recheck(user, request.params.id));
    },
  );

  app.delete(
    '/v1/me/provider-keys/:id',
    {
      schema: {
        tags: ['provider keys'],
        summary: 'Delete one of your provider keys',
        params: idParams,
        response: { 204: z.null(), ...problemResponses },
      },
    },
    async (request, reply) => {
      const user = await requireActingUser(identity, request);
      await vault.remove(user, request.params.id);
      return reply.status(204).send(null);
    },
  );
}
