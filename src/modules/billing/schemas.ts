import { z } from 'zod';
import { LEDGER_KINDS, type LedgerRow, type WalletRow } from './tables.js';
import { creditsFromMicro, MICRO_PER_CREDIT } from './pricing.js';
import { PLAN_FEATURES, type PlanRow } from './service.js';
import type { PlanInsert } from './store.js';

/** A credit amount as clients write it: a decimal with at most 6 places (one micro-credit). */
const creditPrice = (field: string) =>
  z
    .number()
    .min(0, `${field} cannot be negative`)
    .max(1_000_000, `${field} is at most 1,000,000 credits`)
    .refine((value) => Number.isInteger(Math.round(value * MICRO_PER_CREDIT * 1e3) / 1e3), `${field} has at most 6 decimal places`);

const count = (maximum: number) => z.number().int().min(0).max(maximum);

const featuresInput = z.object(Object.fromEntries(PLAN_FEATURES.map((feature) => [feature, z.boolean().optional()])) as Record<(typeof PLAN_FEATURES)[number], z.ZodOptional<z.ZodBoolean>>).strict();

const planFields = {
  name: z.string().trim().min(1).max(100),
  description: z.string().trim().max(1000),
  daily_credits: count(1_000_000_000),
  credits_per_1k_tokens: creditPrice('credits_per_1k_tokens'),
  credits_per_image: creditPrice('credits_per_image'),
  credits_per_audio_second: creditPrice('credits_per_audio_second'),
  requests_per_minute: count(1_000_000),
  concurrent_streams: count(10_000),
  voice_seconds_per_month: count(1_000_000_000),
  images_per_day: count(1_000_000),
  features: featuresInput,
  /** Monthly price in the currency's smallest unit (cents); null for a custom price. */
  price_cents: z.number().int().min(0).max(100_000_000).nullable(),
  currency: z.string().trim().regex(/^[a-z]{3}$/, 'a three-letter ISO 4217 code in lower case'),
  public: z.boolean(),
  sort_order: z.number().int().min(-1000).max(1000),
};

export const planCreateSchema = z
  .object({
    id: z.string().trim().regex(/^[a-z0-9][a-z0-9_-]{0,39}$/, 'lower-case letters, digits, _ and -, at most 40'),
    ...planFields,
  })
  .partial()
  .required({ id: true, name: true })
  .strict();

export const planPatchSchema = z.object(planFields).partial().strict();

export const planSchema = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string(),
  daily_credits: z.number(),
  credits_per_1k_tokens: z.number(),
  credits_per_image: z.number(),
  credits_per_audio_second: z.number(),
  requests_per_minute: z.number(),
  concurrent_streams: z.number(),
  voice_seconds_per_month: z.number(),
  images_per_day: z.number(),
  features: z.record(z.string(), z.unknown()),
  price: z.object({ amount_cents: z.number().nullable(), currency: z.string(), interval: z.literal('month') }),
  public: z.boolean(),
  sort_order: z.number(),
});

export const planListSchema = z.object({ data: z.array(planSchema) });

export function presentPlan(plan: PlanRow): z.infer<typeof planSchema> {
  return {
    id: plan.id,
    name: plan.name,
    description: plan.description,
    daily_credits: plan.dailyCredits,
    credits_per_1k_tokens: creditsFromMicro(plan.creditsPer1kTokensMicro),
    credits_per_image: creditsFromMicro(plan.creditsPerImageMicro),
    credits_per_audio_second: creditsFromMicro(plan.creditsPerAudioSecondMicro),
    requests_per_minute: plan.requestsPerMinute,
    concurrent_streams: plan.concurrentStreams,
    voice_seconds_per_month: plan.voiceSecondsPerMonth,
    images_per_day: plan.imagesPerDay,
    features: { long_term_memory: false, voice: false, image_generation: false, ...plan.features, platform_keys: plan.allowsPlatformKeys },
    price: { amount_cents: plan.priceCents, currency: plan.currency, interval: 'month' },
    public: plan.public,
    sort_order: plan.sortOrder,
  };
}

