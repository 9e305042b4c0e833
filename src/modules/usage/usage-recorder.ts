import type { Logger } from 'pino';
import type { Executor } from '../../infra/db/database.js';
import { usageEvents } from '../../infra/db/schema.js';
import type { ResolvedProviderKey } from '../identity/key-resolution.js';
import { priceOf } from './price-table.js';

export type UsageService = (typeof usageEvents.$inferInsert)['service'];

export interface UsageRecord {
  userId: string | undefined;
  characterId?: string | undefined;
  service: UsageService;
  key: ResolvedProviderKey;
  model?: string | undefined;
  promptTokens?: number;
  completionTokens?: number;
  characters?: number;
  seconds?: number;
  /** The provider's own cost where it reports one; otherwise the price table decides. */
  providerCostUsd?: number | undefined;
  requestId?: string | undefined;
}

/**
 * The one metering point every upstream call passes: provider, model, tokens, cost and who paid.
 * Billing will charge credits here, for platform-paid work only.
 */
export class UsageRecorder {
  constructor(private readonly dependencies: { db: Executor; logger: Logger }) {}

  async record(record: UsageRecord): Promise<void> {
    const promptTokens = record.promptTokens ?? 0;
    const completionTokens = record.completionTokens ?? 0;
    let costUsd = 0;
    let costSource: 'provider' | 'price_table' | 'unknown' = 'unknown';
    if (record.providerCostUsd !== undefined && Number.isFinite(record.providerCostUsd)) {
      costUsd = record.providerCostUsd;
      costSource = 'provider';
    } else {
      const price = priceOf(record.key.provider, record.model);
      if (price) {
        costUsd =
          (promptTokens * price.promptPerMillion + completionTokens * price.completionPerMillion) / 1_000_000 +
          ((record.characters ?? 0) * (price.perThousandCharacters ?? 0)) / 1000 +
          (price.perImage ?? 0) * (record.service === 'image' ? 1 : 0);
        costSource = 'price_table';
      }
    }
    try {
      await this.dependencies.db.insert(usageEvents).values({
        userId: record.userId ?? null,
        characterId: record.characterId ?? null,
        service: record.service,
        provider: record.key.provider,
        model: record.model ?? null,
        promptTokens,
        completionTokens,
        characters: record.characters ?? 0,
        seconds: record.seconds ?? 0,
        costUsd,
        costSource,
        paidBy: record.key.source,
        providerKeyId: record.key.providerKeyId,
        requestId: record.requestId ?? null,
      });
    } catch (error) {
      // Metering must not fail a turn the user already received; the log keeps the evidence.
      this.dependencies.logger.error({ err: error, usage: { ...record, key: undefined, provider: record.key.provider } }, 'could not record usage');
    }
  }
}
