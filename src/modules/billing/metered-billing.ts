import { randomUUID } from 'node:crypto';
import { sql } from '../../infra/db/sql.js';
import type { Logger } from 'pino';
import { AppError } from '../../infra/http/errors.js';
import type { Authorization, AuthorizationRequest, BillingPort, MeteredUsage, SettleOptions } from '../gateway/billing-port.js';
import type { UserRow } from '../identity/store.js';
import {
  DAY_WINDOW_SECONDS,
  MONTH_WINDOW_SECONDS,
  rateLimited,
  secondsUntilNextDay,
  secondsUntilNextMonth,
  utcDay,
  utcMonth,
  type LimitCounters,
} from './limits.js';
import { imageCreditWeight } from '../usage/price-table.js';
import { estimatedQuantities, priceMicro, usedQuantities, type Quantities } from './pricing.js';
import { planHasFeature, type BillingService, type HeldCredits, type PlanRow } from './service.js';

/** Streams are held until they end; the window is only a safety net for a process that died holding one. */
export const STREAM_WINDOW_SECONDS = 3_600;

/** One limit held by a call: adjusted to what was used at settle, given back on release. */
interface LimitHold {
  settle(used: Quantities): Promise<void>;
  release(): Promise<void>;
}

const NOTHING_TO_SETTLE: Authorization = {
  settle: () => Promise.resolve({ creditsMicro: 0 }),
  release: () => Promise.resolve(),
};

export interface MeteredBillingDependencies {
  service: BillingService;
  limits: LimitCounters;
  logger: Logger;
  limitsEnabled: boolean;
}

/**
 * The real BillingPort: plan features, the plan's limits (concurrent streams, images per day,
 * voice seconds per month — taken from the estimate, corrected at settle) and, when the platform
 * pays, a credit reservation priced with the plan, settled to the real cost or released.
 */
export class MeteredBilling implements BillingPort {
  constructor(private readonly dependencies: MeteredBillingDependencies) {}

  async authorize(request: AuthorizationRequest): Promise<Authorization> {
    const { user } = request;
    // Operator work with no end user (e.g. the platform's own maintenance) is not billed to anyone.
    if (!user) return NOTHING_TO_SETTLE;
    const { service, logger } = this.dependencies;
    const plan = await service.planFor(user);
    if (request.feature && !planHasFeature(plan, request.feature)) {
      throw new AppError(403, 'feature_not_in_plan', `Your ${plan.name} plan does not include ${request.feature.replaceAll('_', ' ')}; see GET /v1/plans.`, {
        extra: { feature: request.feature, plan: plan.id },
      });
    }
    const estimated = estimatedQuantities(request.service, request.estimate);
    const holds: LimitHold[] = [];
    let credits: HeldCredits | undefined;
    let alreadySettled = false;
    const imageWeight = request.service === 'image' ? imageCreditWeight(request.provider, request.model) : 1;
    const estimateMicro = priceMicro(plan, estimated, imageWeight);
    const releaseLimits = () => Promise.allSettled(holds.map((hold) => hold.release()));
    const holdCredits = (expected: boolean) =>
      service
        .hold(user, plan, { amountMicro: estimateMicro, service: request.service, provider: request.provider, model: request.model, idempotencyKey: request.idempotencyKey }, { expected })
        .then((result) => {
          if ('alreadySettled' in result) alreadySettled = true;
          else credits = result;
        });
    /** The credit hold is written when the caller starts its call (see Authorization.confirm), not before `authorize` returns. */
    let deferred = false;
    let confirmation: Promise<void> | undefined;
    let holdWritten = false;
    let ended = false;
    try {
      if (this.dependencies.limitsEnabled) {
        if (request.concurrent) holds.push(await this.holdStream(user, plan));
        if (request.service === 'image' && estimated.images > 0) holds.push(await this.holdImages(user, plan, estimated.images));
        if (request.service === 'speech' && estimated.seconds > 0) holds.push(await this.holdVoice(user, plan, estimated.seconds));
      }
      if (request.paidBy === 'platform' && estimateMicro > 0) {
        // A call with an idempotency key is held first: its hold is what finds a retry's first charge.
        if (request.holdAlongside && request.idempotencyKey === undefined && service.expectCovered(user.id, estimateMicro)) deferred = true;
        else await holdCredits(false);
      }
    } catch (error) {
      await releaseLimits();
      throw error;
    }
    const confirm = (): Promise<void> => {
      confirmation ??= ended
        ? Promise.resolve()
        : holdCredits(true).then(
            () => {
              holdWritten = true;
            },
            async (error: unknown) => {
              // Nothing was held: the authorization ends here, and the limits it took go back.
              ended = true;
              await releaseLimits();
              throw error;
            },
          );
      // Whoever awaits it sees the error; an unawaited one must not crash the process.
      confirmation.catch(() => undefined);
      return confirmation;
    };
    /** A deferred hold written (started here if it was not yet: a call is never settled unheld); false when it failed. */
    const heldOk = async () => {
      if (!deferred) return true;
      try {
        await confirm();
        return true;
      } catch {
        return false;
      }
    };

    const callId = randomUUID();
    /** What the platform charges for what was used (undefined: nothing to charge — the user's key paid, or a settled retry). */
    const chargeFor = (usage: MeteredUsage, used: Quantities): number | undefined =>
      request.paidBy !== 'platform' || alreadySettled ? undefined : priceMicro(plan, used, request.service === 'image' ? imageCreditWeight(request.provider, usage.model ?? request.model) : 1);
    const settleHolds = async (used: Quantities) => {
      const results = await Promise.allSettled(holds.map((hold) => hold.settle(used)));
      for (const result of results) if (result.status === 'rejected') logger.warn({ err: result.reason }, 'could not adjust a limit at settle');
    };
    return {
      ...(deferred ? { confirm } : {}),
      settle: async (usage: MeteredUsage & { costUsd: number }, options?: SettleOptions) => {
        if (ended) return { creditsMicro: 0 };
        if (deferred && !confirmation && options?.executor) {
          // A hold left for the call's start and never asked for, settled inside the caller's transaction: written now on
          // another connection it would wait for that transaction on the embedded database (one connection), so it is not
          // written — the call is charged unheld in the caller's transaction, clamped at the balance. No retry's charge is
          // missed: a call with an idempotency key is never left to confirm.
          deferred = false;
          service.forgetExpected(user.id, estimateMicro);
        }
        // A deferred hold is written first (a call is never settled unheld); a failed one ended the authorization.
        if (!(await heldOk()) || ended) return { creditsMicro: 0 };
        ended = true;
        const used = usedQuantities(request.service, usage);
        await settleHolds(used);
        const charge = chargeFor(usage, used);
        if (charge === undefined) return { creditsMicro: 0 };
        if (credits) return { creditsMicro: await service.settle(credits, user.id, charge, options?.executor) };
        return { creditsMicro: await service.chargeWithoutHold(user.id, charge, callId, `${request.service}:${request.provider}`, options?.executor) };
      },
      settleParts: (usage: MeteredUsage & { costUsd: number }) => {
        // A hold not written yet: `settle` (which waits for it) then.
        if (ended || (deferred && !holdWritten)) return undefined;
        const used = usedQuantities(request.service, usage);
        const chargedMicro = chargeFor(usage, used);
        // A charge above the hold, or one with nothing held (chargeWithoutHold), takes more than CTEs: `settle` then.
        const charge = chargedMicro === undefined || (!credits && chargedMicro === 0) ? { ctes: [], chargedMicro: sql`0` } : credits ? service.settleCtes(credits, chargedMicro) : undefined;
        if (!charge) return undefined;
        return {
          ctes: charge.ctes,
          creditsMicro: charge.chargedMicro,
          settled: async (creditsMicro: number) => {
            if (ended) return { creditsMicro: 0 };
            ended = true;
            await settleHolds(used);
            return { creditsMicro };
          },
        };
      },
      release: async (reason: string) => {
        if (ended) return;
        // A deferred hold asked for is waited for (a failed one ended the authorization); one never started holds nothing.
        if (confirmation && (!(await heldOk()) || ended)) return;
        ended = true;
        if (deferred && !confirmation) service.forgetExpected(user.id, estimateMicro);
        const results = await releaseLimits();
        for (const result of results) if (result.status === 'rejected') logger.warn({ err: result.reason }, 'could not give a limit back');
        if (credits) await service.release(credits, reason);
      },
    };
  }

