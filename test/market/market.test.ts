import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signedDelivery, startStripeFake, stripeEvent, stripeId, type StripeFake } from '../fakes/stripe.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

const WEBHOOK_SECRET = `whsec_${randomBytes(16).toString('hex')}`;

describe('the market without Stripe configured', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('embedded');
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('lists the products but answers 503 naming the variable for purchases and webhooks; the rest works', async () => {
    const products = await server.request('GET', '/v1/market/products', { key: null });
    expect(products.status).toBe(200);
    expect(products.body.data.map((product: { id: string }) => product.id)).toEqual([
      'credits_10',
      'credits_50',
      'credits_100',
      'credits_550',
      'credits_1200',
      'premium_monthly',
      'premium_yearly',
      'vip_monthly',
      'vip_yearly',
    ]);
    expect(products.body.data[1]).toMatchObject({ kind: 'credit_pack', credits: 50, price: 4.99, price_cents: 499, currency: 'usd', interval: null, plan: null });
    expect(products.body.data[7]).toMatchObject({ kind: 'subscription', credits: 1000, price: 29.99, interval: 'month', plan: 'vip' });

    const buy = await server.request('POST', '/v1/market/buy_credits', { key: server.internalKey, headers: { 'x-user-id': 'm:1' }, body: { product_id: 'credits_50' } });
    expect(buy.status).toBe(503);
    expect(buy.body).toMatchObject({ code: 'market_unavailable', variable: 'STRIPE_SECRET_KEY' });
    expect(buy.body.detail).toContain('STRIPE_SECRET_KEY');
    const hook = await server.request('POST', '/v1/webhooks/stripe', { key: null, body: '{}', headers: { 'stripe-signature': 't=1,v1=00' } });
    expect(hook.status).toBe(503);
    expect((await server.request('GET', '/v1/me', { key: server.internalKey, headers: { 'x-user-id': 'm:1' } })).status).toBe(200);
  });
});

