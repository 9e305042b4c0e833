import { z } from 'zod';
import type { AppInstance } from '../../app-types.js';
import { problemResponses, problemSchema } from '../../infra/http/schemas.js';
import { optionalActingUser } from '../identity/auth.js';
import type { IdentityService } from '../identity/service.js';
import {
  bindingListSchema,
  bindingSchema,
  createBindingBodySchema,
  listQuerySchema,
  presentBinding,
  resolvedSchema,
  resolveQuerySchema,
  updateBindingBodySchema,
} from './schemas.js';
import type { BindingPatch, ChannelBindingsService } from './service.js';

const idParams = z.object({ id: z.string().min(1).max(100) });

function patchFrom(body: z.infer<typeof updateBindingBodySchema>): BindingPatch {
  return {
    triggers: body.triggers && {
      mention: body.triggers.mention,
      reply: body.triggers.reply,
      name: body.triggers.name,
      words: body.triggers.words,
      everyMessage: body.triggers.every_message,
    },
    freeWill: body.free_will && {
      enabled: body.free_will.enabled,
      probability: body.free_will.probability,
      cooldownSeconds: body.free_will.cooldown_seconds,
    },
    voiceReplies: body.voice_replies,
  };
}

/** Channel bindings are managed by the bot (service key) and administrators only. */
export function registerChannelBindingRoutes(app: AppInstance, dependencies: { bindings: ChannelBindingsService; identity: IdentityService }): void {
  const { bindings, identity } = dependencies;
  const config = { auth: 'service' as const };

  app.get(
    '/v1/channel-bindings',
    {
      config,
      schema: {
        tags: ['channel-bindings'],
        summary: 'Bindings of characters to chat-platform places (filter by guild, channel, category, character)',
        querystring: listQuerySchema,
        response: { 200: bindingListSchema, ...problemResponses },
      },
    },
    async (request) => {
      const query = request.query;
      const list = await bindings.list({ platform: query.platform, guildId: query.guild_id, channelId: query.channel_id, categoryId: query.category_id, character: query.character });
      return { data: list.map(presentBinding) };
    },
  );

  app.get(
    '/v1/channel-bindings/resolve',
    {
      config,
      schema: {
        tags: ['channel-bindings'],
        summary: "The characters that answer in a place: the channel's own bindings, else its category's, else the server default",
        querystring: resolveQuerySchema,
        response: { 200: resolvedSchema, ...problemResponses },
      },
    },
    async (request) => {
      const query = request.query;
      const resolved = await bindings.resolve({ platform: query.platform, guildId: query.guild_id, channelId: query.channel_id, categoryId: query.category_id });
      return { scope: resolved.scope, data: resolved.bindings.map(presentBinding) };
    },
  );

  app.post(
    '/v1/channel-bindings',
    {
      config,
      schema: {
        tags: ['channel-bindings'],
        summary: 'Bind a character to a channel, a category or a whole server (neither channel_id nor category_id)',
        body: createBindingBodySchema,
        response: { 201: bindingSchema, ...problemResponses, 409: problemSchema },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const actor = await optionalActingUser(identity, request);
      const binding = await bindings.create(
        {
          platform: body.platform,
          guildId: body.guild_id,
          channelId: body.channel_id,
          categoryId: body.category_id,
          character: body.character,
          ...patchFrom(body),
        },
        { userId: actor?.id ?? null },
      );
      return reply.status(201).send(presentBinding(binding));
    },
  );

  app.get(
    '/v1/channel-bindings/:id',
    { config, schema: { tags: ['channel-bindings'], summary: 'One binding', params: idParams, response: { 200: bindingSchema, ...problemResponses } } },
    async (request) => presentBinding(await bindings.get(request.params.id)),
  );

  app.patch(
    '/v1/channel-bindings/:id',
    {
      config,
      schema: {
        tags: ['channel-bindings'],
        summary: 'Change the triggers, free will or voice replies of a binding (fields merge)',
        params: idParams,
        body: updateBindingBodySchema,
        response: { 200: bindingSchema, ...problemResponses },
      },
    },
    async (request) => presentBinding(await bindings.update(request.params.id, patchFrom(request.body))),
  );

  app.delete(
    '/v1/channel-bindings/:id',
    { config, schema: { tags: ['channel-bindings'], summary: 'Remove a binding', params: idParams, response: { 204: z.null(), ...problemResponses } } },
    async (request, reply) => {
      await bindings.remove(request.params.id);
      return reply.status(204).send(null);
    },
  );
}
