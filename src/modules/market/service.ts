import type { Logger } from 'pino';
import Stripe from 'stripe';
import type { Config } from '../../config.js';
import type { Database, Executor } from '../../infra/db/database.js';
import { AppError, BadRequestError, NotFoundError, UpstreamError, ValidationError } from '../../infra/http/errors.js';
import type { UserRow } from '../identity/store.js';
import * as store from './store.js';
import type { PaymentRow, ProductRow } from './tables.js';
import type { MarketPlans, MarketWallet } from './wallet-port.js';

export const MICRO_PER_CREDIT = 1_000_000;
/** Statuses in which a subscription still grants its plan. */
const LIVE_STATUSES = new Set(['active', 'trialing', 'past_due']);

export class MarketUnavailableError extends AppError {
  constructor(variable: string) {
    super(503, 'market_unavailable', `The market is not configured on this server: set ${variable}.`, { extra: { variable } });
  }
}

export interface MarketServiceDependencies {
  config: Readonly<Config>;
  db: Database;
  logger: Logger;
  stripe: Stripe | undefined;
  wallet: MarketWallet;
  plans: MarketPlans;
}

export interface CheckoutRequest {
  user: UserRow;
  productId: string;
  kind: ProductRow['kind'];
  successUrl: string | undefined;
  cancelUrl: string | undefined;
  /** The request's own origin, for default return URLs when PUBLIC_BASE_URL is not set. */
  origin: string;
  idempotencyKey: string | undefined;
}

type EventOutcome = string;

/**
 * The market: products as data, Stripe Checkout for packs and subscriptions, and the webhook that
 * turns Stripe's events into ledger entries and plans — once per event id, once per payment.
 */
export class MarketService {
  constructor(private readonly dependencies: MarketServiceDependencies) {}

  get configured(): boolean {
    return this.dependencies.stripe !== undefined;
  }

  listProducts(includeInactive = false): Promise<ProductRow[]> {
    return store.listProducts(this.dependencies.db, { includeInactive });
  }

  async createProduct(values: Omit<Parameters<typeof store.insertProduct>[1], 'createdAt' | 'updatedAt'>): Promise<ProductRow> {
    await this.checkProductShape(values.kind, values.interval ?? null, values.planId ?? null);
    const row = await store.insertProduct(this.dependencies.db, values);
    if (!row) throw new AppError(409, 'conflict', `A product with id "${values.id}" already exists.`);
    return row;
  }

  async updateProduct(id: string, changes: Partial<Omit<ProductRow, 'id' | 'kind' | 'createdAt' | 'updatedAt'>>): Promise<ProductRow> {
    const existing = await store.findProduct(this.dependencies.db, id);
    if (!existing) throw new NotFoundError('Product');
    await this.checkProductShape(existing.kind, changes.interval === undefined ? existing.interval : changes.interval, changes.planId === undefined ? existing.planId : changes.planId);
    return (await store.updateProduct(this.dependencies.db, id, changes))!;
  }

  private async checkProductShape(kind: ProductRow['kind'], interval: string | null, planId: string | null): Promise<void> {
    if (kind === 'subscription' && (!interval || !planId)) throw new ValidationError(interval ? 'plan' : 'interval', 'A subscription needs an interval and the plan it grants.');
    if (kind === 'credit_pack' && (interval || planId)) throw new ValidationError(interval ? 'interval' : 'plan', 'A credit pack has no interval or plan.');
    if (planId && !(await this.dependencies.plans.exists(planId))) throw new ValidationError('plan', `There is no plan "${planId}".`);
  }

