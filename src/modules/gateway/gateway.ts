import type { Logger } from 'pino';
import type { Config, ProviderName } from '../../config.js';
import { AppError } from '../../infra/http/errors.js';
import { ProviderCallError } from '../../providers/chat/provider-error.js';
import { rejectedKeyError, type ProviderKeyResolver, type ResolvedProviderKey } from '../identity/key-resolution.js';
import type { UserRow } from '../identity/store.js';
import type { UsageRecord, UsageRecorder } from '../usage/usage-recorder.js';
import type { Authorization, BillingPort, CostEstimate, MeteredService, MeteredUsage, PlanFeature, SettleOptions, StatementParts } from './billing-port.js';
import type { Modality, ProviderAdapters, ProviderRegistry } from './registry.js';

/** One provider call as the gateway sees it: who, what, through whom, at most how much. */
export interface GatewayCall<M extends Modality = Modality> {
  modality: M;
  provider: ProviderName;
  /** The usage line it is recorded under (a chat adapter serves 'chat' and 'memory'). */
  service: MeteredService;
  /** The acting end user; undefined for operator work with no user (then the platform key pays). */
  user: UserRow | undefined;
  model?: string | undefined;
  feature?: PlanFeature | undefined;
  estimate: CostEstimate;
  characterId?: string | undefined;
  requestId?: string | undefined;
  idempotencyKey?: string | undefined;
  /** Holds one of the plan's concurrent-stream slots until the lease ends. */
  concurrent?: boolean;
  /**
   * The caller starts the vendor call before the credit hold is written, calls `lease.confirm()` as
   * it leaves and delivers nothing before that resolves (a chat turn: the hold's statement runs
   * while the request is on its way). Billing grants it where the balance it last saw covers the
   * call twice over; otherwise the hold is written before `begin` returns, as for every other call.
   */
  holdAlongside?: boolean;
  /**
   * A key the operator configured for this kind of work alone (EMBEDDING_API_KEY): used as it is
   * instead of resolving one. Only platform keys belong here; billing still authorizes the call.
   */
  key?: ResolvedProviderKey | undefined;
}

/**
 * A granted provider call: the key to use, the adapter bound to it, and the two ways it ends.
 * Exactly one of settle / fail ends it; later calls are no-ops.
 */
export interface Lease<M extends Modality = Modality> {
  readonly key: ResolvedProviderKey;
  readonly adapter: ProviderAdapters[M];
  /**
   * Writes billing's credit hold if it was left for the call's start (`holdAlongside`) and resolves
   * once it is held (at once otherwise). Rejects with billing's error (402, 409): the lease has then
   * ended with nothing held, and the caller stops the vendor call and delivers nothing. Call it as
   * the vendor call leaves, so the hold's statement runs while the request is on its way; later
   * calls return the same promise.
   */
  confirm(): Promise<void>;
  /**
   * Charges what was used (platform-paid), records usage once, frees limits. With `executor`, the
   * charge and the usage row are written in the caller's transaction.
   */
  settle(usage: MeteredUsage, options?: SettleOptions): Promise<{ creditsMicro: number }>;
  /**
   * `settle` as CTEs of the caller's one statement (the charge and the usage row; see
   * StatementParts); undefined where that takes more than one statement (then
   * call `settle` in a transaction). Only `settled` ends the lease: if the statement failed,
   * `settle` or `fail` still can.
   */
  settleParts(usage: MeteredUsage): StatementParts | undefined;
  /**
   * The call failed: the reservation is released, a key the vendor rejected is reported (a user
   * key is marked invalid), and the error to throw is returned (a rejected user key becomes 402).
   */
  fail(error: unknown): Promise<unknown>;
}

export interface GatewayDependencies {
  config: Readonly<Config>;
  logger: Logger;
  keys: ProviderKeyResolver;
  registry: ProviderRegistry;
  billing: BillingPort;
  usage: UsageRecorder;
}

/**
 * The one metered gateway every provider call goes through (chat, streaming chat, memory
 * formation and summaries, vision, and the modalities later modules register). For each call:
 * resolve the key (user → platform where the plan allows → 402), authorize with billing (plan
 * features and limits; reserve credits when the platform pays), hand out the adapter bound to that
 * key, then settle the real cost and record usage once — or release and report on failure.
 */
export class ProviderGateway {
  constructor(private readonly dependencies: GatewayDependencies) {}

