import { z } from 'zod';
import type { AppInstance } from '../../app-types.js';
import { problemResponses, problemSchema } from '../../infra/http/schemas.js';
import { requireActingUser } from '../identity/auth.js';
import type { IdentityService } from '../identity/service.js';
import type { MarketService } from './service.js';
import type { PaymentRow, ProductRow } from './tables.js';

const productSchema = z.object({
  id: z.string(),
  kind: z.enum(['credit_pack', 'subscription']),
  name: z.string(),
  description: z.string().nullable(),
  credits: z.number().int().describe('Credits of a pack, or bonus credits per period of a subscription'),
  price: z.number().describe('In the currency, e.g. 9.99'),
  price_cents: z.number().int(),
  currency: z.string(),
  interval: z.enum(['month', 'year']).nullable(),
  plan: z.string().nullable().describe('The plan a subscription grants'),
  active: z.boolean(),
});

function presentProduct(row: ProductRow): z.infer<typeof productSchema> {
  return {
    id: row.id,
    kind: row.kind,
    name: row.name,
    description: row.description,
    credits: row.credits,
    price: row.priceCents / 100,
    price_cents: row.priceCents,
    currency: row.currency,
    interval: row.interval,
    plan: row.planId,
    active: row.active,
  };
}

const paymentSchema = z.object({
  id: z.string(),
  kind: z.enum(['credit_pack', 'subscription']),
  product_id: z.string().nullable(),
  amount: z.number(),
  currency: z.string(),
  credits: z.number(),
  status: z.string(),
  refunded_amount: z.number(),
  reference: z.string().nullable().describe('The Stripe checkout session or invoice id'),
  created_at: z.string(),
});

function presentPayment(row: PaymentRow): z.infer<typeof paymentSchema> {
  return {
    id: row.id,
    kind: row.kind,
    product_id: row.productId,
    amount: row.amountCents / 100,
    currency: row.currency,
    credits: row.creditsMicro / 1_000_000,
    status: row.status,
    refunded_amount: row.refundedCents / 100,
    reference: row.invoiceId ?? row.checkoutSessionId,
    created_at: row.createdAt.toISOString(),
  };
}

const checkoutBody = z.object({
  product_id: z.string().trim().min(1).max(100).describe('A product id from GET /v1/market/products'),
  success_url: z.url().max(2000).optional().describe('Where Stripe returns the buyer (default: MARKET_SUCCESS_URL or this server)'),
  cancel_url: z.url().max(2000).optional(),
});
const checkoutAnswer = z.object({ checkout_session_id: z.string(), url: z.string().describe('Send the buyer here'), product: productSchema });
const unavailable = { 503: problemSchema.describe('The market is not configured (STRIPE_SECRET_KEY)') };

const productBody = z.object({
  id: z.string().regex(/^[a-z0-9_-]{1,60}$/, 'lower-case letters, digits, _ and -'),
  kind: z.enum(['credit_pack', 'subscription']),
  name: z.string().trim().min(1).max(200),
  description: z.string().max(2000).nullable().optional(),
  credits: z.number().int().min(0).max(100_000_000),
  price_cents: z.number().int().min(1).max(100_000_000),
  currency: z.string().regex(/^[a-z]{3}$/, 'an ISO currency code in lower case').default('usd'),
  interval: z.enum(['month', 'year']).nullable().optional(),
  plan: z.string().min(1).max(100).nullable().optional(),
  active: z.boolean().default(true),
  sort_order: z.number().int().min(0).max(1_000_000).default(0),
});