  /** Creates a Stripe Checkout Session for a product of the right kind and answers its URL. */
  async createCheckout(request: CheckoutRequest): Promise<{ id: string; url: string; product: ProductRow }> {
    const { stripe, config, db, logger } = this.dependencies;
    if (!stripe) throw new MarketUnavailableError('STRIPE_SECRET_KEY');
    const product = await store.findProduct(db, request.productId);
    if (!product || !product.active) throw new ValidationError('product_id', `There is no product "${request.productId}" on sale.`);
    if (product.kind !== request.kind) {
      throw new ValidationError('product_id', request.kind === 'credit_pack' ? `"${product.id}" is a subscription: use POST /v1/market/subscribe.` : `"${product.id}" is a credit pack: use POST /v1/market/buy_credits.`);
    }
    const base = (config.publicBaseUrl ?? request.origin).replace(/\/+$/, '');
    const successUrl = request.successUrl ?? config.stripe.successUrl ?? `${base}/?checkout=success&session_id={CHECKOUT_SESSION_ID}`;
    const cancelUrl = request.cancelUrl ?? config.stripe.cancelUrl ?? `${base}/?checkout=cancel`;
    const metadata: Record<string, string> = {
      user_id: request.user.id,
      product_id: product.id,
      kind: product.kind,
      credits: String(product.credits),
      ...(product.planId ? { plan: product.planId } : {}),
    };
    const parameters: Stripe.Checkout.SessionCreateParams = {
      mode: product.kind === 'subscription' ? 'subscription' : 'payment',
      client_reference_id: request.user.id,
      success_url: successUrl,
      cancel_url: cancelUrl,
      metadata,
      line_items: [
        {
          quantity: 1,
          price_data: {
            currency: product.currency,
            unit_amount: product.priceCents,
            product_data: { name: product.name, ...(product.description ? { description: product.description } : {}) },
            ...(product.kind === 'subscription' ? { recurring: { interval: product.interval! } } : {}),
          },
        },
      ],
      ...(product.kind === 'subscription' ? { subscription_data: { metadata } } : {}),
    };
    try {
      const session = await stripe.checkout.sessions.create(parameters, request.idempotencyKey ? { idempotencyKey: `anima:${request.user.id}:${request.idempotencyKey}` } : undefined);
      if (!session.url) throw new UpstreamError('stripe', 'Stripe created a checkout session without a URL.');
      return { id: session.id, url: session.url, product };
    } catch (error) {
      if (error instanceof AppError) throw error;
      if (error instanceof Stripe.errors.StripeIdempotencyError) throw new AppError(409, 'conflict', 'This Idempotency-Key was used for another purchase.');
      logger.error({ err: error instanceof Stripe.errors.StripeError ? { type: error.type, message: error.message, status: error.statusCode } : error }, 'stripe checkout failed');
      if (error instanceof Stripe.errors.StripeAuthenticationError) throw new UpstreamError('stripe', 'The market could not reach Stripe with its key; the operator has been told.');
      throw new UpstreamError('stripe', 'Stripe did not create the checkout session; nothing was charged. Try again.');
    }
  }

  /** Verifies the signature on the raw body, then handles the event once. */
  async receiveWebhook(rawBody: Buffer, signature: string | undefined): Promise<{ id: string; type: string; outcome: EventOutcome; duplicate: boolean }> {
    const { stripe, config } = this.dependencies;
    if (!stripe) throw new MarketUnavailableError('STRIPE_SECRET_KEY');
    if (!config.stripe.webhookSecret) throw new MarketUnavailableError('STRIPE_WEBHOOK_SECRET');
    if (!signature) throw new BadRequestError('No Stripe-Signature header.', 'invalid_signature');
    let event: Stripe.Event;
    try {
      event = stripe.webhooks.constructEvent(rawBody, signature, config.stripe.webhookSecret);
    } catch (error) {
      const message = error instanceof Error ? error.message.split('\n')[0]! : 'invalid signature';
      throw new BadRequestError(`The Stripe signature does not verify: ${message}`, 'invalid_signature');
    }
    return this.handleEvent(event);
  }

