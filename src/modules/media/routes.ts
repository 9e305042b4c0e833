import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AppInstance } from '../../app-types.js';
import { problemResponses } from '../../infra/http/schemas.js';
import { optionalActingUser } from '../identity/auth.js';
import type { IdentityService } from '../identity/service.js';
import type { MediaService, MediaViewer } from './service.js';

export function registerMediaRoutes(app: AppInstance, dependencies: { media: MediaService; identity: IdentityService }): void {
  const { media, identity } = dependencies;
  app.get(
    '/v1/media/:id',
    {
      // Signed URLs need no credentials; without a signature the handler asks for the owner's
      // (a service key names the owner with X-User-Id, so the user headers are declared).
      config: { auth: 'public', contextHeaders: 'user' },
      schema: {
        tags: ['media'],
        summary: 'Stored audio or image bytes (a chat turn\'s audio_url): with the owner\'s bearer token, or a signed URL',
        params: z.object({ id: z.string().max(64) }),
        querystring: z.object({ expires: z.coerce.number().int().optional(), signature: z.string().max(128).optional() }),
        response: { 200: z.any().describe('the stored bytes with their content type'), 206: z.any().describe('a byte range'), ...problemResponses },
      },
    },
    async (request, reply) => {
      const { expires, signature } = request.query;
      let viewer: MediaViewer;
      let cacheControl: string;
      if (signature !== undefined && expires !== undefined) {
        viewer = { signature: { expires, signature } };
        cacheControl = `public, max-age=${Math.max(0, expires - Math.floor(Date.now() / 1000))}, immutable`;
      } else {
        const principal = await identity.authenticate(request.headers.authorization);
        request.principal = principal;
        viewer = { user: await optionalActingUser(identity, request), admin: principal.role === 'admin' };
        cacheControl = 'private, max-age=3600';
      }
      const content = await media.read(request.params.id, viewer);
      reply.header('cache-control', cacheControl);
      reply.header('etag', `"${content.row.id}"`);
      reply.header('accept-ranges', 'bytes');
      // Browsers on other origins (the dashboard, a chat client's <audio>) may embed it.
      reply.header('cross-origin-resource-policy', 'cross-origin');
      return sendWithRange(request, reply, content.bytes, content.contentType);
    },
  );
}

/** One `bytes=a-b` range (what <audio> seeking asks for); anything else gets the whole body. */
function sendWithRange(request: FastifyRequest, reply: FastifyReply, bytes: Buffer, contentType: string): FastifyReply {
  const header = request.headers.range;
  const match = typeof header === 'string' ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!match || (match[1] === '' && match[2] === '')) return reply.type(contentType).send(bytes);
  const size = bytes.length;
  let start: number;
  let end: number;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start >= size || end < start) {
    return reply.status(416).header('content-range', `bytes */${size}`).type(contentType).send(Buffer.alloc(0));
  }
  return reply
    .status(206)
    .header('content-range', `bytes ${start}-${end}/${size}`)
    .type(contentType)
    .send(bytes.subarray(start, end + 1));
}