describe.each(backends())('the market through Stripe on %s storage', (backend) => {
  let server: TestServer;
  let stripe: StripeFake;

  beforeAll(async () => {
    stripe = await startStripeFake({ validKeys: ['sk_test_anima'] });
    server = await startTestServer(backend, {
      STRIPE_SECRET_KEY: 'sk_test_anima',
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      STRIPE_API_BASE: stripe.url,
      PUBLIC_BASE_URL: 'https://anima.example',
    });
  });
  afterAll(async () => {
    await server?.stop();
    await stripe?.close();
  });

  const as = (externalId: string) => ({ key: server.internalKey, headers: { 'x-user-id': externalId } });
  const deliver = (event: unknown, options: { secret?: string; timestamp?: number } = {}) => {
    const { body, signature } = signedDelivery(event, options.secret ?? WEBHOOK_SECRET, options.timestamp);
    return server.request('POST', '/v1/webhooks/stripe', { key: null, body, headers: { 'content-type': 'application/json', 'stripe-signature': signature } });
  };
  const balance = async (externalId: string): Promise<number> => {
    const response = await server.request('GET', '/v1/wallet/balance', as(externalId));
    expect(response.status).toBe(200);
    return Number(response.body.balance);
  };
  const userId = async (externalId: string): Promise<string> => (await server.request('GET', '/v1/me', as(externalId))).body.id as string;
  const plan = async (externalId: string): Promise<string> => (await server.request('GET', '/v1/me', as(externalId))).body.plan.id as string;
  /** The session the fake created, as Stripe sends it back once the buyer paid. */
  const completed = (sessionId: string, extra: Record<string, unknown> = {}): Record<string, unknown> & { id: string } => ({
    id: sessionId,
    ...stripe.sessions.get(sessionId)!,
    status: 'complete',
    payment_status: 'paid',
    customer: 'cus_test_1',
    payment_intent: stripeId('pi'),
    ...extra,
  });

  it('creates a Checkout Session through the SDK with the user, product and amount in it', async () => {
    const response = await server.request('POST', '/v1/market/buy_credits', { ...as('m:buyer'), body: { product_id: 'credits_50' } });
    expect(response.status).toBe(200);
    expect(response.body.url).toMatch(/^https:\/\/checkout\.stripe\.com\/c\/pay\/cs_test_/);
    const sent = stripe.lastRequest('/v1/checkout/sessions')!;
    expect(sent.headers['stripe-version']).toBeDefined();
    const session = stripe.sessions.get(response.body.checkout_session_id)!;
    const id = await userId('m:buyer');
    expect(session).toMatchObject({ mode: 'payment', client_reference_id: id, amount_total: 499, metadata: { user_id: id, product_id: 'credits_50', credits: '50' } });
    expect(session.success_url).toBe('https://anima.example/?checkout=success&session_id={CHECKOUT_SESSION_ID}');

    const wrongKind = await server.request('POST', '/v1/market/buy_credits', { ...as('m:buyer'), body: { product_id: 'vip_monthly' } });
    expect(wrongKind.status).toBe(422);
    expect(wrongKind.body.detail).toContain('/v1/market/subscribe');
    const unknown = await server.request('POST', '/v1/market/subscribe', { ...as('m:buyer'), body: { product_id: 'nope' } });
    expect(unknown.status).toBe(422);
    expect(unknown.body.field).toBe('product_id');
  });

  it('credits a paid pack exactly once, even when the event arrives three times at once and again under another id', async () => {
    const before = await balance('m:pack');
    const checkout = await server.request('POST', '/v1/market/buy_credits', { ...as('m:pack'), body: { product_id: 'credits_100' } });
    const session = completed(checkout.body.checkout_session_id);
    const event = stripeEvent('checkout.session.completed', session);
    const deliveries = await Promise.all([deliver(event), deliver(event), deliver(event)]);
    expect(deliveries.map((delivery) => delivery.status)).toEqual([200, 200, 200]);
    expect(deliveries.filter((delivery) => delivery.body.duplicate === false)).toHaveLength(1);
    expect(await balance('m:pack')).toBe(before + 100);

    // The same payment under another event (async success) credits nothing again.
    const again = await deliver(stripeEvent('checkout.session.async_payment_succeeded', session));
    expect(again.status).toBe(200);
    expect(await balance('m:pack')).toBe(before + 100);

    const transactions = await server.request('GET', '/v1/wallet/transactions', as('m:pack'));
    const purchases = transactions.body.data.filter((entry: { kind: string }) => entry.kind === 'purchase');
    expect(purchases).toHaveLength(1);
    expect(purchases[0]).toMatchObject({ amount: 100, reference: `stripe:${session.id}` });
    const payments = await server.request('GET', '/v1/market/payments', as('m:pack'));
    expect(payments.body.data).toEqual([expect.objectContaining({ kind: 'credit_pack', product_id: 'credits_100', amount: 8.99, credits: 100, status: 'paid', reference: session.id })]);
  });

  it('waits for payment when the session completes unpaid', async () => {
    const before = await balance('m:async');
    const checkout = await server.request('POST', '/v1/market/buy_credits', { ...as('m:async'), body: { product_id: 'credits_10' } });
    const unpaid = await deliver(stripeEvent('checkout.session.completed', completed(checkout.body.checkout_session_id, { payment_status: 'unpaid' })));
    expect(unpaid.body.outcome).toBe('awaiting payment');
    expect(await balance('m:async')).toBe(before);
    await deliver(stripeEvent('checkout.session.async_payment_succeeded', completed(checkout.body.checkout_session_id)));
    expect(await balance('m:async')).toBe(before + 10);
  });

  it('refuses a forged or stale signature and changes nothing', async () => {
    const before = await balance('m:forger');
    const checkout = await server.request('POST', '/v1/market/buy_credits', { ...as('m:forger'), body: { product_id: 'credits_1200' } });
    const event = stripeEvent('checkout.session.completed', completed(checkout.body.checkout_session_id));
    const forged = await deliver(event, { secret: 'whsec_not_the_secret' });
    expect(forged.status).toBe(400);
    expect(forged.headers.get('content-type')).toContain('application/problem+json');
    expect(forged.body.code).toBe('invalid_signature');
    const stale = await deliver(event, { timestamp: Math.floor(Date.now() / 1000) - 3600 });
    expect(stale.status).toBe(400);
    expect(stale.body.detail).toContain('tolerance');
    const tampered = signedDelivery(event, WEBHOOK_SECRET);
    const changed = await server.request('POST', '/v1/webhooks/stripe', {
      key: null,
      body: tampered.body.replace('"credits":"1200"', '"credits":"9999"'),
      headers: { 'content-type': 'application/json', 'stripe-signature': tampered.signature },
    });
    expect(changed.status).toBe(400);
    const missing = await server.request('POST', '/v1/webhooks/stripe', { key: null, body: JSON.stringify(event), headers: { 'content-type': 'application/json' } });
    expect(missing.status).toBe(400);
    expect(await balance('m:forger')).toBe(before);
    // The event was not recorded as handled: the genuine delivery still works.
    expect((await deliver(event)).body.duplicate).toBe(false);
    expect(await balance('m:forger')).toBe(before + 1200);
  });

  it('sets the plan on subscribing, renews it with bonus credits each period, and returns to free when cancelled', async () => {
    const before = await balance('m:subscriber');
    const checkout = await server.request('POST', '/v1/market/subscribe', { ...as('m:subscriber'), body: { product_id: 'premium_monthly' } });
    expect(checkout.status).toBe(200);
    const session = stripe.sessions.get(checkout.body.checkout_session_id)!;
    expect(session).toMatchObject({ mode: 'subscription', amount_total: 999, subscription_data: { metadata: { product_id: 'premium_monthly', plan: 'premium' } } });
    const subscriptionId = stripeId('sub');
    const metadata = session.metadata as Record<string, string>;
    await deliver(stripeEvent('checkout.session.completed', completed(session.id as string, { subscription: subscriptionId, payment_intent: null })));
    expect(await plan('m:subscriber')).toBe('premium');

    const invoice = (id: string, periodEnd: number, billingReason: string) => ({
      id,
      object: 'invoice',
      customer: 'cus_test_1',
      status: 'paid',
      amount_paid: 999,
      currency: 'usd',
      billing_reason: billingReason,
      period_start: periodEnd - 30 * 86_400,
      period_end: periodEnd,
      lines: { object: 'list', data: [{ period: { start: periodEnd - 30 * 86_400, end: periodEnd } }] },
      parent: { type: 'subscription_details', subscription_details: { subscription: subscriptionId, metadata } },
    });
    const firstPeriodEnd = Math.floor(Date.now() / 1000) + 30 * 86_400;
    const firstInvoice = stripeEvent('invoice.paid', invoice(stripeId('in'), firstPeriodEnd, 'subscription_create'));
    await Promise.all([deliver(firstInvoice), deliver(firstInvoice)]);
    expect(await balance('m:subscriber')).toBe(before + 200);
    await deliver(stripeEvent('invoice.paid', invoice(stripeId('in'), firstPeriodEnd + 30 * 86_400, 'subscription_cycle')));
    expect(await balance('m:subscriber')).toBe(before + 400);
    expect(await plan('m:subscriber')).toBe('premium');

    const subscription = (status: string, cancelAtPeriodEnd: boolean) => ({
      id: subscriptionId,
      object: 'subscription',
      customer: 'cus_test_1',
      status,
      cancel_at_period_end: cancelAtPeriodEnd,
      metadata,
      items: { object: 'list', data: [{ current_period_end: firstPeriodEnd + 30 * 86_400 }] },
    });
    const cancelling = await deliver(stripeEvent('customer.subscription.updated', subscription('active', true), { previousAttributes: { cancel_at_period_end: false } }));
    expect(cancelling.body.outcome).toContain('until the period ends');
    expect(await plan('m:subscriber')).toBe('premium');
    await deliver(stripeEvent('customer.subscription.deleted', subscription('canceled', true)));
    expect(await plan('m:subscriber')).toBe('free');
    // The bonus credits already granted stay.
    expect(await balance('m:subscriber')).toBe(before + 400);
  });

  it('takes refunded credits back down to zero, never below, and records what was already spent', async () => {
    const checkout = await server.request('POST', '/v1/market/buy_credits', { ...as('m:refund'), body: { product_id: 'credits_550' } });
    const paymentIntent = stripeId('pi');
    await deliver(stripeEvent('checkout.session.completed', completed(checkout.body.checkout_session_id, { payment_intent: paymentIntent })));
    const afterPurchase = await balance('m:refund');
    const id = await userId('m:refund');
    // The user spends all but 100 credits of what they hold (an admin adjustment stands in for spending).
    const spend = await server.request('POST', `/v1/admin/users/${id}/credits`, { body: { amount: -(afterPurchase - 100), reason: 'spent in test' } });
    expect(spend.status).toBeLessThan(300);
    expect(await balance('m:refund')).toBe(100);

    const charge = (amountRefunded: number) => ({ id: 'ch_test_1', object: 'charge', amount: 3999, amount_refunded: amountRefunded, currency: 'usd', payment_intent: paymentIntent, refunded: amountRefunded === 3999 });
    // Half refunded: 275 credits are due, 100 can be taken.
    await deliver(stripeEvent('charge.refunded', charge(2000)));
    expect(await balance('m:refund')).toBe(0);
    // The rest refunded later: nothing more to take, more recorded as unrecovered; never negative.
    await deliver(stripeEvent('charge.refunded', charge(3999)));
    expect(await balance('m:refund')).toBe(0);
    const payments = await server.request('GET', '/v1/market/payments', as('m:refund'));
    expect(payments.body.data[0]).toMatchObject({ status: 'refunded', refunded_amount: 39.99, credits: 550 });
    const transactions = await server.request('GET', '/v1/wallet/transactions', as('m:refund'));
    expect(transactions.body.data.filter((entry: { kind: string }) => entry.kind === 'refund').length).toBeGreaterThanOrEqual(1);
  });

  it('takes back the credits of a disputed payment, once however often the dispute is delivered', async () => {
    const checkout = await server.request('POST', '/v1/market/buy_credits', { ...as('m:dispute'), body: { product_id: 'credits_50' } });
    const paymentIntent = stripeId('pi');
    const before = await balance('m:dispute');
    await deliver(stripeEvent('checkout.session.completed', completed(checkout.body.checkout_session_id, { payment_intent: paymentIntent })));
    expect(await balance('m:dispute')).toBe(before + 50);
    const dispute = { id: stripeId('dp'), object: 'dispute', amount: 499, currency: 'usd', payment_intent: paymentIntent, status: 'needs_response' };
    await deliver(stripeEvent('charge.dispute.created', dispute));
    await deliver(stripeEvent('charge.dispute.created', dispute));
    expect(await balance('m:dispute')).toBe(before);
    const payments = await server.request('GET', '/v1/market/payments', as('m:dispute'));
    expect(payments.body.data[0]).toMatchObject({ status: 'refunded', credits: 50 });
  });

  it('lets an admin manage products as data', async () => {
    const created = await server.request('POST', '/v1/admin/products', { body: { id: 'credits_5', kind: 'credit_pack', name: '5 credits', credits: 5, price_cents: 59 } });
    expect(created.status).toBe(201);
    const badPlan = await server.request('POST', '/v1/admin/products', { body: { id: 'gold', kind: 'subscription', name: 'Gold', credits: 5, price_cents: 500, interval: 'month', plan: 'no-such-plan' } });
    expect(badPlan.status).toBe(422);
    expect(badPlan.body.field).toBe('plan');
    const noInterval = await server.request('POST', '/v1/admin/products', { body: { id: 'gold2', kind: 'subscription', name: 'Gold', credits: 5, price_cents: 500, plan: 'vip' } });
    expect(noInterval.status).toBe(422);
    const duplicate = await server.request('POST', '/v1/admin/products', { body: { id: 'credits_5', kind: 'credit_pack', name: 'again', credits: 5, price_cents: 59 } });
    expect(duplicate.status).toBe(409);
    const negative = await server.request('POST', '/v1/admin/products', { body: { id: 'neg', kind: 'credit_pack', name: 'neg', credits: -5, price_cents: 59 } });
    expect(negative.status).toBe(422);
    const byUser = await server.request('POST', '/v1/admin/products', { ...as('m:nobody'), body: { id: 'x', kind: 'credit_pack', name: 'x', credits: 1, price_cents: 1 } });
    expect(byUser.status).toBe(403);

    const hidden = await server.request('PATCH', '/v1/admin/products/credits_5', { body: { active: false, price_cents: 49 } });
    expect(hidden.body).toMatchObject({ active: false, price_cents: 49 });
    const listed = await server.request('GET', '/v1/market/products', { key: null });
    expect(listed.body.data.some((product: { id: string }) => product.id === 'credits_5')).toBe(false);
    const buyHidden = await server.request('POST', '/v1/market/buy_credits', { ...as('m:buyer'), body: { product_id: 'credits_5' } });
    expect(buyHidden.status).toBe(422);
  });

  it('reports a Stripe failure as a clear 502 and charges nothing', async () => {
    stripe.faults.failNext(3, 500, { route: '/v1/checkout/sessions' });
    const response = await server.request('POST', '/v1/market/buy_credits', { ...as('m:unlucky'), body: { product_id: 'credits_10' } });
    expect(response.status).toBe(502);
    expect(response.body).toMatchObject({ code: 'upstream_error', provider: 'stripe' });
    stripe.faults.clear();
  });
});