  /** One transaction per event: the event id is claimed and its effects written together, so a race or a redelivery does nothing twice. */
  async handleEvent(event: Stripe.Event): Promise<{ id: string; type: string; outcome: EventOutcome; duplicate: boolean }> {
    const { db, logger } = this.dependencies;
    return db.transaction(async (transaction) => {
      if (!(await store.claimEvent(transaction, event.id, event.type))) return { id: event.id, type: event.type, outcome: 'duplicate', duplicate: true };
      const outcome = await this.dispatch(transaction, event);
      await store.recordEventOutcome(transaction, event.id, outcome);
      logger.info({ eventId: event.id, type: event.type, outcome }, 'stripe event handled');
      return { id: event.id, type: event.type, outcome, duplicate: false };
    });
  }

  private async dispatch(tx: Executor, event: Stripe.Event): Promise<EventOutcome> {
    // Stripe has hundreds of event types; the market handles these few and ignores the rest.
    // eslint-disable-next-line @typescript-eslint/switch-exhaustiveness-check
    switch (event.type) {
      case 'checkout.session.completed':
      case 'checkout.session.async_payment_succeeded':
        return this.checkoutCompleted(tx, event.data.object);
      case 'invoice.paid':
        return this.invoicePaid(tx, event.data.object);
      case 'customer.subscription.created':
      case 'customer.subscription.updated':
      case 'customer.subscription.deleted':
        return this.subscriptionChanged(tx, event.data.object);
      case 'charge.refunded':
        return this.chargeRefunded(tx, event.data.object);
      case 'charge.dispute.created':
        return this.disputeCreated(tx, event.data.object);
      default:
        return 'ignored: not an event the market handles';
    }
  }

  private async checkoutCompleted(tx: Executor, session: Stripe.Checkout.Session): Promise<EventOutcome> {
    const userId = session.metadata?.user_id ?? session.client_reference_id ?? undefined;
    if (!userId) return 'ignored: no user on the session';
    const productId = session.metadata?.product_id;
    if (session.mode === 'subscription') {
      const subscriptionId = idOf(session.subscription);
      const product = productId ? await store.findProduct(tx, productId) : undefined;
      if (!subscriptionId || !product?.planId) return 'ignored: subscription session without a subscription or a known product';
      await store.upsertSubscription(tx, {
        id: subscriptionId,
        userId,
        customerId: idOf(session.customer),
        productId: product.id,
        planId: product.planId,
        status: 'active',
      });
      await this.dependencies.plans.setPlan(userId, product.planId, tx);
      return `subscribed: ${product.planId}`;
    }
    if (session.payment_status !== 'paid') return 'awaiting payment';
    const credits = Number(session.metadata?.credits);
    if (!Number.isInteger(credits) || credits <= 0) return 'ignored: no credits on the session';
    const amountMicro = credits * MICRO_PER_CREDIT;
    const payment = await store.insertPayment(tx, {
      userId,
      kind: 'credit_pack',
      productId: productId ?? null,
      checkoutSessionId: session.id,
      paymentIntentId: idOf(session.payment_intent),
      customerId: idOf(session.customer),
      amountCents: session.amount_total ?? 0,
      currency: session.currency ?? 'usd',
      creditsMicro: amountMicro,
      status: 'paid',
    });
    if (!payment) return 'duplicate payment: already credited';
    await this.dependencies.wallet.credit(
      { userId, amountMicro, idempotencyKey: `stripe:checkout:${session.id}`, reference: `stripe:${session.id}`, reason: `Purchase of ${credits} credits (${productId ?? 'pack'})` },
      tx,
    );
    return `credited ${credits}`;
  }

