import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { RateLimitedError } from '../../infra/http/errors.js';
import { REDIS_COMMAND_OPTIONS } from '../../infra/cache/redis-backend.js';

/** The state of one limit after a hit: what the RateLimit-* headers say. */
export interface LimitState {
  limit: number;
  remaining: number;
  /** Seconds until the window resets. */
  resetSeconds: number;
}

export interface LimitCounters {
  /**
   * Takes `points` from `key` in a window of `durationSeconds` allowing `limit`; rejects (and
   * gives the points back) when that would pass the limit. Exact across replicas on Redis.
   */
  take(name: string, key: string, points: number, limit: number, durationSeconds: number): Promise<{ allowed: boolean; state: LimitState }>;
  /** Gives points back (a call that used less than it took, or ended); never below zero. */
  giveBack(name: string, key: string, points: number, limit: number, durationSeconds: number): Promise<void>;
  /** Counts points without a check (usage found out after the call, above what it took). */
  add(name: string, key: string, points: number, limit: number, durationSeconds: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Gives back up to ARGV[1] points of a rate-limiter-flexible counter (KEYS[1], an integer with the
 * window's TTL), never below zero and never to a window that already ended (no key): what
 * `get` + `reward` did in two round trips, in one. DECRBY keeps the key's TTL.
 */
const GIVE_BACK_LUA = `local held = tonumber(redis.call('get', KEYS[1]))
if not held or held <= 0 then return 0 end
local back = math.min(tonumber(ARGV[1]), held)
redis.call('decrby', KEYS[1], back)
return back`;

type GiveBackClient = Redis & { animaLimitGiveBack(key: string, points: number): Promise<number> };

/**
 * Counters from rate-limiter-flexible: RateLimiterRedis (an atomic Lua increment with the window's
 * TTL, shared by every replica) when Redis is configured, RateLimiterMemory in-process otherwise.
 * One limiter object per (name, limit, window); all limiters of a name share the same keys, so a
 * plan whose limit changes keeps its counts.
 */
export function createLimitCounters(options: { redisUrl: string | undefined; keyPrefix: string }): LimitCounters {
  const client = options.redisUrl ? new Redis(options.redisUrl, { lazyConnect: false, ...REDIS_COMMAND_OPTIONS }) : undefined;
  // Errors surface on each command; this keeps a reconnecting client from crashing the process.
  client?.on('error', () => undefined);
  client?.defineCommand('animaLimitGiveBack', { numberOfKeys: 1, lua: GIVE_BACK_LUA });
  const limiters = new Map<string, RateLimiterAbstract>();

  const limiter = (name: string, limit: number, durationSeconds: number): RateLimiterAbstract => {
    const id = `${name}:${limit}:${durationSeconds}`;
    let found = limiters.get(id);
    if (!found) {
      // In memory the window's expiry is a timer, which cannot exceed 2^31 ms (24.8 days): longer windows
      // never expire there (their keys name the calendar period, so they still roll over).
      const duration = !client && durationSeconds * 1000 > 2 ** 31 - 1 ? 0 : durationSeconds;
      const settings = { keyPrefix: `${options.keyPrefix}:limit:${name}`, points: Math.max(1, limit), duration };
      found = client ? new RateLimiterRedis({ ...settings, storeClient: client }) : new RateLimiterMemory(settings);
      limiters.set(id, found);
    }
    return found;
  };

  const stateOf = (result: RateLimiterRes, limit: number): LimitState => ({
    limit,
    remaining: Math.max(0, limit - result.consumedPoints),
    resetSeconds: Math.max(0, Math.ceil(result.msBeforeNext / 1000)),
  });

  return {
    async take(name, key, points, limit, durationSeconds) {
      const target = limiter(name, limit, durationSeconds);
      if (limit <= 0 && points > 0) {
        const current = await target.get(key);
        return { allowed: false, state: { limit: 0, remaining: 0, resetSeconds: current ? Math.ceil(current.msBeforeNext / 1000) : durationSeconds } };
      }
      try {
        const result = await target.consume(key, points);
        return { allowed: true, state: stateOf(result, limit) };
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes)) throw rejection;
        // consume counts the points even when it rejects: give them back so a refusal costs nothing.
        if (points > 0) await target.reward(key, points);
        return { allowed: false, state: { ...stateOf(rejection, limit), remaining: Math.max(0, limit - (rejection.consumedPoints - points)) } };
      }
    },
    async giveBack(name, key, points, limit, durationSeconds) {
      if (points <= 0) return;
      const target = limiter(name, limit, durationSeconds);
      // On Redis one script (the counter's key as rate-limiter-flexible names it); in memory, no round trip to save.
      if (client) {
        await (client as GiveBackClient).animaLimitGiveBack(target.getKey(key), points);
        return;
      }
      const current = await target.get(key);
      // A window that already ended has nothing to give back to (and must not go negative).
      if (!current || current.consumedPoints <= 0) return;
      await target.reward(key, Math.min(points, current.consumedPoints));
    },
    async add(name, key, points, limit, durationSeconds) {
      if (points > 0) await limiter(name, limit, durationSeconds).penalty(key, points);
    },
    async close() {
      limiters.clear();
      if (client) await client.quit().catch(() => client.disconnect());
    },
  };
}

/** Headers of a limited route (IETF RateLimit fields, draft 7 style names). */
export function rateLimitHeaders(state: LimitState): Record<string, string> {
  return {
    'ratelimit-limit': String(state.limit),
    'ratelimit-remaining': String(state.remaining),
    'ratelimit-reset': String(state.resetSeconds),
  };
}

export function rateLimited(state: LimitState, message: string, extra: Record<string, unknown> = {}): RateLimitedError {
  return new RateLimitedError(Math.max(1, state.resetSeconds), message, { headers: rateLimitHeaders(state), extra: { limit: state.limit, ...extra } });
}

/** Quota windows are named by their calendar period (the key changes at the boundary); the TTL only collects old keys. */
export const DAY_WINDOW_SECONDS = 2 * 86_400;
export const MONTH_WINDOW_SECONDS = 32 * 86_400;

export function utcDay(now: Date): string {
  return now.toISOString().slice(0, 10);
}

export function utcMonth(now: Date): string {
  return now.toISOString().slice(0, 7);
}

/** Seconds until the next UTC midnight, and until the first of the next UTC month. */
export function secondsUntilNextDay(now: Date): number {
  const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  return Math.max(1, Math.ceil((next - now.getTime()) / 1000));
}

export function secondsUntilNextMonth(now: Date): number {
  const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
  return Math.max(1, Math.ceil((next - now.getTime()) / 1000));
}
