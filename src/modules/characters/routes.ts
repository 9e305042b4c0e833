import type { FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppInstance } from '../../app-types.js';
import type { Config } from '../../config.js';
import { NotFoundError } from '../../infra/http/errors.js';
import { problemResponses, problemSchema } from '../../infra/http/schemas.js';
import { actingActor } from '../identity/auth.js';
import type { IdentityService } from '../identity/service.js';
import { placeholderPng, readCardFromPng, stripCardFromPng, writeCardsToPng } from './card-png.js';
import { characterToCardV2, characterToCardV3, parseCard } from './cards.js';
import { bodyToInput, characterBodySchema, characterPatchSchema, characterSchema, presentCharacter } from './schemas.js';
import type { CharactersService } from './service.js';
import { VISIBILITIES, type CharacterInput, type CharacterViewer } from './types.js';

export interface CharacterRoutesDependencies {
  characters: CharactersService;
  identity: IdentityService;
  config: Readonly<Config>;
}

const idParams = z.object({ id: z.string().min(1).max(100).describe('The character id or slug') });
const conflictResponses = { ...problemResponses, 409: problemSchema };

export function registerCharacterRoutes(app: AppInstance, dependencies: CharacterRoutesDependencies): void {
  const { characters, identity, config } = dependencies;

  /** The authorization actor: role, acting user (a user key: itself; a service key: X-User-Id or its own user). */
  const viewerOf = async (request: FastifyRequest): Promise<CharacterViewer> => (await actingActor(identity, request)).actor;

  /** Creates a character owned by the acting user, within the user's cap (admins without X-User-Id: no owner, no cap). */
  const createOwned = async (request: FastifyRequest, input: CharacterInput) => {
    const { actor, user } = await actingActor(identity, request);
    if (user) await identity.assertUnderLimit(user, 'characters', await characters.countOwned(user.id));
    return characters.create(input, { userId: user?.id ?? null }, actor);
  };

  app.post(
    '/v1/characters',
    {
      schema: {
        tags: ['characters'],
        summary: 'Create a character (owned by the acting user, if any)',
        body: characterBodySchema.meta({
          examples: [
            {
              name: 'Luna',
              description: 'A stargazer who runs a small observatory on a hill.',
              personality: 'Curious, warm, a little dreamy.',
              greeting: 'Oh, hello! Have you come to see the comet too?',
              example_dialogues: [{ user: 'What is that bright star?', assistant: 'That is Vega, and she is showing off tonight.' }],
              model_settings: { provider: 'openrouter', model: 'openai/gpt-4o-mini', temperature: 0.8 },
              visibility: 'public',
            },
          ],
        }),
        response: { 201: characterSchema, ...conflictResponses },
      },
    },
    async (request, reply) => {
      const created = await createOwned(request, bodyToInput(request.body) as CharacterInput);
      return reply.status(201).send(presentCharacter(created));
    },
  );

  app.get(
    '/v1/characters',
    {
      schema: {
        tags: ['characters'],
        summary: 'List public characters and your own (admins: all), newest first',
        querystring: z.object({
          limit: z.coerce.number().int().min(1).max(200).default(50),
          cursor: z.string().max(200).optional(),
        }),
        response: { 200: z.object({ data: z.array(characterSchema), next_cursor: z.string().nullable() }), ...problemResponses },
      },
    },
    async (request) => {
      const page = await characters.list({ viewer: await viewerOf(request), limit: request.query.limit, cursor: request.query.cursor });
      return { data: page.data.map(presentCharacter), next_cursor: page.nextCursor };
    },
  );

  app.get(
    '/v1/characters/:id',
    {
      schema: { tags: ['characters'], summary: 'Read a character by id or slug', params: idParams, response: { 200: characterSchema, ...problemResponses } },
    },
    async (request) => presentCharacter(await characters.get(request.params.id, await viewerOf(request))),
  );

  app.patch(
    '/v1/characters/:id',
    {
      schema: {
        tags: ['characters'],
        summary: 'Change a character (its owner or an admin; public visibility needs a service or admin key)',
        params: idParams,
        body: characterPatchSchema,
        response: { 200: characterSchema, ...conflictResponses },
      },
    },
    async (request) => presentCharacter(await characters.update(request.params.id, bodyToInput(request.body), await viewerOf(request))),
  );

  app.delete(
    '/v1/characters/:id',
    {
      schema: {
        tags: ['characters'],
        summary: 'Delete a character with its conversations and memories',
        params: idParams,
        response: { 204: z.null(), ...problemResponses },
      },
    },
    async (request, reply) => {
      await characters.remove(request.params.id, await viewerOf(request));
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/v1/characters/:id/avatar',
    {
      schema: {
        tags: ['characters'],
        summary: 'The avatar image stored with a character (PNG card imports)',
        params: idParams,
        response: { 200: z.any().describe('image bytes'), ...problemResponses },
      },
    },
    async (request, reply) => {
      const avatar = await characters.readStoredAvatar(request.params.id, await viewerOf(request));
      if (!avatar) throw new NotFoundError('Stored avatar image');
      return reply.type(avatar.mimeType).header('cache-control', 'private, max-age=300').send(avatar.bytes);
    },
  );

  app.get(
    '/v1/characters/:id/export',
    {
      schema: {
        tags: ['characters'],
        summary: 'Export as a Character Card: V2 or V3 JSON, or a PNG carrying both',
        params: idParams,
        querystring: z.object({ format: z.enum(['ccv2', 'ccv3', 'png']).default('ccv3') }),
        // A card object (ccv2, ccv3) or PNG bytes, so the schema documents rather than serializes.
        response: { 200: z.any().describe('{spec, spec_version, data} for ccv2/ccv3; image/png bytes for png'), ...problemResponses },
      },
    },
    async (request, reply) => {
      const viewer = await viewerOf(request);
      const character = await characters.get(request.params.id, viewer);
      const { format } = request.query;
      reply.header('content-disposition', `attachment; filename="${character.slug}.${format === 'png' ? 'png' : 'json'}"`);
      if (format === 'ccv2') return characterToCardV2(character);
      if (format === 'ccv3') return characterToCardV3(character);
      const stored = await characters.readStoredAvatar(character.id);
      const image = stored?.mimeType === 'image/png' ? stored.bytes : placeholderPng(character.name);
      const png = writeCardsToPng(image, { v2: characterToCardV2(character), v3: characterToCardV3(character) });
      return reply.type('image/png').send(png);
    },
  );

  // PNG bodies are accepted on the import route only, with the larger import body limit.
  void app.register(async (plain) => {
    const scope = plain.withTypeProvider<ZodTypeProvider>();
    scope.addContentTypeParser('image/png', { parseAs: 'buffer', bodyLimit: config.importBodyLimitBytes }, (_request, body, done) => {
      done(null, body);
    });
    scope.post(
      '/v1/characters/import',
      {
        bodyLimit: config.importBodyLimitBytes,
        schema: {
          tags: ['characters'],
          summary: 'Import a Character Card V2/V3: JSON, or a PNG (Content-Type: image/png) with chara/ccv3 chunks',
          querystring: z.object({
            slug: z.string().optional().describe('Slug for the new character (default: from the name)'),
            visibility: z.enum(VISIBILITIES).optional(),
          }),
          body: z.unknown().describe('The card JSON, or the PNG bytes'),
          response: { 201: characterSchema.extend({ imported_from: z.enum(['ccv1', 'ccv2', 'ccv3']) }), ...conflictResponses, 413: problemSchema },
        },
      },
      async (request, reply) => {
        const isPng = Buffer.isBuffer(request.body);
        const card = isPng ? readCardFromPng(request.body as Buffer) : request.body;
        const { version, input } = parseCard(card);
        if (isPng) input.avatar = `data:image/png;base64,${stripCardFromPng(request.body as Buffer).toString('base64')}`;
        if (request.query.slug !== undefined) input.slug = request.query.slug;
        if (request.query.visibility !== undefined) input.visibility = request.query.visibility;
        const created = await createOwned(request, input);
        return reply.status(201).send({ ...presentCharacter(created), imported_from: `cc${version}` as const });
      },
    );
  });
}