  private async invoicePaid(tx: Executor, invoice: Stripe.Invoice): Promise<EventOutcome> {
    const details = invoiceSubscription(invoice);
    if (!details.subscriptionId) return 'ignored: not a subscription invoice';
    const known = await store.findSubscription(tx, details.subscriptionId);
    const userId = details.metadata.user_id ?? known?.userId;
    const productId = details.metadata.product_id ?? known?.productId ?? undefined;
    const product = productId ? await store.findProduct(tx, productId) : undefined;
    if (!userId || !product?.planId) return 'ignored: subscription of an unknown user or product';
    const credits = Number(details.metadata.credits ?? product.credits);
    const amountMicro = Number.isInteger(credits) && credits > 0 ? credits * MICRO_PER_CREDIT : 0;
    const payment = await store.insertPayment(tx, {
      userId,
      kind: 'subscription',
      productId: product.id,
      invoiceId: invoice.id,
      subscriptionId: details.subscriptionId,
      paymentIntentId: invoicePaymentIntent(invoice),
      customerId: idOf(invoice.customer),
      amountCents: invoice.amount_paid,
      currency: invoice.currency,
      creditsMicro: amountMicro,
      status: 'paid',
    });
    if (!payment) return 'duplicate invoice: already handled';
    const periodEnd = invoice.lines?.data?.[0]?.period?.end ?? invoice.period_end;
    await store.upsertSubscription(tx, {
      id: details.subscriptionId,
      userId,
      customerId: idOf(invoice.customer),
      productId: product.id,
      planId: product.planId,
      status: 'active',
      currentPeriodEnd: periodEnd ? new Date(periodEnd * 1000) : null,
    });
    await this.dependencies.plans.setPlan(userId, product.planId, tx);
    if (amountMicro > 0) {
      await this.dependencies.wallet.credit(
        { userId, amountMicro, idempotencyKey: `stripe:invoice:${invoice.id}`, reference: `stripe:${invoice.id}`, reason: `${product.name}: ${credits} bonus credits for the period` },
        tx,
      );
    }
    return `renewed ${product.planId}${amountMicro > 0 ? `, credited ${credits}` : ''}`;
  }

  private async subscriptionChanged(tx: Executor, subscription: Stripe.Subscription): Promise<EventOutcome> {
    const known = await store.findSubscription(tx, subscription.id);
    const userId = subscription.metadata?.user_id ?? known?.userId;
    const productId = subscription.metadata?.product_id ?? known?.productId ?? undefined;
    const product = productId ? await store.findProduct(tx, productId) : undefined;
    const planId = product?.planId ?? known?.planId;
    if (!userId || !planId) return 'ignored: subscription of an unknown user or product';
    const periodEnd = subscription.items?.data?.[0]?.current_period_end;
    await store.upsertSubscription(tx, {
      id: subscription.id,
      userId,
      customerId: idOf(subscription.customer),
      productId: productId ?? null,
      planId,
      status: subscription.status,
      cancelAtPeriodEnd: subscription.cancel_at_period_end ?? false,
      currentPeriodEnd: periodEnd ? new Date(periodEnd * 1000) : (known?.currentPeriodEnd ?? null),
    });
    if (LIVE_STATUSES.has(subscription.status)) {
      await this.dependencies.plans.setPlan(userId, planId, tx);
      return subscription.cancel_at_period_end ? `${planId} until the period ends, then cancelled` : `plan ${planId}`;
    }
    // Stripe ends a subscription cancelled "at period end" when that period is over: the plan goes back then.
    const other = await store.otherLiveSubscription(tx, userId, subscription.id);
    const next = other?.planId ?? this.dependencies.plans.defaultPlanId;
    await this.dependencies.plans.setPlan(userId, next, tx);
    return `ended (${subscription.status}): plan ${next}`;
  }

  private async chargeRefunded(tx: Executor, charge: Stripe.Charge): Promise<EventOutcome> {
    const paymentIntentId = idOf(charge.payment_intent);
    if (!paymentIntentId) return 'ignored: charge without a payment intent';
    const payment = await store.findPaymentByPaymentIntent(tx, paymentIntentId);
    if (!payment) return 'ignored: no payment of ours';
    const refundedCents = Math.min(charge.amount_refunded, charge.amount);
    return this.revokeFor(tx, payment, refundedCents, charge.amount, `stripe:refund:${charge.id}:${refundedCents}`, `Refund of ${formatMoney(refundedCents, charge.currency)}`);
  }

