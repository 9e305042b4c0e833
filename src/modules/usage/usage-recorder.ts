import { sql, type SQL } from 'drizzle-orm';
import type { Logger } from 'pino';
import type { Executor } from '../../infra/db/database.js';
import { usageDaily, usageEvents } from '../../infra/db/schema.js';
import { rollUpParts } from './usage-report.js';
import type { ResolvedProviderKey } from '../identity/key-resolution.js';
import { priceOf } from './price-table.js';

export type UsageService = (typeof usageEvents.$inferInsert)['service'];

export interface UsageRecord {
  userId: string | undefined;
  characterId?: string | undefined;
  service: UsageService;
  key: ResolvedProviderKey;
  model?: string | undefined;
  promptTokens?: number | undefined;
  completionTokens?: number | undefined;
  characters?: number | undefined;
  seconds?: number | undefined;
  images?: number | undefined;
  /** Credits charged for this call, in micro-credits (0 when the user's own key paid). */
  creditsMicro?: number;
  /** The provider's own cost where it reports one; otherwise the price table decides. */
  providerCostUsd?: number | undefined;
  requestId?: string | undefined;
}

/**
 * The one metering point every upstream call passes: provider, model, tokens, cost and who paid.
 * The gateway calls it once per provider call, after billing settled the call.
 */
export class UsageRecorder {
  constructor(private readonly dependencies: { db: Executor; logger: Logger }) {}

  /** Cost in USD of what a call used: the provider's own figure where it gives one, else the price table. */
  costOf(provider: string, service: UsageService, used: Pick<UsageRecord, 'model' | 'promptTokens' | 'completionTokens' | 'characters' | 'images' | 'providerCostUsd'>): number {
    return this.priced({ ...used, service, key: { provider } as UsageRecord['key'], userId: undefined }).costUsd;
  }

  private priced(record: UsageRecord): { costUsd: number; costSource: 'provider' | 'price_table' | 'unknown' } {
    const promptTokens = record.promptTokens ?? 0;
    const completionTokens = record.completionTokens ?? 0;
    if (record.providerCostUsd !== undefined && Number.isFinite(record.providerCostUsd)) return { costUsd: record.providerCostUsd, costSource: 'provider' };
    const price = priceOf(record.key.provider, record.model);
    if (!price) return { costUsd: 0, costSource: 'unknown' };
    const costUsd =
      (promptTokens * price.promptPerMillion + completionTokens * price.completionPerMillion) / 1_000_000 +
      ((record.characters ?? 0) * (price.perThousandCharacters ?? 0)) / 1000 +
      (price.perImage ?? 0) * (record.service === 'image' ? (record.images ?? 1) : 0);
    return { costUsd, costSource: 'price_table' };
  }

  /**
   * Writes the usage row and the daily rollup. With `executor` (the caller's transaction) they are
   * written inside it, under a savepoint, so a metering failure still never fails the caller.
   */
  async record(record: UsageRecord, executor?: Executor): Promise<void> {
    try {
      await (executor ?? this.dependencies.db).transaction(async (transaction) => {
        const { event, daily } = this.statements(transaction, record, record.creditsMicro ?? 0);
        if (!daily) {
          await event;
          return;
        }
        // The event and its user's daily row in one statement (the event as a data-modifying CTE).
        const written = transaction.$with('usage_event').as(event.returning({ id: usageEvents.id }));
        await transaction.with(written).insert(usageDaily).values(daily.values).onConflictDoUpdate(daily.upsert);
      });
    } catch (error) {
      // Metering must not fail a turn the user already received; the log keeps the evidence.
      this.dependencies.logger.error({ err: error, usage: { ...record, key: undefined, provider: record.key.provider } }, 'could not record usage');
    }
  }

  /**
   * The usage row and the daily rollup as data-modifying CTEs (`usage_event`, `usage_day`) of a
   * caller's one statement, with the credits charged as an expression over its other CTEs. Unlike
   * `record`, a failure here fails that statement (its caller then records through `record`).
   */
  recordCtes(db: Executor, record: UsageRecord, creditsMicro: SQL): SQL[] {
    const { event, daily } = this.statements(db, record, creditsMicro);
    const ctes = [sql`usage_event AS (${event.returning({ id: usageEvents.id }).getSQL()})`];
    if (daily) ctes.push(sql`usage_day AS (${db.insert(usageDaily).values(daily.values).onConflictDoUpdate(daily.upsert).returning({ userId: usageDaily.userId }).getSQL()})`);
    return ctes;
  }

  private statements(db: Executor, record: UsageRecord, creditsMicro: number | SQL) {
    const promptTokens = record.promptTokens ?? 0;
    const completionTokens = record.completionTokens ?? 0;
    const { costUsd, costSource } = this.priced(record);
    const event = db.insert(usageEvents).values({
      userId: record.userId ?? null,
      characterId: record.characterId ?? null,
      service: record.service,
      provider: record.key.provider,
      model: record.model ?? null,
      promptTokens,
      completionTokens,
      characters: record.characters ?? 0,
      seconds: record.seconds ?? 0,
      images: record.images ?? 0,
      creditsMicro,
      costUsd,
      costSource,
      paidBy: record.key.source,
      providerKeyId: record.key.providerKeyId,
      requestId: record.requestId ?? null,
    });
    const daily = record.userId ? rollUpParts({ ...record, userId: record.userId, paidBy: record.key.source, promptTokens, completionTokens, costUsd, creditsMicro }) : undefined;
    return { event, daily };
  }
}
