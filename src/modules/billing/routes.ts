import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { AppInstance } from '../../app-types.js';
import type { Executor } from '../../infra/db/database.js';
import { NotFoundError } from '../../infra/http/errors.js';
import { problemResponses, problemSchema } from '../../infra/http/schemas.js';
import { bodyEndUser, optionalActingUser, requireActingUser, requirePrincipal } from '../identity/auth.js';
import type { IdentityService } from '../identity/service.js';
import { usageReport } from '../usage/usage-report.js';
import { rateLimited, rateLimitHeaders, type LimitCounters, type LimitState } from './limits.js';
import { microFromCredits } from './pricing.js';
import {
  adminCreditBody,
  adminCreditResponse,
  ledgerPageSchema,
  planColumns,
  planCreateSchema,
  planListSchema,
  planPatchSchema,
  planSchema,
  presentEntry,
  presentPlan,
  presentWallet,
  usageQuery,
  usageReportSchema,
  walletSchema,
} from './schemas.js';
import type { BillingService } from './service.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * Counts the request against the acting user's plan (requests per minute, also per user API
     * key) and answers 429 past it; every answer carries the RateLimit-* headers. The end user is
     * the one the route's handler acts for (`config.endUserField` for one named in the body).
     */
    rateLimit?: boolean;
  }
}

export interface BillingRoutesDependencies {
  billing: BillingService;
  identity: IdentityService;
  limits: LimitCounters;
  limitsEnabled: boolean;
  db: Executor;
}

const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,200}$/;