export function registerMarketRoutes(app: AppInstance, dependencies: { market: MarketService; identity: IdentityService }): void {
  const { market, identity } = dependencies;

  app.get(
    '/v1/market/products',
    {
      config: { auth: 'public' },
      schema: { tags: ['market'], summary: 'Credit packs and subscriptions on sale', response: { 200: z.object({ data: z.array(productSchema) }) } },
    },
    async () => ({ data: (await market.listProducts()).map(presentProduct) }),
  );

  for (const [path, kind, summary] of [
    ['/v1/market/buy_credits', 'credit_pack', 'Buy a credit pack: answers a Stripe Checkout URL'],
    ['/v1/market/subscribe', 'subscription', 'Subscribe to a plan: answers a Stripe Checkout URL'],
  ] as const) {
    app.post(
      path,
      {
        config: { rateLimit: true },
        schema: { tags: ['market'], summary, body: checkoutBody, response: { 200: checkoutAnswer, ...problemResponses, ...unavailable } },
      },
      async (request) => {
        const user = await requireActingUser(identity, request);
        const idempotencyKey = request.headers['idempotency-key'];
        const checkout = await market.createCheckout({
          user,
          productId: request.body.product_id,
          kind,
          successUrl: request.body.success_url,
          cancelUrl: request.body.cancel_url,
          origin: `${request.protocol}://${request.host}`,
          idempotencyKey: typeof idempotencyKey === 'string' && idempotencyKey.length <= 200 ? idempotencyKey : undefined,
        });
        return { checkout_session_id: checkout.id, url: checkout.url, product: presentProduct(checkout.product) };
      },
    );
  }

  app.get(
    '/v1/market/payments',
    {
      schema: { tags: ['market'], summary: "The acting user's payments (packs, subscription invoices, refunds)", response: { 200: z.object({ data: z.array(paymentSchema) }), ...problemResponses } },
    },
    async (request) => {
      const user = await requireActingUser(identity, request);
      return { data: (await market.listPayments(user.id)).map(presentPayment) };
    },
  );

  // Stripe signs the raw bytes: this route alone keeps the body as a Buffer.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 1_048_576 }, (_request, body, done) => done(null, body));
    scope.post(
      '/v1/webhooks/stripe',
      {
        config: { auth: 'public' },
        schema: {
          tags: ['market'],
          summary: 'Stripe webhook (signed with STRIPE_WEBHOOK_SECRET; idempotent on the event id)',
          response: { 200: z.object({ received: z.boolean(), id: z.string(), type: z.string(), outcome: z.string(), duplicate: z.boolean() }), 400: problemSchema, ...unavailable },
        },
      },
      async (request) => {
        const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const signature = request.headers['stripe-signature'];
        const result = await market.receiveWebhook(body, typeof signature === 'string' ? signature : undefined);
        return { received: true, ...result };
      },
    );
  });

  app.get(
    '/v1/admin/products',
    { config: { auth: 'admin' }, schema: { tags: ['market'], summary: 'Every product, on sale or not (admin)', response: { 200: z.object({ data: z.array(productSchema) }), ...problemResponses } } },
    async () => ({ data: (await market.listProducts(true)).map(presentProduct) }),
  );

  app.post(
    '/v1/admin/products',
    { config: { auth: 'admin' }, schema: { tags: ['market'], summary: 'Add a product (admin)', body: productBody, response: { 201: productSchema, 409: problemSchema, ...problemResponses } } },
    async (request, reply) => {
      const body = request.body;
      const row = await market.createProduct({
        id: body.id,
        kind: body.kind,
        name: body.name,
        description: body.description ?? null,
        credits: body.credits,
        priceCents: body.price_cents,
        currency: body.currency,
        interval: body.interval ?? null,
        planId: body.plan ?? null,
        active: body.active,
        sortOrder: body.sort_order,
      });
      return reply.status(201).send(presentProduct(row));
    },
  );

  app.patch(
    '/v1/admin/products/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['market'],
        summary: 'Change a product: price, credits, plan, active (admin)',
        params: z.object({ id: z.string().min(1).max(100) }),
        body: productBody.omit({ id: true, kind: true }).partial(),
        response: { 200: productSchema, ...problemResponses },
      },
    },
    async (request) => {
      const body = request.body;
      const row = await market.updateProduct(request.params.id, {
        ...(body.name !== undefined ? { name: body.name } : {}),
        ...(body.description !== undefined ? { description: body.description } : {}),
        ...(body.credits !== undefined ? { credits: body.credits } : {}),
        ...(body.price_cents !== undefined ? { priceCents: body.price_cents } : {}),
        ...(body.currency !== undefined ? { currency: body.currency } : {}),
        ...(body.interval !== undefined ? { interval: body.interval } : {}),
        ...(body.plan !== undefined ? { planId: body.plan } : {}),
        ...(body.active !== undefined ? { active: body.active } : {}),
        ...(body.sort_order !== undefined ? { sortOrder: body.sort_order } : {}),
      });
      return presentProduct(row);
    },
  );
}