  private async holdStream(user: UserRow, plan: PlanRow): Promise<LimitHold> {
    const { limits } = this.dependencies;
    const limit = plan.concurrentStreams;
    const taken = await limits.take('streams', user.id, 1, limit, STREAM_WINDOW_SECONDS);
    if (!taken.allowed) {
      throw rateLimited({ ...taken.state, resetSeconds: 1 }, `Your ${plan.name} plan allows ${limit} stream${limit === 1 ? '' : 's'} at a time; wait for one to finish.`, { limit_name: 'concurrent_streams' });
    }
    const giveBack = () => limits.giveBack('streams', user.id, 1, limit, STREAM_WINDOW_SECONDS);
    return { settle: giveBack, release: giveBack };
  }

  private async holdImages(user: UserRow, plan: PlanRow, images: number): Promise<LimitHold> {
    const { limits, service } = this.dependencies;
    const now = service.now();
    const key = `${user.id}:${utcDay(now)}`;
    const limit = plan.imagesPerDay;
    const taken = await limits.take('images', key, images, limit, DAY_WINDOW_SECONDS);
    if (!taken.allowed) {
      throw rateLimited({ ...taken.state, resetSeconds: secondsUntilNextDay(now) }, `Your ${plan.name} plan allows ${limit} images a day (${taken.state.remaining} left today).`, { limit_name: 'images_per_day' });
    }
    return {
      settle: (used) => (used.images < images ? limits.giveBack('images', key, images - used.images, limit, DAY_WINDOW_SECONDS) : Promise.resolve()),
      release: () => limits.giveBack('images', key, images, limit, DAY_WINDOW_SECONDS),
    };
  }

  private async holdVoice(user: UserRow, plan: PlanRow, seconds: number): Promise<LimitHold> {
    const { limits, service } = this.dependencies;
    const now = service.now();
    const key = `${user.id}:${utcMonth(now)}`;
    const limit = plan.voiceSecondsPerMonth;
    const taken = await limits.take('voice', key, seconds, limit, MONTH_WINDOW_SECONDS);
    if (!taken.allowed) {
      throw rateLimited(
        { ...taken.state, resetSeconds: secondsUntilNextMonth(now) },
        `Your ${plan.name} plan allows ${limit} seconds of voice a month (${taken.state.remaining} left this month).`,
        { limit_name: 'voice_seconds_per_month' },
      );
    }
    return {
      settle: async (used) => {
        // Counted as used: the estimate corrected both ways (audio can run longer than the text suggested).
        if (used.seconds < seconds) await limits.giveBack('voice', key, seconds - used.seconds, limit, MONTH_WINDOW_SECONDS);
        else if (used.seconds > seconds) await limits.add('voice', key, used.seconds - seconds, limit, MONTH_WINDOW_SECONDS);
      },
      release: () => limits.giveBack('voice', key, seconds, limit, MONTH_WINDOW_SECONDS),
    };
  }
}
