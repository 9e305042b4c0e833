import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AppInstance } from '../../app-types.js';
import type { Config } from '../../config.js';
import { problemResponses, problemSchema } from '../../infra/http/schemas.js';
import type { CharactersService } from '../characters/service.js';
import { requireActingUser, requirePrincipal } from '../identity/auth.js';
import type { IdentityService } from '../identity/service.js';
import type { UserRow } from '../identity/store.js';
import {
  contentQuerySchema,
  describeBodySchema,
  describeResponseSchema,
  generationBodySchema,
  generationResponseSchema,
  imageListSchema,
  imageSchema,
  listQuerySchema,
  patchBodySchema,
  presentImage,
} from './schemas.js';
import { errorOfRow, type ImagesService } from './service.js';
import type { GeneratedImageRow } from './tables.js';
import type { VisionService } from './vision.js';

export interface ImageRouteDependencies {
  images: ImagesService;
  vision: VisionService;
  identity: IdentityService;
  characters: CharactersService;
  config: Readonly<Config>;
}

const idParams = z.object({ id: z.string().min(1).max(100) });
const imageResponses = { ...problemResponses, 402: problemSchema, 409: problemSchema, 413: problemSchema, 502: problemSchema, 504: problemSchema };

export function registerImageRoutes(app: AppInstance, dependencies: ImageRouteDependencies): void {
  const { images, vision, identity, characters, config } = dependencies;

  const origin = (request: FastifyRequest): string => `${request.protocol}://${request.host}`;
  const present = async (request: FastifyRequest, row: GeneratedImageRow) => presentImage(row, await images.signedUrl(row, origin(request)));
  const characterId = async (request: FastifyRequest, user: UserRow, idOrSlug: string | undefined): Promise<string | undefined> => {
    if (idOrSlug === undefined) return undefined;
    const principal = requirePrincipal(request);
    return (await characters.get(idOrSlug, { role: principal.role, userId: user.id })).id;
  };
  const isAdmin = (request: FastifyRequest) => requirePrincipal(request).role === 'admin';

  app.post(
    '/v1/images/generations',
    {
      config: { idempotency: true },
      schema: {
        tags: ['images'],
        summary: 'Generate images (OpenAI’s images shape; waits up to IMAGE_WAIT_MS, else 202 pending)',
        body: generationBodySchema,
        response: { 200: generationResponseSchema, 202: generationResponseSchema, ...imageResponses },
      },
    },
    async (request, reply) => {
      const user = await requireActingUser(identity, request);
      const body = request.body;
      const openaiStyle = body.style === 'vivid' || body.style === 'natural' ? body.style : undefined;
      const style = openaiStyle === undefined ? body.style : undefined;
      const generation = await images.generate({
        user,
        prompt: body.prompt,
        provider: body.provider,
        model: body.model,
        style: style as 'fast' | 'quality' | 'pro' | undefined,
        openaiStyle,
        size: body.size === 'auto' ? undefined : body.size,
        aspectRatio: body.aspect_ratio,
        count: body.n,
        negativePrompt: body.negative_prompt,
        seed: body.seed,
        steps: body.steps,
        guidance: body.guidance,
        outputFormat: body.output_format,
        quality: body.quality,
        characterId: await characterId(request, user, body.character),
        requestId: request.id,
      });
      const rows = body.async ? generation.rows : await images.waitFor(generation.generationId, config.images.waitMs, abortSignalOf(reply));
      const succeeded = rows.filter((row) => row.status === 'succeeded');
      const finished = rows.every((row) => row.status === 'succeeded' || row.status === 'failed');
      if (finished && succeeded.length === 0) throw errorOfRow(rows.find((row) => row.status === 'failed') ?? rows[0]!);
      const data = [];
      for (const row of succeeded) {
        const item: { url?: string; b64_json?: string; revised_prompt?: string; id: string } = { id: row.id, url: (await images.signedUrl(row, origin(request))) ?? `/v1/images/${row.id}/content` };
        if (body.response_format === 'b64_json') item.b64_json = (await images.bytesOf(row))?.toString('base64');
        if (row.revisedPrompt) item.revised_prompt = row.revisedPrompt;
        data.push(item);
      }
      const answer = {
        created: Math.floor((rows[0]?.createdAt ?? new Date()).getTime() / 1000),
        data,
        id: generation.generationId,
        status: !finished ? ('pending' as const) : succeeded.length === rows.length ? ('succeeded' as const) : ('partial' as const),
        provider: generation.plan.provider,
        model: generation.plan.model,
        warnings: generation.plan.warnings,
        images: await Promise.all(rows.map((row) => present(request, row))),
      };
      return reply.status(finished ? 200 : 202).send(answer);
    },
  );

  app.get(
    '/v1/images',
    { schema: { tags: ['images'], summary: 'Your images, newest first (cursor pagination)', querystring: listQuerySchema, response: { 200: imageListSchema, ...problemResponses } } },
    async (request) => {
      const user = await requireActingUser(identity, request);
      const query = request.query;
      const page = await images.list(user, {
        limit: query.limit,
        cursor: query.cursor,
        favorite: query.favorite === undefined ? undefined : query.favorite === 'true',
        characterId: await characterId(request, user, query.character),
        status: query.status,
      });
      return { object: 'list' as const, data: await Promise.all(page.data.map((row) => present(request, row))), next_cursor: page.nextCursor };
    },
  );

  app.get(
    '/v1/images/:id',
    { schema: { tags: ['images'], summary: 'One image: pending | running | succeeded | failed (with the reason)', params: idParams, response: { 200: imageSchema, ...problemResponses } } },
    async (request) => {
      const user = await requireActingUser(identity, request);
      return present(request, await images.imageFor(request.params.id, user, isAdmin(request)));
    },
  );

  app.patch(
    '/v1/images/:id',
    { schema: { tags: ['images'], summary: 'Mark a favourite or set a title', params: idParams, body: patchBodySchema, response: { 200: imageSchema, ...problemResponses } } },
    async (request) => {
      const user = await requireActingUser(identity, request);
      const row = await images.imageFor(request.params.id, user);
      return present(request, await images.update(row, request.body));
    },
  );

  app.delete(
    '/v1/images/:id',
    { schema: { tags: ['images'], summary: 'Delete an image and its bytes', params: idParams, response: { 204: z.null(), ...problemResponses } } },
    async (request, reply) => {
      const user = await requireActingUser(identity, request);
      await images.delete(await images.imageFor(request.params.id, user));
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/v1/images/:id/content',
    {
      schema: {
        tags: ['images'],
        summary: 'The image bytes (?download=1 for an attachment with a file name)',
        params: idParams,
        querystring: contentQuerySchema,
        response: { 200: z.any().describe('image/png | image/jpeg | image/webp'), 304: z.null().describe('Not modified'), ...problemResponses, 409: problemSchema },
      },
    },
    async (request, reply) => {
      const user = await requireActingUser(identity, request);
      const admin = isAdmin(request);
      const row = await images.imageFor(request.params.id, user, admin);
      const content = await images.content(row, user, admin);
      const etag = `"${row.id}"`;
      reply.header('content-type', content.contentType);
      // The bytes of an image id never change: private (per user), cacheable for long.
      reply.header('cache-control', 'private, max-age=31536000, immutable');
      reply.header('etag', etag);
      reply.header('last-modified', (row.completedAt ?? row.createdAt).toUTCString());
      reply.header('x-content-type-options', 'nosniff');
      const download = request.query.download === '1' || request.query.download === 'true';
      const extension = content.contentType === 'image/jpeg' ? 'jpg' : content.contentType.split('/')[1] ?? 'bin';
      reply.header('content-disposition', `${download ? 'attachment' : 'inline'}; filename="${fileNameOf(row)}.${extension}"`);
      if (request.headers['if-none-match'] === etag) return reply.status(304).send(null);
      return reply.send(content.bytes);
    },
  );

  app.post(
    '/v1/vision/describe',
    {
      schema: {
        tags: ['vision'],
        summary: 'Describe an image (Gemini, or an OpenAI vision model), fetched SSRF-safely and checked',
        body: describeBodySchema,
        response: { 200: describeResponseSchema, ...imageResponses },
      },
      bodyLimit: Math.ceil(config.images.maxBytes * 1.4) + 16_384,
    },
    async (request, reply) => {
      const user = await requireActingUser(identity, request);
      const result = await vision.describe({
        user,
        imageUrl: request.body.image_url,
        imageBase64: request.body.image_base64,
        mimeType: request.body.mime_type,
        prompt: request.body.prompt,
        requestId: request.id,
        signal: abortSignalOf(reply),
      });
      return {
        description: result.description,
        provider: result.provider,
        model: result.model,
        content_type: result.image.contentType,
        width: result.image.width,
        height: result.image.height,
        usage: { prompt_tokens: result.usage.promptTokens, completion_tokens: result.usage.completionTokens },
      };
    },
  );
}

/** A file name from the title or the prompt: letters, digits and dashes only. */
function fileNameOf(row: GeneratedImageRow): string {
  const base = (row.title ?? row.prompt)
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60);
  return base || `image-${row.id.slice(0, 8)}`;
}

/** Aborts when the client goes away before the answer was sent. */
function abortSignalOf(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}