  private async disputeCreated(tx: Executor, dispute: Stripe.Dispute): Promise<EventOutcome> {
    const paymentIntentId = idOf(dispute.payment_intent);
    if (!paymentIntentId) return 'ignored: dispute without a payment intent';
    const payment = await store.findPaymentByPaymentIntent(tx, paymentIntentId);
    if (!payment) return 'ignored: no payment of ours';
    const disputedCents = Math.max(payment.refundedCents, Math.min(dispute.amount, payment.amountCents));
    return this.revokeFor(tx, payment, disputedCents, payment.amountCents, `stripe:dispute:${dispute.id}`, `Dispute of ${formatMoney(dispute.amount, dispute.currency)}`);
  }

  /**
   * Takes back the credits of the refunded share of a payment (cumulative: a second partial
   * refund takes only the difference), down to a zero balance; what was already spent is recorded.
   */
  private async revokeFor(tx: Executor, payment: PaymentRow, refundedCents: number, chargedCents: number, idempotencyKey: string, reason: string): Promise<EventOutcome> {
    if (!payment.userId) return 'ignored: the payment has no user any more';
    const share = chargedCents > 0 ? Math.min(1, refundedCents / chargedCents) : 1;
    const targetMicro = Math.floor(payment.creditsMicro * share);
    const alreadyMicro = payment.revokedMicro + payment.unrecoveredMicro;
    const dueMicro = Math.max(0, targetMicro - alreadyMicro);
    let takenMicro = 0;
    let shortfallMicro = 0;
    if (dueMicro > 0) {
      const result = await this.dependencies.wallet.revoke({ userId: payment.userId, amountMicro: dueMicro, idempotencyKey, reference: `stripe:${payment.paymentIntentId}`, reason }, tx);
      if (result.applied) ({ takenMicro, shortfallMicro } = result);
    }
    await store.updatePayment(tx, payment.id, {
      refundedCents: Math.max(payment.refundedCents, refundedCents),
      status: refundedCents >= payment.amountCents ? 'refunded' : 'partially_refunded',
      revokedMicro: payment.revokedMicro + takenMicro,
      unrecoveredMicro: payment.unrecoveredMicro + shortfallMicro,
    });
    if (shortfallMicro > 0) this.dependencies.logger.warn({ paymentId: payment.id, shortfallMicro }, 'refunded credits were already spent; recorded as unrecovered');
    return `revoked ${takenMicro / MICRO_PER_CREDIT} credits${shortfallMicro > 0 ? `, ${shortfallMicro / MICRO_PER_CREDIT} already spent` : ''}`;
  }

  listPayments(userId: string, limit = 50): Promise<PaymentRow[]> {
    return store.listPayments(this.dependencies.db, userId, limit);
  }
}

function idOf(value: string | { id: string } | null | undefined): string | null {
  if (!value) return null;
  return typeof value === 'string' ? value : value.id;
}

/** Current API versions carry the subscription under `parent.subscription_details`; older ones at the top level. */
function invoiceSubscription(invoice: Stripe.Invoice): { subscriptionId: string | null; metadata: Record<string, string> } {
  const loose = invoice as unknown as {
    parent?: { subscription_details?: { subscription?: string | { id: string } | null; metadata?: Record<string, string> | null } | null } | null;
    subscription?: string | { id: string } | null;
    subscription_details?: { metadata?: Record<string, string> | null } | null;
  };
  const details = loose.parent?.subscription_details;
  return {
    subscriptionId: idOf(details?.subscription ?? loose.subscription ?? null),
    metadata: details?.metadata ?? loose.subscription_details?.metadata ?? {},
  };
}

function invoicePaymentIntent(invoice: Stripe.Invoice): string | null {
  const loose = invoice as unknown as { payment_intent?: string | { id: string } | null; payments?: { data?: { payment?: { payment_intent?: string | { id: string } | null } }[] } };
  return idOf(loose.payment_intent ?? loose.payments?.data?.[0]?.payment?.payment_intent ?? null);
}

function formatMoney(cents: number, currency: string): string {
  return `${(cents / 100).toFixed(2)} ${currency.toUpperCase()}`;
}
