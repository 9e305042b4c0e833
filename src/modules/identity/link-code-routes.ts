import { z } from 'zod';
import type { AppInstance } from '../../app-types.js';
import type { Counters } from '../../infra/cache/cache.js';
import { ForbiddenError, RateLimitedError, ValidationError } from '../../infra/http/errors.js';
import { problemResponses } from '../../infra/http/schemas.js';
import { endUserContext, optionalActingUser, requirePrincipal } from './auth.js';
import { consumeLinkCode, findLiveLinkCode, generateLinkCode, hashLinkCode, insertLinkCode, LINK_CODE_TTL_MS, normaliseLinkCode, recordLinkCodeKey } from './link-codes.js';
import type { IdentityService } from './service.js';
import * as store from './store.js';

/** Redemption attempts allowed per client address per minute (the code space is 40 bits). */
export const LINK_CODE_REDEEMS_PER_MINUTE = 10;

/** Where the person opens the code: the dashboard (SETUP_URL, else PUBLIC_BASE_URL, else this server) with ?code=. */
function linkUrl(base: string, code: string): string {
  const url = new URL(base);
  url.searchParams.set('code', code);
  return url.toString();
}

export function registerLinkCodeRoutes(
  app: AppInstance,
  deps: { identity: IdentityService; counters: Counters; setupUrl: string | undefined; publicBaseUrl: string | undefined },
): void {
  const { identity, counters } = deps;

  app.post(
    '/v1/link-codes',
    {
      schema: {
        tags: ['identity'],
        summary: 'A one-time code (10 minutes) that the end user named by X-User-Id redeems on the dashboard for their own user key (service/admin)',
        response: {
          201: z.object({
            code: z.string().describe('ABCD-EFGH; show it to that user only'),
            url: z.string().describe('The dashboard with the code filled in'),
            expires_at: z.string(),
          }),
          ...problemResponses,
        },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      if (principal.role !== 'service' && principal.role !== 'admin') throw new ForbiddenError('Only a service or admin key may issue link codes (it vouches for who the user is).');
      // The code binds to the end user the key names, never to the key's own user.
      if (!endUserContext(request).externalUserId) throw new ValidationError('X-User-Id', 'Send X-User-Id: the end user the code is for.');
      const user = await optionalActingUser(identity, request);
      if (!user) throw new ValidationError('X-User-Id', 'Send X-User-Id: the end user the code is for.');
      const code = generateLinkCode();
      const expiresAt = new Date(Date.now() + LINK_CODE_TTL_MS);
      await insertLinkCode(identity.database, { codeHash: hashLinkCode(normaliseLinkCode(code)!), userId: user.id, createdByKeyId: principal.apiKeyId, expiresAt });
      const base = deps.setupUrl ?? deps.publicBaseUrl ?? `${request.protocol}://${request.host}/`;
      return reply.status(201).send({ code, url: linkUrl(base, code), expires_at: expiresAt.toISOString() });
    },
  );

  app.post(
    '/v1/link-codes/redeem',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['identity'],
        summary: 'Trade a link code for a user API key of the user it was issued for (no credentials; at most 10 tries a minute per address)',
        security: [],
        body: z.object({
          code: z.string().max(40).describe('As shown, e.g. ABCD-EFGH (case and dashes do not matter)'),
          name: z.string().trim().min(1).max(100).optional().describe('A name for the key (default: "dashboard")'),
        }),
        response: {
          201: z.object({ key: z.string().describe('Shown once'), id: z.string(), user_id: z.string(), name: z.string(), prefix: z.string() }),
          ...problemResponses,
        },
      },
    },
    async (request, reply) => {
      const hit = await counters.increment(`link-code-redeem:${request.ip}`, 60);
      if (hit.count > LINK_CODE_REDEEMS_PER_MINUTE) throw new RateLimitedError(hit.resetInSeconds, 'Too many link code attempts from this address: wait a minute.');
      const invalid = () => new ValidationError('code', 'This link code is not valid: it may be mistyped, used already, or expired (codes last 10 minutes). Run /setup again for a new one.');
      const normalised = normaliseLinkCode(request.body.code);
      if (!normalised) throw invalid();
      const live = await findLiveLinkCode(identity.database, hashLinkCode(normalised));
      if (!live) throw invalid();
      const user = await store.findUserById(identity.database, live.userId);
      if (!user) throw invalid();
      // Checked before the code is spent, so a user at the cap keeps a code that works once a key is revoked.
      const active = (await store.listApiKeys(identity.database, { userId: user.id })).filter((key) => !key.revokedAt && !(key.expiresAt && key.expiresAt.getTime() <= Date.now()));
      await identity.assertUnderLimit(user, 'apiKeys', active.length);
      const consumed = await consumeLinkCode(identity.database, live.id);
      if (!consumed) throw invalid();
      const name = request.body.name ?? 'dashboard';
      const created = await identity.createApiKey({ role: 'user', name, userId: user.id, expiresAt: null });
      await recordLinkCodeKey(identity.database, live.id, created.row.id);
      return reply.status(201).send({ key: created.key, id: created.row.id, user_id: user.id, name, prefix: created.row.prefix });
    },
  );
}
