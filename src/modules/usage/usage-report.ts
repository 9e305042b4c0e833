import { and, asc, eq, gte, type SQL } from 'drizzle-orm';
import { sql } from '../../infra/db/sql.js';
import type { Executor } from '../../infra/db/database.js';
import { usageDaily } from './tables.js';
import type { UsageRecord } from './usage-recorder.js';

export const USAGE_SERVICES = ['chat', 'embedding', 'speech', 'transcription', 'image', 'vision', 'memory'] as const;
export type UsageServiceName = (typeof USAGE_SERVICES)[number];

export type RollUpRecord = Pick<UsageRecord, 'service' | 'characters' | 'seconds' | 'images'> & {
  userId: string;
  paidBy: 'user' | 'platform';
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  /** A number, or an expression over the statement's other CTEs (the charge settled in the same statement). */
  creditsMicro?: number | SQL | undefined;
};

/**
 * One usage event's addition to its user's daily row (UTC day, service, payer), as the data-modifying
 * CTE `usage_day` of the usage recorder's statement (the event's own CTE is beside it). Plain SQL
 * rather than Drizzle's builders: it is built on every chat turn, and the builders cost ≈ 6× more.
 */
export function rollUpCte(record: RollUpRecord): SQL {
  return sql`usage_day AS (
      INSERT INTO usage_daily (user_id, day, service, paid_by, requests, prompt_tokens, completion_tokens, characters, seconds, images, credits_micro, cost_usd)
      VALUES (${record.userId}::uuid, (now() AT TIME ZONE 'UTC')::date, ${record.service}::text, ${record.paidBy}::text, 1, ${record.promptTokens}::bigint, ${record.completionTokens}::bigint,
        ${record.characters ?? 0}::bigint, ${record.seconds ?? 0}::float8, ${record.images ?? 0}::int, ${record.creditsMicro ?? 0}::bigint, ${record.costUsd}::float8)
      ON CONFLICT (user_id, day, service, paid_by) DO UPDATE SET
        requests = usage_daily.requests + 1,
        prompt_tokens = usage_daily.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = usage_daily.completion_tokens + excluded.completion_tokens,
        characters = usage_daily.characters + excluded.characters,
        seconds = usage_daily.seconds + excluded.seconds,
        images = usage_daily.images + excluded.images,
        credits_micro = usage_daily.credits_micro + excluded.credits_micro,
        cost_usd = usage_daily.cost_usd + excluded.cost_usd
      RETURNING user_id
    )`;
}

export interface UsageFigures {
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  tokens: number;
  characters: number;
  seconds: number;
  images: number;
  credits: number;
  credits_micro: number;
  cost_usd: number;
  /** Requests by who paid: the user's own key, or the platform (credits). */
  paid_by: { user: number; platform: number };
}

export interface UsageReport {
  user_id: string;
  days: number;
  since: string;
  until: string;
  totals: UsageFigures;
  services: Record<UsageServiceName, UsageFigures>;
  daily: Array<{ date: string } & UsageFigures & { services: Partial<Record<UsageServiceName, UsageFigures>> }>;
}

function emptyFigures(): UsageFigures {
  return { requests: 0, prompt_tokens: 0, completion_tokens: 0, tokens: 0, characters: 0, seconds: 0, images: 0, credits: 0, credits_micro: 0, cost_usd: 0, paid_by: { user: 0, platform: 0 } };
}

function add(target: UsageFigures, row: typeof usageDaily.$inferSelect): void {
  target.requests += row.requests;
  target.prompt_tokens += row.promptTokens;
  target.completion_tokens += row.completionTokens;
  target.tokens += row.promptTokens + row.completionTokens;
  target.characters += row.characters;
  target.seconds = Math.round((target.seconds + row.seconds) * 1000) / 1000;
  target.images += row.images;
  target.credits_micro += row.creditsMicro;
  target.credits = target.credits_micro / 1_000_000;
  target.cost_usd = Math.round((target.cost_usd + row.costUsd) * 1e8) / 1e8;
  target.paid_by[row.paidBy] += row.requests;
}

/**
 * A user's usage over the last `days` UTC days (today included), per service and per day, read
 * from the daily rollup (primary-key range scan: at most days × services × 2 rows).
 */
export async function usageReport(db: Executor, userId: string, days: number, now = new Date()): Promise<UsageReport> {
  const until = now.toISOString().slice(0, 10);
  const since = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - (days - 1))).toISOString().slice(0, 10);
  const rows = await db
    .select()
    .from(usageDaily)
    .where(and(eq(usageDaily.userId, userId), gte(usageDaily.day, since)))
    .orderBy(asc(usageDaily.day));
  const totals = emptyFigures();
  const services = Object.fromEntries(USAGE_SERVICES.map((service) => [service, emptyFigures()])) as Record<UsageServiceName, UsageFigures>;
  const byDay = new Map<string, UsageReport['daily'][number]>();
  for (const row of rows) {
    const service = row.service as UsageServiceName;
    add(totals, row);
    add((services[service] ??= emptyFigures()), row);
    let day = byDay.get(row.day);
    if (!day) {
      day = { date: row.day, ...emptyFigures(), services: {} };
      byDay.set(row.day, day);
    }
    add(day, row);
    add((day.services[service] ??= emptyFigures()), row);
  }
  return { user_id: userId, days, since, until, totals, services, daily: [...byDay.values()] };
}

/** The short text `!usage` answers in chat. */
export function usageSummaryText(report: UsageReport): string {
  const lines = [`Your usage over the last ${report.days} day${report.days === 1 ? '' : 's'}: ${report.totals.requests} requests, ${report.totals.tokens} tokens, ${report.totals.credits} credits.`];
  for (const service of USAGE_SERVICES) {
    const figures = report.services[service];
    if (figures.requests === 0) continue;
    const parts = [`${figures.requests} requests`];
    if (figures.tokens > 0) parts.push(`${figures.tokens} tokens`);
    if (figures.characters > 0) parts.push(`${figures.characters} characters`);
    if (figures.seconds > 0) parts.push(`${figures.seconds} s`);
    if (figures.images > 0) parts.push(`${figures.images} images`);
    parts.push(`${figures.credits} credits`);
    if (figures.paid_by.user > 0) parts.push(`${figures.paid_by.user} on your own keys`);
    lines.push(`- ${service}: ${parts.join(', ')}`);
  }
  return lines.join('\n');
}
