/**
 * Stripe fake (provider-apis §9): `POST /v1/checkout/sessions` with a form-encoded body (brackets
 * for nesting, indexed arrays), `GET /v1/checkout/sessions/{id}`, `GET /v1/balance` (key check),
 * Stripe's error envelope, `request-id` on every answer, and idempotency keys (the first answer is
 * replayed; the same key with other parameters is a 400 idempotency_error). Its root stands for
 * `https://api.stripe.com`; point stripe-node at it with `STRIPE_API_BASE`.
 *
 * It also builds webhook events in Stripe's envelope, signed with the SDK's own
 * `webhooks.generateTestHeaderString`, for tests to deliver to Anima.
 */
import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import { bearerToken, headerValue, startFakeServer, type FakeServer } from './fake-server.js';

export const STRIPE_API_VERSION = '2026-07-29.dahlia';

export interface StripeFake extends FakeServer {
  validKeys: string[];
  /** Checkout Sessions created, by id. */
  sessions: Map<string, Record<string, unknown>>;
}

/** Parses `a[b][0][c]=1&…` into nested objects and arrays, as Stripe's API does. */
export function parseStripeForm(body: string): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [rawKey, value] of new URLSearchParams(body)) {
    const path = rawKey.split(/\[|\]\[|\]/).filter((part) => part !== '');
    let node: Record<string, unknown> = root;
    path.forEach((part, index) => {
      if (index === path.length - 1) {
        node[part] = value;
        return;
      }
      node[part] ??= {};
      node = node[part] as Record<string, unknown>;
    });
  }
  return arraysFromIndexes(root) as Record<string, unknown>;
}

function arraysFromIndexes(node: unknown): unknown {
  if (node === null || typeof node !== 'object') return node;
  const entries = Object.entries(node as Record<string, unknown>);
  if (entries.length > 0 && entries.every(([key]) => /^\d+$/.test(key))) {
    return entries.sort(([a], [b]) => Number(a) - Number(b)).map(([, value]) => arraysFromIndexes(value));
  }
  return Object.fromEntries(entries.map(([key, value]) => [key, arraysFromIndexes(value)]));
}

