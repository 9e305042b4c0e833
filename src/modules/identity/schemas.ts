import { z } from 'zod';
import { PROVIDERS } from '../../config.js';
import type { ProviderKeyRow } from './provider-key-store.js';
import type { PlanRow, UserRow } from './store.js';

const timestamp = z.string().describe('ISO 8601');

export const planSchema = z.object({
  id: z.string(),
  name: z.string(),
  allows_platform_keys: z.boolean(),
  daily_credits: z.number().int(),
  requests_per_minute: z.number().int(),
  features: z.record(z.string(), z.unknown()),
});

export const userSchema = z.object({
  id: z.string(),
  username: z.string().nullable(),
  plan: planSchema.nullable(),
  identities: z.array(z.string()),
  active: z.boolean(),
  quotas: z.record(z.string(), z.number()),
  created_at: timestamp,
  last_active_at: timestamp.nullable(),
});

export const providerKeySchema = z.object({
  id: z.string(),
  provider: z.enum(PROVIDERS),
  name: z.string(),
  masked: z.string().describe('the only form of the key ever shown, e.g. sk-or-…a1b2'),
  status: z.enum(['valid', 'invalid', 'unchecked', 'unreachable']),
  status_detail: z.string().nullable(),
  active: z.boolean(),
  created_at: timestamp,
  last_used_at: timestamp.nullable(),
  last_checked_at: timestamp.nullable(),
});

export const adminUserSchema = userSchema.extend({ provider_keys: z.array(providerKeySchema) });

export const adminUserListSchema = z.object({
  data: z.array(userSchema),
  next_cursor: z.string().nullable().describe('pass as `cursor` for the next page; null on the last page'),
});

export const providerKeyStatusSchema = z.object(
  Object.fromEntries(PROVIDERS.map((provider) => [provider, z.boolean()])) as Record<(typeof PROVIDERS)[number], z.ZodBoolean>,
);

/** A provider key as a client sends it: printable ASCII without spaces, at most 1024 characters. */
export const providerKeyInput = z
  .string()
  .trim()
  .min(1, 'the key is empty')
  .max(1024, 'the key is longer than 1024 characters')
  .regex(/^[\x21-\x7e]+$/, 'the key must be printable ASCII without spaces');

export const externalIdInput = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

export const keyNameInput = z.string().trim().min(1).max(100);

export function presentPlan(plan: PlanRow): z.infer<typeof planSchema> {
  return {
    id: plan.id,
    name: plan.name,
    allows_platform_keys: plan.allowsPlatformKeys,
    daily_credits: plan.dailyCredits,
    requests_per_minute: plan.requestsPerMinute,
    features: plan.features,
  };
}

export function presentUser(described: { user: UserRow; plan: PlanRow | undefined; identities: string[] }): z.infer<typeof userSchema> {
  const { user, plan, identities } = described;
  return {
    id: user.id,
    username: user.username,
    plan: plan ? presentPlan(plan) : null,
    identities,
    active: user.active,
    quotas: user.quotas,
    created_at: user.createdAt.toISOString(),
    last_active_at: user.lastActiveAt?.toISOString() ?? null,
  };
}

export function presentProviderKey(row: ProviderKeyRow): z.infer<typeof providerKeySchema> {
  return {
    id: row.id,
    provider: row.provider as (typeof PROVIDERS)[number],
    name: row.name,
    masked: row.masked,
    status: row.status,
    status_detail: row.statusDetail,
    active: row.active,
    created_at: row.createdAt.toISOString(),
    last_used_at: row.lastUsedAt?.toISOString() ?? null,
    last_checked_at: row.lastCheckedAt?.toISOString() ?? null,
  };
}
