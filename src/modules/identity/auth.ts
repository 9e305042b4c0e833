import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ForbiddenError, UnauthorizedError, ValidationError } from '../../infra/http/errors.js';
import { declaredContextHeaders, undeclaredContextHeaderReads, type ContextHeaderName } from '../../infra/http/openapi.js';
import type { Actor } from './authorization.js';
import type { IdentityService, Principal } from './service.js';
import type { UserRow } from './store.js';

/**
 * Route-level access, set in a route's `config.auth`:
 * - `public`: no credentials (health, docs);
 * - `authenticated` (default): any valid key or token;
 * - `service`: service or admin keys;
 * - `admin`: admin keys only.
 */
export type AuthLevel = 'public' | 'authenticated' | 'service' | 'admin';

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: AuthLevel;
    /**
     * The body member in which a service key may name the end user (`user_id` on the bot protocol,
     * `user` on OpenAI's route). Hooks that act before the handler (limits, Idempotency-Key) read it
     * through `bodyEndUser`, so they count and scope the same user the handler acts for.
     */
    endUserField?: string;
  }
  interface FastifyRequest {
    principal: Principal | undefined;
  }
}

/** The end user the request body names, on routes that declare `config.endUserField`. */
export function bodyEndUser(request: FastifyRequest): { user_id?: string | undefined; username?: string | undefined } | undefined {
  const field = request.routeOptions.config.endUserField;
  const body = request.body as Record<string, unknown> | null | undefined;
  if (!field || !body || typeof body !== 'object') return undefined;
  const named = body[field];
  return { user_id: typeof named === 'string' ? named : undefined, username: typeof body.username === 'string' ? body.username : undefined };
}

export function registerAuthentication(app: FastifyInstance, identity: IdentityService): void {
  app.decorateRequest('principal', undefined);
  app.addHook('preHandler', async (request) => {
    const level = request.routeOptions.config.auth ?? 'authenticated';
    const url = request.routeOptions.url;
    // The interactive reference (swagger-ui's own routes) is public like /openapi.json.
    if (level === 'public' || !url || url === '/docs' || url.startsWith('/docs/')) return;
    const principal = await identity.authenticate(request.headers.authorization);
    request.principal = principal;
    if (level === 'admin' && principal.role !== 'admin') throw new ForbiddenError('This needs an admin key.');
    if (level === 'service' && principal.role === 'user') throw new ForbiddenError('This needs a service or admin key.');
  });
}

export function requirePrincipal(request: FastifyRequest): Principal {
  if (!request.principal) throw new UnauthorizedError();
  return request.principal;
}

function headerValue(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  const single = Array.isArray(value) ? value[0] : value;
  return single?.trim() ? single.trim() : undefined;
}

/**
 * The end-user context headers (Shapes-compatible), optionally overridden by body fields. Each is
 * read when used; a route reading one it does not declare (`config.contextHeaders`, which is what
 * /docs shows) is noted in `undeclaredContextHeaderReads`.
 */
export function endUserContext(request: FastifyRequest, body?: { user_id?: string | undefined; username?: string | undefined }) {
  const read = (name: ContextHeaderName): string | undefined => {
    const declared = declaredContextHeaders(request.routeOptions.config);
    if (!declared.includes(name) && undeclaredContextHeaderReads.size < 1000) undeclaredContextHeaderReads.add(`${request.method} ${request.routeOptions.url ?? request.url} ${name}`);
    return headerValue(request, name);
  };
  return {
    get externalUserId() {
      return read('x-user-id') ?? body?.user_id ?? undefined;
    },
    get username() {
      return read('x-username') ?? body?.username ?? undefined;
    },
    get channelId() {
      return read('x-channel-id');
    },
    get guildId() {
      return read('x-guild-id');
    },
  };
}

/** The acting end user, or undefined for a service/admin call that names none. */
export async function optionalActingUser(
  identity: IdentityService,
  request: FastifyRequest,
  body?: { user_id?: string | undefined; username?: string | undefined },
): Promise<UserRow | undefined> {
  return identity.resolveActingUser(requirePrincipal(request), endUserContext(request, body));
}

/**
 * The actor for authorization (role, acting user, the service key's own user) and the acting user.
 * Every route that reads or changes a user-owned object builds its checks on this.
 */
export async function actingActor(
  identity: IdentityService,
  request: FastifyRequest,
  body?: { user_id?: string | undefined; username?: string | undefined },
): Promise<{ actor: Actor; user: UserRow | undefined }> {
  const principal = requirePrincipal(request);
  const user = await optionalActingUser(identity, request, body);
  const keyUserId = principal.role === 'service' ? await identity.credentialUserId(principal) : undefined;
  return { actor: { role: principal.role, userId: user?.id, keyUserId }, user };
}

/** The acting end user; an admin key that names none is told to send X-User-Id. */
export async function requireActingUser(
  identity: IdentityService,
  request: FastifyRequest,
  body?: { user_id?: string | undefined; username?: string | undefined },
): Promise<UserRow> {
  const user = await optionalActingUser(identity, request, body);
  if (!user) {
    throw new ValidationError('X-User-Id', 'This endpoint acts for an end user: send X-User-Id with an admin key.');
  }
  return user;
}
