import type { ProviderFailure, ProviderFailureKind } from '../../infra/http/provider-failure.js';

export type { ProviderFailureKind } from '../../infra/http/provider-failure.js';

/**
 * What went wrong in a call to a model provider, in the vendor's terms: a failure kind (which
 * decides whether the call may be retried or a fallback model tried), the vendor's status and its
 * Retry-After. It carries no HTTP status of ours: the gateway turns a rejected user key into 402,
 * and the HTTP layer maps every other kind to the contract (infra/http/provider-failure.ts).
 */
export interface ProviderCallErrorOptions {
  upstreamStatus?: number | undefined;
  retryAfterSeconds?: number | undefined;
  /** The vendor's own error code where it has one (e.g. MiniMax's base_resp status_code). */
  upstreamCode?: number | string | undefined;
  cause?: unknown;
}

const RETRYABLE_KINDS: ReadonlySet<ProviderFailureKind> = new Set(['rate_limited', 'timeout', 'unavailable', 'network', 'stream_error']);

export class ProviderCallError extends Error implements ProviderFailure {
  readonly upstreamStatus: number | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly upstreamCode: number | string | undefined;

  constructor(
    readonly provider: string,
    readonly kind: ProviderFailureKind,
    message: string,
    options: ProviderCallErrorOptions = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'ProviderCallError';
    this.upstreamStatus = options.upstreamStatus;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.upstreamCode = options.upstreamCode;
  }

  /** Whether trying again (after a backoff) may succeed. */
  get retryable(): boolean {
    return RETRYABLE_KINDS.has(this.kind);
  }
}

/** The kind of failure an HTTP status from a provider means (408, 409, 429 and 5xx are retryable). */
export function kindForStatus(status: number): ProviderFailureKind {
  if (status === 401 || status === 403) return 'rejected_key';
  if (status === 429) return 'rate_limited';
  if (status === 408) return 'timeout';
  if (status === 409 || status >= 500) return 'unavailable';
  return 'invalid_request';
}

/** Retry-After as seconds (a number of seconds or an HTTP date), or undefined. */
export function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, (date - Date.now()) / 1000);
}