export function registerBillingRoutes(app: AppInstance, dependencies: BillingRoutesDependencies): void {
  const { billing, identity, limits, db } = dependencies;

  if (dependencies.limitsEnabled) {
    // Runs after authentication (registered earlier by the shell) on routes that opt in.
    app.addHook('preHandler', async (request, reply) => {
      if (request.routeOptions.config.rateLimit !== true) return;
      const principal = requirePrincipal(request);
      const user = await optionalActingUser(identity, request, bodyEndUser(request));
      if (!user) return;
      const plan = await billing.planFor(user);
      const counted = [`user:${user.id}`];
      if (principal.role === 'user' && principal.apiKeyId) counted.push(`key:${principal.apiKeyId}`);
      let tightest: LimitState | undefined;
      for (const key of counted) {
        const taken = await limits.take('requests', key, 1, plan.requestsPerMinute, 60);
        if (!taken.allowed) {
          throw rateLimited(taken.state, `Too many requests: your ${plan.name} plan allows ${plan.requestsPerMinute} a minute.`, { limit_name: 'requests_per_minute' });
        }
        if (!tightest || taken.state.remaining < tightest.remaining) tightest = taken.state;
      }
      if (tightest) reply.headers(rateLimitHeaders(tightest));
    });
  }

  app.get(
    '/v1/plans',
    {
      config: { auth: 'public' },
      schema: { tags: ['billing'], summary: 'The plans on offer: credits, prices, limits and features', response: { 200: planListSchema } },
    },
    async () => ({ data: (await billing.listPlans({ publicOnly: true })).map(presentPlan) }),
  );

  app.get(
    '/v1/admin/plans',
    {
      config: { auth: 'admin' },
      schema: { tags: ['billing'], summary: 'Every plan, hidden ones too (admin)', response: { 200: planListSchema, ...problemResponses } },
    },
    async () => ({ data: (await billing.listPlans({ publicOnly: false })).map(presentPlan) }),
  );

  app.post(
    '/v1/admin/plans',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['billing'],
        summary: 'Create a plan (admin); omitted limits take the defaults of the free plan',
        body: planCreateSchema,
        response: { 201: planSchema, 409: problemSchema, ...problemResponses },
      },
    },
    async (request, reply) => {
      const { id, ...fields } = request.body;
      const plan = await billing.createPlan({ id, name: fields.name, ...planColumns(fields) });
      return reply.status(201).send(presentPlan(plan));
    },
  );

  app.patch(
    '/v1/admin/plans/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['billing'],
        summary: 'Change a plan (admin): limits apply to its users from their next request',
        params: z.object({ id: z.string().min(1).max(40) }),
        body: planPatchSchema,
        response: { 200: planSchema, ...problemResponses },
      },
    },
    async (request) => {
      const current = await billing.getPlan(request.params.id);
      return presentPlan(await billing.updatePlan(current.id, planColumns(request.body, current)));
    },
  );

  app.get(
    '/v1/wallet/balance',
    { schema: { tags: ['billing'], summary: 'Your credits: balance, today\'s daily credits, holds in flight, next refresh', response: { 200: walletSchema, ...problemResponses } } },
    async (request) => {
      const user = await requireActingUser(identity, request);
      const { wallet, plan, nextRefreshAt } = await billing.wallet(user);
      return presentWallet(wallet, plan, nextRefreshAt);
    },
  );

  app.get(
    '/v1/wallet/transactions',
    {
      schema: {
        tags: ['billing'],
        summary: 'Your credit ledger, newest first (cursor pagination)',
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(200).default(50), cursor: z.string().max(100).optional() }),
        response: { 200: ledgerPageSchema, ...problemResponses },
      },
    },
    async (request) => {
      const user = await requireActingUser(identity, request);
      const page = await billing.transactions(user.id, { limit: request.query.limit, cursor: request.query.cursor });
      return { data: page.data.map(presentEntry), next_cursor: page.nextCursor };
    },
  );

  app.post(
    '/v1/admin/users/:id/credits',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['billing'],
        summary: 'Add (positive) or take away (negative) credits, with a reason (admin); Idempotency-Key makes a retry move nothing',
        params: z.object({ id: z.string().min(1).max(200) }),
        body: adminCreditBody,
        response: { 200: adminCreditResponse, 201: adminCreditResponse, ...problemResponses },
      },
    },
    async (request, reply) => {
      const user = await identity.findUserByReference(request.params.id);
      if (!user) throw new NotFoundError('User');
      const header = request.headers['idempotency-key'];
      const key = typeof header === 'string' && IDEMPOTENCY_KEY_PATTERN.test(header) ? `${user.id}:${header}` : `${user.id}:${randomUUID()}`;
      // Today's daily credits first, so the admin acts on the balance the user sees.
      await billing.wallet(user);
      const amountMicro = microFromCredits(request.body.amount);
      const result = await billing.grant({
        userId: user.id,
        amountMicro,
        kind: amountMicro > 0 ? 'grant' : 'adjustment',
        idempotencyKey: `admin:${key}`,
        reference: `admin:${requirePrincipal(request).apiKeyId ?? requirePrincipal(request).credential}`,
        reason: request.body.reason,
      });
      return reply.status(result.duplicate ? 200 : 201).send({
        entry: presentEntry(result.entry),
        balance: result.balanceMicro / 1_000_000,
        balance_micro: result.balanceMicro,
        duplicate: result.duplicate,
      });
    },
  );

  app.get(
    '/v1/me/usage',
    {
      schema: {
        tags: ['billing'],
        summary: 'Your usage per service (requests, tokens, characters, seconds, images, credits, provider cost, who paid) and per day',
        querystring: usageQuery,
        response: { 200: usageReportSchema, ...problemResponses },
      },
    },
    async (request) => {
      const user = await requireActingUser(identity, request);
      return usageReport(db, user.id, request.query.days, billing.now());
    },
  );

  app.get(
    '/v1/admin/users/:id/usage',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['billing'],
        summary: "A user's usage per service and per day (admin)",
        params: z.object({ id: z.string().min(1).max(200) }),
        querystring: usageQuery,
        response: { 200: usageReportSchema, ...problemResponses },
      },
    },
    async (request) => {
      const user = await identity.findUserByReference(request.params.id);
      if (!user) throw new NotFoundError('User');
      return usageReport(db, user.id, request.query.days, billing.now());
    },
  );
}
