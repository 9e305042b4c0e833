import { randomUUID } from 'node:crypto';
import { type SQL } from 'drizzle-orm';
import { sql } from '../../infra/db/sql.js';
import type { Logger } from 'pino';
import type { Executor } from '../../infra/db/database.js';
import { usageEvents } from '../../infra/db/schema.js';
import { rollUpCte } from './usage-report.js';
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
   * Writes the usage row and the daily rollup, in one statement. With `executor` (the caller's
   * transaction) it is written inside it, under a savepoint, so a metering failure still never fails the caller.
   */
  async record(record: UsageRecord, executor?: Executor): Promise<void> {
    try {
      const statement = sql`WITH ${sql.join(this.recordCtes(record, record.creditsMicro ?? 0), sql`, `)} SELECT 1`;
      // Alone, one statement is atomic; inside the caller's transaction, a savepoint keeps its failure from aborting it.
      if (executor) await executor.transaction((savepoint) => savepoint.execute(statement));
      else await this.dependencies.db.execute(statement);
    } catch (error) {
      // Metering must not fail a turn the user already received; the log keeps the evidence.
      this.dependencies.logger.error({ err: error, usage: { ...record, key: undefined, provider: record.key.provider } }, 'could not record usage');
    }
  }

  /**
   * The usage row and the daily rollup as data-modifying CTEs (`usage_event`, `usage_day`), with the
   * credits charged as a number or as an expression over the statement's other CTEs. `record` runs
   * them as their own statement; a chat turn carries them in its one write, where a failure fails
   * that statement (the turn then records through `record`). Plain SQL rather than Drizzle's
   * builders: built on every chat turn, where the builders cost ≈ 6× more. The row's id comes from
   * here, not the column's default: the embedded database's `gen_random_uuid()` opens, reads and
   * closes /dev/urandom through its emulated file system on every call (issue 14, tenth pass).
   */
  recordCtes(record: UsageRecord, creditsMicro: number | SQL): SQL[] {
    const promptTokens = record.promptTokens ?? 0;
    const completionTokens = record.completionTokens ?? 0;
    const { costUsd, costSource } = this.priced(record);
    const event = sql`usage_event AS (
      INSERT INTO usage_events (id, user_id, character_id, service, provider, model, prompt_tokens, completion_tokens, characters, seconds, images, credits_micro, cost_usd, cost_source, paid_by, provider_key_id, request_id)
      VALUES (${randomUUID()}::uuid, ${record.userId ?? null}::uuid, ${record.characterId ?? null}::uuid, ${record.service}::text, ${record.key.provider}::text, ${record.model ?? null}::text,
        ${promptTokens}::int, ${completionTokens}::int, ${record.characters ?? 0}::int, ${record.seconds ?? 0}::float8, ${record.images ?? 0}::int,
        ${creditsMicro}::bigint, ${costUsd}::float8, ${costSource}::text, ${record.key.source}::text, ${record.key.providerKeyId ?? null}::uuid, ${record.requestId ?? null}::text)
      RETURNING id
    )`;
    if (!record.userId) return [event];
    return [event, rollUpCte({ ...record, userId: record.userId, paidBy: record.key.source, promptTokens, completionTokens, costUsd, creditsMicro })];
  }
}