/** The API's plan fields as table columns (only those given). */
export function planColumns(input: z.infer<typeof planPatchSchema>, current?: PlanRow): Partial<PlanInsert> {
  const columns: Partial<PlanInsert> = {};
  if (input.name !== undefined) columns.name = input.name;
  if (input.description !== undefined) columns.description = input.description;
  if (input.daily_credits !== undefined) columns.dailyCredits = input.daily_credits;
  if (input.credits_per_1k_tokens !== undefined) columns.creditsPer1kTokensMicro = Math.round(input.credits_per_1k_tokens * MICRO_PER_CREDIT);
  if (input.credits_per_image !== undefined) columns.creditsPerImageMicro = Math.round(input.credits_per_image * MICRO_PER_CREDIT);
  if (input.credits_per_audio_second !== undefined) columns.creditsPerAudioSecondMicro = Math.round(input.credits_per_audio_second * MICRO_PER_CREDIT);
  if (input.requests_per_minute !== undefined) columns.requestsPerMinute = input.requests_per_minute;
  if (input.concurrent_streams !== undefined) columns.concurrentStreams = input.concurrent_streams;
  if (input.voice_seconds_per_month !== undefined) columns.voiceSecondsPerMonth = input.voice_seconds_per_month;
  if (input.images_per_day !== undefined) columns.imagesPerDay = input.images_per_day;
  if (input.price_cents !== undefined) columns.priceCents = input.price_cents;
  if (input.currency !== undefined) columns.currency = input.currency;
  if (input.public !== undefined) columns.public = input.public;
  if (input.sort_order !== undefined) columns.sortOrder = input.sort_order;
  if (input.features !== undefined) {
    const { platform_keys: platformKeys, ...rest } = input.features;
    if (platformKeys !== undefined) columns.allowsPlatformKeys = platformKeys;
    // Unknown keys already stored are kept; given ones replace their values.
    columns.features = { ...(current?.features ?? {}), ...Object.fromEntries(Object.entries(rest).filter(([, value]) => value !== undefined)) };
  }
  return columns;
}

export const walletSchema = z.object({
  user_id: z.string(),
  balance: z.number().describe('credits you may spend now'),
  balance_micro: z.number().int(),
  daily_remaining: z.number().describe("today's daily credits not yet spent (part of the balance)"),
  reserved: z.number().describe('credits held by requests in flight'),
  plan: z.object({ id: z.string(), name: z.string(), daily_credits: z.number() }),
  next_refresh_at: z.string(),
});

export function presentWallet(wallet: WalletRow, plan: PlanRow, nextRefreshAt: Date): z.infer<typeof walletSchema> {
  return {
    user_id: wallet.userId,
    balance: creditsFromMicro(wallet.balanceMicro),
    balance_micro: wallet.balanceMicro,
    daily_remaining: creditsFromMicro(Math.min(wallet.dailyMicro, wallet.balanceMicro)),
    reserved: creditsFromMicro(wallet.reservedMicro),
    plan: { id: plan.id, name: plan.name, daily_credits: plan.dailyCredits },
    next_refresh_at: nextRefreshAt.toISOString(),
  };
}

export const ledgerEntrySchema = z.object({
  id: z.string(),
  kind: z.enum(LEDGER_KINDS),
  amount: z.number(),
  amount_micro: z.number().int(),
  balance_after: z.number(),
  balance_after_micro: z.number().int(),
  reservation_id: z.string().nullable(),
  reference: z.string().nullable(),
  reason: z.string().nullable(),
  created_at: z.string(),
});

export function presentEntry(entry: LedgerRow): z.infer<typeof ledgerEntrySchema> {
  return {
    id: String(entry.id),
    kind: entry.kind,
    amount: creditsFromMicro(entry.amountMicro),
    amount_micro: entry.amountMicro,
    balance_after: creditsFromMicro(entry.balanceAfterMicro),
    balance_after_micro: entry.balanceAfterMicro,
    reservation_id: entry.reservationId,
    reference: entry.reference,
    reason: entry.reason,
    created_at: entry.createdAt.toISOString(),
  };
}

export const ledgerPageSchema = z.object({ data: z.array(ledgerEntrySchema), next_cursor: z.string().nullable() });

export const adminCreditBody = z
  .object({
    amount: z
      .number()
      .refine((value) => value !== 0, 'amount cannot be zero')
      .refine((value) => Math.abs(value) <= 1_000_000_000, 'amount is at most 1,000,000,000 credits either way')
      .refine((value) => Number.isInteger(Math.round(value * MICRO_PER_CREDIT * 1e3) / 1e3), 'amount has at most 6 decimal places')
      .describe('credits to add (positive) or take away (negative)'),
    reason: z.string().trim().min(1).max(500),
  })
  .strict();

export const adminCreditResponse = z.object({ entry: ledgerEntrySchema, balance: z.number(), balance_micro: z.number().int(), duplicate: z.boolean() });

const figures = z.object({
  requests: z.number(),
  prompt_tokens: z.number(),
  completion_tokens: z.number(),
  tokens: z.number(),
  characters: z.number(),
  seconds: z.number(),
  images: z.number(),
  credits: z.number(),
  credits_micro: z.number(),
  cost_usd: z.number(),
  paid_by: z.object({ user: z.number(), platform: z.number() }),
});

export const usageReportSchema = z.object({
  user_id: z.string(),
  days: z.number(),
  since: z.string(),
  until: z.string(),
  totals: figures,
  services: z.record(z.string(), figures),
  daily: z.array(figures.extend({ date: z.string(), services: z.record(z.string(), figures) })),
});

export const usageQuery = z.object({ days: z.coerce.number().int().min(1).max(366).default(30) });