function stripeId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('base64url').replace(/[-_]/g, 'x')}`;
}

function stripeError(status: number, message: string, type = 'invalid_request_error', param?: string): unknown {
  return { error: { type, message, ...(param ? { param } : {}), doc_url: 'https://stripe.com/docs/error-codes' } };
}

export async function startStripeFake(options: { validKeys?: string[] } = {}): Promise<StripeFake> {
  const validKeys = options.validKeys ?? ['sk_test_anima'];
  const sessions = new Map<string, Record<string, unknown>>();
  const idempotent = new Map<string, { parameters: string; status: number; body: unknown }>();
  const server = await startFakeServer(
    async (context) => {
      const requestId = `req_${randomBytes(8).toString('hex')}`;
      const headers = { 'request-id': requestId, 'stripe-version': STRIPE_API_VERSION };
      const key = bearerToken(context.request.headers);
      if (key === undefined || !validKeys.includes(key)) {
        await context.json(401, stripeError(401, `Invalid API Key provided: ${key ? `${key.slice(0, 8)}****${key.slice(-4)}` : ''}`), headers);
        return;
      }
      const { method, path } = context.request;
      const form = method === 'POST' ? parseStripeForm(context.request.rawBody.toString('utf8')) : {};
      const idempotencyKey = method === 'POST' ? headerValue(context.request.headers, 'idempotency-key') : undefined;
      if (idempotencyKey) {
        const previous = idempotent.get(idempotencyKey);
        const parameters = JSON.stringify(form);
        if (previous) {
          if (previous.parameters !== parameters) {
            await context.json(400, stripeError(400, `Keys for idempotent requests can only be used with the same parameters they were first used with.`, 'idempotency_error'), headers);
            return;
          }
          await context.json(previous.status, previous.body, { ...headers, 'idempotent-replayed': 'true' });
          return;
        }
      }
      const answer = async (status: number, body: unknown): Promise<void> => {
        if (idempotencyKey) idempotent.set(idempotencyKey, { parameters: JSON.stringify(form), status, body });
        await context.json(status, body, headers);
      };

      if (method === 'POST' && path === '/v1/checkout/sessions') {
        const mode = form.mode;
        if (mode !== 'payment' && mode !== 'subscription') return answer(400, stripeError(400, 'Invalid mode: must be one of payment, setup, or subscription', 'invalid_request_error', 'mode'));
        if (typeof form.success_url !== 'string') return answer(400, stripeError(400, 'Missing required param: success_url.', 'invalid_request_error', 'success_url'));
        const lineItems = Array.isArray(form.line_items) ? (form.line_items as Record<string, unknown>[]) : [];
        if (lineItems.length === 0) return answer(400, stripeError(400, 'Missing required param: line_items.', 'invalid_request_error', 'line_items'));
        let amountTotal = 0;
        let currency = 'usd';
        for (const [index, item] of lineItems.entries()) {
          const priceData = item.price_data as Record<string, unknown> | undefined;
          const unitAmount = Number(priceData?.unit_amount);
          if (!priceData || !Number.isInteger(unitAmount) || unitAmount < 0) {
            return answer(400, stripeError(400, 'Invalid integer: unit_amount', 'invalid_request_error', `line_items[${index}][price_data][unit_amount]`));
          }
          if (mode === 'subscription' && !(priceData.recurring as Record<string, unknown> | undefined)?.interval) {
            return answer(400, stripeError(400, 'You must provide at least one recurring price in `subscription` mode when using prices.', 'invalid_request_error', 'line_items'));
          }
          currency = typeof priceData.currency === 'string' ? priceData.currency : 'usd';
          amountTotal += unitAmount * Number(item.quantity ?? 1);
        }
        const id = `cs_test_${randomBytes(16).toString('hex')}`;
        const session: Record<string, unknown> = {
          id,
          object: 'checkout.session',
          mode,
          status: 'open',
          payment_status: 'unpaid',
          url: `https://checkout.stripe.com/c/pay/${id}`,
          client_reference_id: form.client_reference_id ?? null,
          metadata: form.metadata ?? {},
          amount_total: amountTotal,
          currency,
          customer: null,
          customer_email: form.customer_email ?? null,
          subscription: null,
          invoice: null,
          payment_intent: null,
          success_url: form.success_url,
          cancel_url: form.cancel_url ?? null,
          subscription_data: form.subscription_data ?? null,
          line_items_requested: lineItems,
          expires_at: Math.floor(Date.now() / 1000) + 86_400,
          created: Math.floor(Date.now() / 1000),
          livemode: false,
        };
        sessions.set(id, session);
        return answer(200, session);
      }
      const sessionPath = /^\/v1\/checkout\/sessions\/([^/]+)$/.exec(path);
      if (method === 'GET' && sessionPath) {
        const session = sessions.get(sessionPath[1]!);
        if (!session) return answer(404, stripeError(404, `No such checkout.session: '${sessionPath[1]}'`, 'invalid_request_error', 'id'));
        return answer(200, session);
      }
      if (method === 'GET' && path === '/v1/balance') {
        return answer(200, { object: 'balance', available: [{ amount: 0, currency: 'usd' }], pending: [], livemode: false });
      }
      return answer(404, stripeError(404, `Unrecognized request URL (${method}: ${path}).`));
    },
    { errorBody: (status) => stripeError(status, status === 429 ? 'Too many requests' : 'An error occurred with our connection to Stripe.', status === 429 ? 'rate_limit_error' : 'api_error') },
  );
  return Object.assign(server, { validKeys, sessions });
}

/** A webhook event in Stripe's envelope. */
export function stripeEvent(type: string, object: Record<string, unknown>, options: { id?: string; previousAttributes?: Record<string, unknown>; created?: number } = {}): Record<string, unknown> {
  return {
    id: options.id ?? stripeId('evt'),
    object: 'event',
    api_version: STRIPE_API_VERSION,
    created: options.created ?? Math.floor(Date.now() / 1000),
    type,
    livemode: false,
    pending_webhooks: 1,
    request: { id: `req_${randomBytes(6).toString('hex')}`, idempotency_key: null },
    data: { object, ...(options.previousAttributes ? { previous_attributes: options.previousAttributes } : {}) },
  };
}

/** The raw body and a `Stripe-Signature` header made by the SDK's own test helper. */
export function signedDelivery(event: unknown, secret: string, timestamp?: number): { body: string; signature: string } {
  const body = JSON.stringify(event);
  const stripe = new Stripe('sk_test_signing_only');
  const signature = stripe.webhooks.generateTestHeaderString({ payload: body, secret, ...(timestamp !== undefined ? { timestamp } : {}) });
  return { body, signature };
}

export { stripeId };