  get registry(): ProviderRegistry {
    return this.dependencies.registry;
  }

  async begin<M extends Modality>(call: GatewayCall<M>): Promise<Lease<M>> {
    const { keys, registry, billing } = this.dependencies;
    const adapter = registry.adapterFor(call.modality, call.provider);
    if (!adapter) throw new AppError(422, 'validation_failed', `${call.provider} does not offer ${call.modality}.`, { extra: { field: 'provider' } });
    const key = call.key ?? (await keys.resolve(call.user, call.provider));
    const authorization = await billing.authorize({
      user: call.user,
      service: call.service,
      provider: call.provider,
      model: call.model,
      feature: call.feature,
      estimate: call.estimate,
      paidBy: key.source,
      idempotencyKey: call.idempotencyKey,
      concurrent: call.concurrent ?? false,
      holdAlongside: call.holdAlongside ?? false,
    });
    return this.lease(call, key, adapter, authorization);
  }

  /** begin → work → settle, or fail; for calls with one result (not streams). */
  async call<M extends Modality, T>(call: GatewayCall<M>, work: (adapter: ProviderAdapters[M], key: ResolvedProviderKey) => Promise<{ result: T; usage: MeteredUsage }>): Promise<T> {
    const lease = await this.begin(call);
    let outcome: { result: T; usage: MeteredUsage };
    try {
      outcome = await work(lease.adapter, lease.key);
    } catch (error) {
      throw await lease.fail(error);
    }
    await lease.settle(outcome.usage);
    return outcome.result;
  }

  private lease<M extends Modality>(call: GatewayCall<M>, key: ResolvedProviderKey, adapter: ProviderAdapters[M], authorization: Authorization): Lease<M> {
    const { usage, keys, config, logger } = this.dependencies;
    let ended = false;
    const usageRecord = (used: MeteredUsage): UsageRecord => ({
      userId: call.user?.id,
      characterId: call.characterId,
      service: call.service,
      key,
      model: used.model ?? call.model,
      promptTokens: used.promptTokens,
      completionTokens: used.completionTokens,
      characters: used.characters,
      seconds: used.seconds,
      images: used.images,
      providerCostUsd: used.providerCostUsd,
      requestId: call.requestId,
    });
    // Asked once; every later call gets the same outcome (a failed hold keeps rejecting).
    let confirmation: Promise<void> | undefined;
    const confirm = () => {
      confirmation ??= (async () => {
        if (!authorization.confirm || ended) return;
        try {
          await authorization.confirm();
        } catch (error) {
          // A failed hold ended the authorization; nothing is left to settle or release.
          ended = true;
          throw error;
        }
      })();
      // Whoever awaits it sees the error; an unawaited one must not crash the process.
      confirmation.catch(() => undefined);
      return confirmation;
    };
    return {
      key,
      adapter,
      confirm,
      settle: async (used, options) => {
        if (ended) return { creditsMicro: 0 };
        ended = true;
        const costUsd = usage.costOf(key.provider, call.service, used);
        let creditsMicro = 0;
        try {
          ({ creditsMicro } = await authorization.settle({ ...used, costUsd }, options));
        } finally {
          await usage.record({ ...usageRecord(used), creditsMicro }, options?.executor);
        }
        return { creditsMicro };
      },
      settleParts: (used) => {
        if (ended) return undefined;
        const charge = authorization.settleParts?.({ ...used, costUsd: usage.costOf(key.provider, call.service, used) });
        if (!charge) return undefined;
        return {
          ctes: [...charge.ctes, ...usage.recordCtes(usageRecord(used), charge.creditsMicro)],
          creditsMicro: charge.creditsMicro,
          settled: async (creditsMicro) => {
            if (ended) return { creditsMicro: 0 };
            ended = true;
            return charge.settled(creditsMicro);
          },
        };
      },
      fail: async (error) => {
        if (ended) return error;
        ended = true;
        try {
          await authorization.release(error instanceof Error ? error.message : String(error));
        } catch (releaseError) {
          // A release that did not happen is retried by the stale-reservation job; the call's own error wins.
          logger.error({ err: releaseError, provider: key.provider, service: call.service }, 'could not release a reservation');
        }
        if (error instanceof ProviderCallError && error.kind === 'rejected_key') {
          await keys.reportRejected(key, error.message);
          return rejectedKeyError(key, config.setupUrl);
        }
        return error;
      },
    };
  }
}
